// The disk cache in service-account token mode, as a node lives it: every pod brings a freshly
// minted token and every pull is a new process (a kubelet restart between any two), so only a
// key on the service account the kubelet minted the token for (its `kubernetes.io` claims:
// namespace, name, UID) plus role and registry is ever hit again. Expired entries go when one is
// written, and the directory stays under its cap however many accounts come and go.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { defaultBehaviour } from "../helpers/aws-endpoint.ts";
import { credentialsFor } from "../helpers/kubelet-credentials.ts";
import { type ServiceAccountClaims, serviceAccountToken } from "../helpers/service-account-token.ts";
import { callsOf, endpointSuite, ok, PRIVATE, request, run } from "./helpers.ts";

const s = endpointSuite("credential-provider: the token-mode disk cache");
const { test } = s;

const ANNOTATION = "eks.amazonaws.com/ecr-role-arn";
const ROLE = "arn:aws:iam::123456789012:role/pull";
const IMAGE = `${PRIVATE}/app`;

let dirN = 0;
const freshDir = () => join(s.tmp, `token-cache-${++dirN}`);
const accounts = (n: number, tag = "sa"): ServiceAccountClaims[] =>
  Array.from({ length: n }, (_, i) => ({ namespace: `ns-${i % 3}`, name: `${tag}-${i}`, uid: `uid-${tag}-${i}` }));

/** One pull for the account, with a token minted for it just now, as a new process. */
function pull(sa: ServiceAccountClaims, dir: string, extra: string[] = []) {
  return run(
    request(IMAGE, {
      serviceAccountToken: serviceAccountToken(sa),
      serviceAccountAnnotations: { [ANNOTATION]: ROLE },
    }),
    s.ep.env(),
    ["get-credentials", `--cache-dir=${dir}`, ...extra],
  );
}

test("100 requests over 10 service accounts, a fresh token and a new process each: at most 10 STS and 10 ECR calls", async () => {
  const dir = freshDir();
  const sas = accounts(10);
  const calls = await callsOf(s.ep, async () => {
    for (let round = 0; round < 10; round++) {
      for (const sa of sas) ok(await pull(sa, dir));
    }
  });
  const sts = calls.filter((c) => c.api === "sts");
  const ecr = calls.filter((c) => c.api === "ecr");
  assert.ok(sts.length <= 10, `${sts.length} STS calls`);
  assert.ok(ecr.length <= 10, `${ecr.length} ECR calls`);
  assert.equal(
    sts.map((c) => c.form.RoleSessionName).sort(),
    sas.map((sa) => `${sa.namespace}.${sa.name}`).sort(),
    "one exchange per service account",
  );
  assert.is(
    readdirSync(dir).filter((f) => f.endsWith(".json")).length,
    10,
    "one entry per service account, not per token",
  );
});

test("the same account's name with a new UID (deleted and made again) is another account: a miss", async () => {
  const dir = freshDir();
  const sa = { namespace: "team", name: "app", uid: "uid-1" };
  const calls = await callsOf(s.ep, async () => {
    ok(await pull(sa, dir));
    ok(await pull(sa, dir));
    ok(await pull({ ...sa, uid: "uid-2" }, dir));
  });
  assert.equal(
    calls.map((c) => c.api),
    ["sts", "ecr", "sts", "ecr"],
  );
});

test("each account is answered with its own token; a served password is never another account's", async () => {
  const dir = freshDir();
  const sas = accounts(4, "own");
  const served = new Map<string, string>();
  for (const sa of sas) {
    s.ep.behaviour = defaultBehaviour(`password-of-${sa.uid}`);
    served.set(sa.uid, credentialsFor(ok(await pull(sa, dir)), IMAGE).password);
  }
  s.ep.behaviour = defaultBehaviour("password-nobody-should-see");
  for (const sa of [...sas].reverse()) {
    assert.is(credentialsFor(ok(await pull(sa, dir)), IMAGE).password, `password-of-${sa.uid}`, sa.uid);
  }
  assert.equal(
    [...served.values()],
    sas.map((sa) => `password-of-${sa.uid}`),
  );
});

test("bounded under churn: with --cache-max-entries 8, 30 accounts leave at most 8 entries, the newest kept", async () => {
  const dir = freshDir();
  const sas = accounts(30, "churn");
  const args = ["--cache-max-entries", "8"];
  for (const sa of sas) {
    ok(await pull(sa, dir, args));
    const entries = readdirSync(dir).filter((f) => f.endsWith(".json"));
    assert.ok(entries.length <= 8, `${entries.length} entries after ${sa.name}`);
  }
  // The most recent account is still a hit.
  const calls = await callsOf(s.ep, async () => {
    ok(await pull(sas[sas.length - 1] as ServiceAccountClaims, dir, args));
  });
  assert.equal(calls, []);
  assert.equal(
    readdirSync(dir).filter((f) => !f.endsWith(".json")),
    [],
    "no temporary file left behind",
  );
});

test("expired entries are deleted when a new one is written", async () => {
  const dir = freshDir();
  s.ep.behaviour = { ...defaultBehaviour(), ecr: { kind: "token", password: "short-lived-0123", expiresIn: 2 } };
  const calls = await callsOf(s.ep, async () => {
    for (const sa of accounts(3, "short")) ok(await pull(sa, dir));
  });
  const lastExpiry = Math.max(...calls.filter((c) => c.expiresAt !== undefined).map((c) => c.expiresAt as number));
  assert.is(readdirSync(dir).length, 3);
  // Wait out the tokens' life (their expiry as the endpoint stated it), then write one more.
  while (Date.now() <= lastExpiry * 1000 + 1000) await new Promise((r) => setTimeout(r, 200));
  s.ep.behaviour = defaultBehaviour();
  ok(await pull({ namespace: "later", name: "x", uid: "uid-later" }, dir));
  const left = readdirSync(dir);
  assert.is(left.length, 1, `only the new entry: ${left.join(", ")}`);
  assert.is(statSync(join(dir, left[0] as string)).mode & 0o777, 0o600);
});

test("the default cap is 1,000 entries (BERTH_CACHE_MAX_ENTRIES overrides it), and a bad value is refused", async () => {
  const dir = freshDir();
  const sas = accounts(3, "env");
  for (const sa of sas) {
    ok(
      await run(
        request(IMAGE, {
          serviceAccountToken: serviceAccountToken(sa),
          serviceAccountAnnotations: { [ANNOTATION]: ROLE },
        }),
        s.ep.env({ BERTH_CACHE_MAX_ENTRIES: "2" }),
        ["get-credentials", `--cache-dir=${dir}`],
      ),
    );
  }
  assert.is(readdirSync(dir).length, 2);
  const r = await pull(sas[0] as ServiceAccountClaims, dir, ["--cache-max-entries=0"]);
  assert.is(r.code, 1);
  assert.match(r.stderr, 'invalid cache max entries "0"');
});

test.run();
