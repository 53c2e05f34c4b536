// One request through provider.ts with a fake token source and clock: identity choice, cache
// reuse until half-life, stale fallback, deadline.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig, type Config } from "../../credential-provider/config.ts";
import type { FetchPlan } from "../../credential-provider/ecr-registry.ts";
import { cacheKeys, getCredentials, planFor, type Deps, type Outcome } from "../../credential-provider/provider.ts";
import { serviceAccountToken } from "../helpers/service-account-token.ts";
import { stderrSink } from "../../credential-provider/stderr.ts";
import type { CredentialProviderRequest } from "../../shared/kubelet/types.ts";

const test = suite("credential-provider: provider logic");
const V1 = "credentialprovider.kubelet.k8s.io/v1" as const;
const HOST = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
const req = (image: string, extra: Partial<CredentialProviderRequest> = {}): CredentialProviderRequest => ({
  kind: "CredentialProviderRequest",
  apiVersion: V1,
  image,
  ...extra,
});
const config = (argv: string[] = [], env: Record<string, string> = {}): Config => {
  const c = loadConfig(argv, env);
  if (!c.ok) throw new Error(c.error);
  return c.value;
};
const plan = (r: CredentialProviderRequest, c: Config = config()): FetchPlan => {
  const p = planFor(r, c);
  if (!p.ok) throw new Error(p.error);
  return p.plan;
};

let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), "berth-unit-"));
});
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** A token source and clock; `written` is what the run's stderr sink wrote. */
function fake(now: { t: number }, behaviour: () => Promise<{ password: string; life: number } | { error: string }>) {
  const plans: FetchPlan[] = [];
  const written: string[] = [];
  const stderr = stderrSink("test", (t) => written.push(t));
  const deps: Deps = {
    fetchToken: async (p) => {
      plans.push(p);
      const b = await behaviour();
      if ("error" in b) return { ok: false, error: b.error };
      return { ok: true, value: { username: "AWS", password: b.password, expiresAt: now.t + b.life } };
    },
    now: () => now.t,
    stderr,
  };
  return { deps, plans, stderr, written };
}

/** The success arm, or a failed assertion naming the error. */
function success(o: Outcome): Extract<Outcome, { ok: true }> {
  if (!o.ok) assert.unreachable(o.error);
  return o as Extract<Outcome, { ok: true }>;
}

test("identity: annotation > role map (AssumeRole, its meaning without a token) > AWS_ECR_ROLE_ARN with a token", () => {
  const c = config(["--role-map", `${HOST}=arn:aws:iam::123456789012:role/map`], {
    AWS_ECR_ROLE_ARN: "arn:aws:iam::123456789012:role/env",
  });
  const ann = { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/ann" };
  assert.equal(plan(req(`${HOST}/a`, { serviceAccountToken: "t", serviceAccountAnnotations: ann }), c).identity, {
    mode: "web-identity",
    roleArn: "arn:aws:iam::123456789012:role/ann",
    token: "t",
    sessionName: "ecr-credential-provider",
  });
  assert.equal(plan(req(`${HOST}/a`, { serviceAccountToken: "t" }), c).identity, {
    mode: "assume-role",
    roleArn: "arn:aws:iam::123456789012:role/map",
    sessionName: "ecr-credential-provider",
  });
  assert.equal(plan(req("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a", { serviceAccountToken: "t" }), c).identity, {
    mode: "web-identity",
    roleArn: "arn:aws:iam::123456789012:role/env",
    token: "t",
    sessionName: "ecr-credential-provider",
  });
  assert.equal(plan(req(`${HOST}/a`), c).identity, {
    mode: "assume-role",
    roleArn: "arn:aws:iam::123456789012:role/map",
    sessionName: "ecr-credential-provider",
  });
  assert.equal(plan(req("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a"), c).identity, { mode: "node" });
  assert.equal(
    plan(req(`${HOST}/a`, { serviceAccountToken: "t" })).identity,
    { mode: "node" },
    "token, no role anywhere: node credentials",
  );
});

test("cache key: same for every repository of a registry and every token of a service account; different per service account, node key, region", () => {
  const c = config();
  const k = (r: CredentialProviderRequest, cc: Config = c) => cacheKeys(plan(r, cc), cc)?.token;
  assert.is(k(req(`${HOST}/a`)), k(req(`${HOST}/b/c`)));
  const ann = { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/r" };
  const sa = { namespace: "team-a", name: "app", uid: "0b7e5f3c-1" };
  const asSa = (claims: typeof sa) =>
    req(`${HOST}/a`, { serviceAccountToken: serviceAccountToken(claims), serviceAccountAnnotations: ann });
  assert.is(k(asSa(sa)), k(asSa(sa)), "a new token of the same service account");
  assert.is.not(k(asSa(sa)), k(asSa({ ...sa, uid: "0b7e5f3c-2" })), "the account deleted and made again");
  assert.is.not(k(asSa(sa)), k(asSa({ ...sa, namespace: "team-b" })));
  assert.is(
    k(req(`${HOST}/a`, { serviceAccountToken: "not-a-jwt", serviceAccountAnnotations: ann })),
    undefined,
    "a token naming no service account is not cached",
  );
  assert.is.not(k(req(`${HOST}/a`)), k(req(`${HOST}/a`), config([], { AWS_ACCESS_KEY_ID: "AKIDX" })));
  assert.is.not(k(req("quay.io/a")), k(req("quay.io/a"), config([], { AWS_REGION: "eu-west-1" })));
  assert.match(k(req(`${HOST}/a`)) ?? "", /^[0-9a-f]{40}$/, "a hash: the file name holds no token");
});

test("cache: fetched once, reused until half-life, refreshed after", async () => {
  const now = { t: 1_800_000_000_000 };
  const f = fake(now, async () => ({ password: `pw-${now.t}`, life: 12 * 3600_000 }));
  const c = config([`--cache-dir=${join(tmp, "a")}`]);
  const first = success(await getCredentials(req(`${HOST}/a`), c, f.deps));
  assert.is(first.source, "ecr");
  assert.is(first.response.cacheDuration, "6h0m0s");
  now.t += 5 * 3600_000;
  const second = success(await getCredentials(req(`${HOST}/b`), c, f.deps));
  assert.is(second.source, "cache");
  assert.is(second.response.cacheDuration, "3h30m0s", "half of the 7h left");
  assert.is(f.plans.length, 1);
  now.t += 1 * 3600_000 + 1;
  const third = success(await getCredentials(req(`${HOST}/a`), c, f.deps));
  assert.is(third.source, "ecr");
  assert.is(f.plans.length, 2);
  assert.is(readdirSync(join(tmp, "a")).length, 1);
});

test("stale fallback only while the token has life left; cacheDuration capped at 5m", async () => {
  const now = { t: 1_800_000_000_000 };
  let fail = false;
  const f = fake(now, async () =>
    fail ? { error: "ThrottlingException: Rate exceeded" } : { password: "pw", life: 12 * 3600_000 },
  );
  const c = config([`--cache-dir=${join(tmp, "b")}`]);
  success(await getCredentials(req(`${HOST}/a`), c, f.deps));
  fail = true;
  now.t += 8 * 3600_000;
  const stale = success(await getCredentials(req(`${HOST}/a`), c, f.deps));
  assert.is(stale.source, "stale-cache");
  assert.is(stale.response.cacheDuration, "5m0s");
  f.stderr.flush();
  assert.match(f.written.join(""), "serving a cached token");
  now.t += 4 * 3600_000 - 60_000;
  const gone = await getCredentials(req(`${HOST}/a`), c, f.deps);
  assert.equal([gone.ok, gone.ok ? "" : gone.error], [false, "ThrottlingException: Rate exceeded"]);
});

test("deadline: a fetch that never settles ends with the timeout message; the signal is aborted", async () => {
  let aborted = false;
  const deps: Deps = {
    fetchToken: (_p, signal) =>
      new Promise(() => {
        signal.addEventListener("abort", () => (aborted = true));
      }),
    now: Date.now,
    stderr: stderrSink("test", () => {}),
  };
  const out = await getCredentials(req(`${HOST}/a`), config(["--timeout=50ms"]), deps);
  assert.equal(
    [out.ok, out.ok ? "" : out.error],
    [
      false,
      "timed out after 50ms waiting for ECR (region us-west-2); check network access, proxy settings (HTTPS_PROXY, NO_PROXY) and the credential source",
    ],
  );
  assert.ok(aborted);
});

test("secrets learned on the way are registered with the sink: the pod's token and a cached token", async () => {
  const now = { t: 1_800_000_000_000 };
  const f = fake(now, async () => ({ password: "cached-pw-7", life: 12 * 3600_000 }));
  const c = config([`--cache-dir=${join(tmp, "c")}`]);
  success(await getCredentials(req(`${HOST}/a`, { serviceAccountToken: "pod-token-secret" }), c, f.deps));
  // A second run with a sink of its own reads the token from the cache file.
  const g = fake(now, async () => ({ error: "unused" }));
  success(await getCredentials(req(`${HOST}/a`, { serviceAccountToken: "pod-token-secret" }), c, g.deps));
  const token = Buffer.from("AWS:cached-pw-7").toString("base64");
  g.stderr.fail(`echo pod-token-secret ${token} cached-pw-7`);
  assert.equal(g.written, ["test: echo [REDACTED] [REDACTED] [REDACTED]\n"]);
});

test("mirror: the ECR target is asked, the auth key is the image's registry", async () => {
  const now = { t: 1_800_000_000_000 };
  const f = fake(now, async () => ({ password: "pw", life: 3600_000 }));
  const out = await getCredentials(
    req("docker.io/library/nginx"),
    config(["--registry-mirror=docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/hub"]),
    f.deps,
  );
  assert.equal(Object.keys(success(out).response.auth ?? {}), ["docker.io"]);
  assert.equal(
    [f.plans[0]?.host, f.plans[0]?.region, f.plans[0]?.api],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", "ecr"],
  );
});

test.run();
