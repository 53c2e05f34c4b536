// Property: whatever service accounts come and go, the disk cache never serves one account's
// credentials to another. Random claim sets (namespaces, names and UIDs drawn from small pools
// so that names repeat with new UIDs and UIDs repeat under other names), random roles and
// registries, a clock that moves past half-lives, a small cap that forces evictions; the token
// source hands out a password naming the account it was exchanged for, and every answer must
// carry the password of the account that asked.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig } from "../../credential-provider/config.ts";
import { getCredentials, type Deps } from "../../credential-provider/provider.ts";
import { serviceAccountOf } from "../../credential-provider/service-account.ts";
import { stderrSink } from "../../credential-provider/stderr.ts";
import { serviceAccountToken } from "../helpers/service-account-token.ts";
import { tempDir } from "../helpers/temp.ts";

const test = suite("credential-provider: no credentials across service accounts (property)");

/** mulberry32: small, seeded, so a failure can be replayed with BERTH_PROPERTY_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const owner = (ns: string, name: string, uid: string) => `${ns}/${name}/${uid}`;

for (const seed of [1, 2, 3, 4, Number(process.env.BERTH_PROPERTY_SEED ?? Date.now() % 100000)]) {
  test(`seed ${seed}: 400 requests, every answer is the asking account's`, async () => {
    const random = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const dir = tempDir("property");
    try {
      const now = { t: 1_800_000_000_000 };
      let exchanges = 0;
      const deps: Deps = {
        fetchToken: async (plan) => {
          exchanges++;
          if (plan.identity.mode !== "web-identity") return { ok: false, error: "expected web identity" };
          const sa = serviceAccountOf(plan.identity.token);
          if (!sa) return { ok: false, error: "no claims" };
          return {
            ok: true,
            value: {
              username: "AWS",
              password: `${owner(sa.namespace, sa.name, sa.uid)}|${plan.identity.roleArn}|${plan.host}`,
              expiresAt: now.t + (1 + Math.floor(random() * 12)) * 3600_000,
            },
          };
        },
        now: () => now.t,
        stderr: stderrSink("test", () => {}),
      };
      const cap = 1 + Math.floor(random() * 12);
      const cfg = loadConfig([`--cache-dir=${join(dir, "c")}`, `--cache-max-entries=${cap}`], {});
      if (!cfg.ok) throw new Error(cfg.error);
      const namespaces = ["default", "team-a", "team-b"];
      const names = ["app", "web", "worker", "db"];
      const uids = ["u1", "u2", "u3", "u4", "u5", "u6"];
      const roles = ["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"];
      const hosts = ["123456789012.dkr.ecr.us-west-2.amazonaws.com", "210987654321.dkr.ecr.eu-west-1.amazonaws.com"];
      for (let i = 0; i < 400; i++) {
        const sa = { namespace: pick(namespaces), name: pick(names), uid: pick(uids) };
        const role = pick(roles);
        const host = pick(hosts);
        now.t += Math.floor(random() * 40 * 60_000);
        const out = await getCredentials(
          {
            kind: "CredentialProviderRequest",
            apiVersion: "credentialprovider.kubelet.k8s.io/v1",
            image: `${host}/app`,
            serviceAccountToken: serviceAccountToken(sa),
            serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": role },
          },
          cfg.value,
          deps,
        );
        if (!out.ok) assert.unreachable(out.error);
        const got = out.ok ? out.response.auth?.[host]?.password : undefined;
        assert.is(
          got,
          `${owner(sa.namespace, sa.name, sa.uid)}|${role}|${host}`,
          `request ${i} (${out.ok ? out.source : ""})`,
        );
      }
      assert.ok(exchanges < 400, `the cache was hit (${exchanges} exchanges for 400 requests)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test.run();
