// One request through provider.ts with a fake token source and clock: identity choice, cache
// reuse until half-life, stale fallback, deadline.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig, type Config } from "../../credential-provider/config.ts";
import type { FetchPlan } from "../../credential-provider/ecr-registry.ts";
import { getCredentials, identityKey, planFor, type Deps } from "../../credential-provider/provider.ts";
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

function fake(now: { t: number }, behaviour: () => Promise<{ password: string; life: number }>) {
  const plans: FetchPlan[] = [];
  const warnings: string[] = [];
  const deps: Deps = {
    fetchToken: async (p) => {
      plans.push(p);
      const b = await behaviour();
      return { username: "AWS", password: b.password, expiresAt: now.t + b.life };
    },
    now: () => now.t,
    warn: (m) => warnings.push(m),
  };
  return { deps, plans, warnings };
}

test("identity: annotation > role map > AWS_ECR_ROLE_ARN with a token; role map alone without one", () => {
  const c = config(["--role-map", `${HOST}=arn:aws:iam::123456789012:role/map`], {
    AWS_ECR_ROLE_ARN: "arn:aws:iam::123456789012:role/env",
  });
  const ann = { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/ann" };
  assert.equal(plan(req(`${HOST}/a`, { serviceAccountToken: "t", serviceAccountAnnotations: ann }), c).identity, {
    mode: "web-identity",
    roleArn: "arn:aws:iam::123456789012:role/ann",
    token: "t",
  });
  assert.equal(plan(req(`${HOST}/a`, { serviceAccountToken: "t" }), c).identity, {
    mode: "web-identity",
    roleArn: "arn:aws:iam::123456789012:role/map",
    token: "t",
  });
  assert.equal(plan(req("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a", { serviceAccountToken: "t" }), c).identity, {
    mode: "web-identity",
    roleArn: "arn:aws:iam::123456789012:role/env",
    token: "t",
  });
  assert.equal(plan(req(`${HOST}/a`), c).identity, {
    mode: "assume-role",
    roleArn: "arn:aws:iam::123456789012:role/map",
  });
  assert.equal(plan(req("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a"), c).identity, { mode: "node" });
  assert.equal(
    plan(req(`${HOST}/a`, { serviceAccountToken: "t" })).identity,
    { mode: "node" },
    "token, no role anywhere: node credentials",
  );
});

test("cache identity: same for every repository of a registry, different per token, per node key, per region", () => {
  const c = config();
  const k = (r: CredentialProviderRequest, cc: Config = c) => identityKey(plan(r, cc), cc);
  assert.is(k(req(`${HOST}/a`)), k(req(`${HOST}/b/c`)));
  const ann = { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/r" };
  assert.is.not(
    k(req(`${HOST}/a`, { serviceAccountToken: "t1", serviceAccountAnnotations: ann })),
    k(req(`${HOST}/a`, { serviceAccountToken: "t2", serviceAccountAnnotations: ann })),
  );
  assert.is.not(k(req(`${HOST}/a`)), k(req(`${HOST}/a`), config([], { AWS_ACCESS_KEY_ID: "AKIDX" })));
  assert.is.not(k(req("quay.io/a")), k(req("quay.io/a"), config([], { AWS_REGION: "eu-west-1" })));
  assert.match(k(req(`${HOST}/a`)), /^[0-9a-f]{40}$/, "a hash: the file name holds no token");
});

test("cache: fetched once, reused until half-life, refreshed after", async () => {
  const now = { t: 1_800_000_000_000 };
  const f = fake(now, async () => ({ password: `pw-${now.t}`, life: 12 * 3600_000 }));
  const c = config([`--cache-dir=${join(tmp, "a")}`]);
  const first = await getCredentials(req(`${HOST}/a`), c, f.deps);
  assert.ok(first.ok && first.source === "ecr" && first.response.cacheDuration === "6h0m0s");
  now.t += 5 * 3600_000;
  const second = await getCredentials(req(`${HOST}/b`), c, f.deps);
  assert.ok(second.ok && second.source === "cache");
  assert.is(second.ok && second.response.cacheDuration, "3h30m0s", "half of the 7h left");
  assert.is(f.plans.length, 1);
  now.t += 1 * 3600_000 + 1;
  const third = await getCredentials(req(`${HOST}/a`), c, f.deps);
  assert.ok(third.ok && third.source === "ecr");
  assert.is(f.plans.length, 2);
  assert.is(readdirSync(join(tmp, "a")).length, 1);
});

test("stale fallback only while the token has life left; cacheDuration capped at 5m", async () => {
  const now = { t: 1_800_000_000_000 };
  let fail = false;
  const f = fake(now, async () => {
    if (fail) throw new Error("ThrottlingException: Rate exceeded");
    return { password: "pw", life: 12 * 3600_000 };
  });
  const c = config([`--cache-dir=${join(tmp, "b")}`]);
  await getCredentials(req(`${HOST}/a`), c, f.deps);
  fail = true;
  now.t += 8 * 3600_000;
  const stale = await getCredentials(req(`${HOST}/a`), c, f.deps);
  assert.ok(stale.ok && stale.source === "stale-cache" && stale.response.cacheDuration === "5m0s");
  assert.match(f.warnings.join("\n"), "serving a cached token");
  now.t += 4 * 3600_000 - 60_000;
  const gone = await getCredentials(req(`${HOST}/a`), c, f.deps);
  assert.equal(gone, { ok: false, error: "ThrottlingException: Rate exceeded" });
});

test("deadline: a fetch that never settles ends with the timeout message; the signal is aborted", async () => {
  let aborted = false;
  const deps: Deps = {
    fetchToken: (_p, signal) =>
      new Promise(() => {
        signal.addEventListener("abort", () => (aborted = true));
      }),
    now: Date.now,
    warn: () => {},
  };
  const out = await getCredentials(req(`${HOST}/a`), config(["--timeout=50ms"]), deps);
  assert.ok(!out.ok);
  assert.match(!out.ok ? out.error : "", /^timed out after .* waiting for ECR \(region us-west-2\)/);
  assert.ok(aborted);
});

test("mirror: the ECR target is asked, the auth key is the image's registry", async () => {
  const now = { t: 1_800_000_000_000 };
  const f = fake(now, async () => ({ password: "pw", life: 3600_000 }));
  const out = await getCredentials(
    req("docker.io/library/nginx"),
    config(["--registry-mirror=docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/hub"]),
    f.deps,
  );
  assert.ok(out.ok);
  assert.equal(out.ok && Object.keys(out.response.auth ?? {}), ["docker.io"]);
  assert.equal(
    [f.plans[0]?.host, f.plans[0]?.region, f.plans[0]?.api],
    ["123456789012.dkr.ecr.us-east-1.amazonaws.com", "us-east-1", "ecr"],
  );
});

test.run();
