// Fast failure during an outage: with the disk cache on, a failed fetch is remembered for a short
// time (default 60s, --failure-memory), so a pull storm against a black-holed endpoint waits for
// one timeout, not one per pull. The kubelet never caches a failure itself and runs the plugin
// again for every pull (pkg/credentialprovider/plugin/plugin.go: provide caches only successes).
// Counted where it happens: the black hole records every connection it was sent.
import { join } from "node:path";
import * as assert from "uvu/assert";
import { ageCachedToken } from "../helpers/token-cache.ts";
import { defaultBehaviour } from "../helpers/aws-endpoint.ts";
import { type BlackHole, startBlackHole } from "../helpers/black-hole.ts";
import { serviceAccountToken } from "../helpers/service-account-token.ts";
import { callsOf, endpointSuite, failed, ok, PRIVATE, request, run } from "./helpers.ts";
import { existsSync, readdirSync, readFileSync } from "node:fs";

const s = endpointSuite("credential-provider: failures remembered during an outage");
const { test } = s;

let hole: BlackHole;
test.before(async () => {
  hole = await startBlackHole();
});
test.after(async () => {
  await hole.close();
});

let dirN = 0;
const freshDir = () => join(s.tmp, `failure-memory-${++dirN}`);
/** ECR Public black-holed, everything else answering. */
const darkPublic = (extra: Record<string, string> = {}) =>
  s.ep.env({ AWS_ENDPOINT_URL_ECR_PUBLIC: hole.url, ...extra });
const PUBLIC_IMAGE = "public.ecr.aws/nginx/nginx";

async function attemptsOf(fn: () => Promise<unknown>): Promise<number> {
  const before = hole.attempts.length;
  await fn();
  return hole.attempts.length - before;
}

test("black-holed ECR Public: one run's attempts, then every pull within the minute fails at once without a connection", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  const first = await attemptsOf(async () => {
    failed(
      await run(request(PUBLIC_IMAGE), darkPublic(), args),
      /ECR Public GetAuthorizationToken in us-east-1 failed: TimeoutError/,
    );
  });
  assert.is(first, 3, "the SDK's three attempts, each given up by the client");
  assert.ok(
    hole.attempts.slice(-3).every((a) => a.closedAt !== undefined),
    "the client closed every attempt itself",
  );
  const later = await attemptsOf(async () => {
    for (const image of [PUBLIC_IMAGE, "public.ecr.aws/docker/library/redis", "public.ecr.aws/eks/pause"]) {
      failed(
        await run(request(image), darkPublic(), args),
        /failed: TimeoutError.*\(at .*; not asked again before .*\)/,
      );
    }
  });
  assert.is(later, 0, "no pull within the failure memory reached the endpoint");
});

test("the memory is per endpoint for an unreachable one: a second service account does not wait again", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`, "--timeout=2s"];
  const pull = (uid: string) =>
    run(
      request(PUBLIC_IMAGE, {
        serviceAccountToken: serviceAccountToken({ namespace: "team", name: `sa-${uid}`, uid }),
        serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull" },
      }),
      darkPublic(),
      args,
    );
  assert.ok((await attemptsOf(async () => failed(await pull("u1"), "timed out after 2s"))) >= 1);
  const calls = await callsOf(s.ep, async () => {
    assert.is(await attemptsOf(async () => failed(await pull("u2"), "timed out after 2s")), 0);
  });
  assert.equal(calls, [], "not even STS was asked");
});

test("--failure-memory 0s: every pull tries again", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`, "--timeout=1s", "--failure-memory=0s"];
  const n = await attemptsOf(async () => {
    for (let i = 0; i < 3; i++) failed(await run(request(PUBLIC_IMAGE), darkPublic(), args), "timed out after 1s");
  });
  assert.is(n, 3, "one attempt per pull (each cut by the 1s deadline)");
  assert.not.ok(existsSync(dir), "nothing remembered");
});

test("the memory runs out: after --failure-memory the endpoint is asked again", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`, "--timeout=1s", "--failure-memory=1s"];
  failed(await run(request(PUBLIC_IMAGE), darkPublic(), args), "timed out after 1s");
  const file = readdirSync(dir).find((f) => f.endsWith(".failure.json")) as string;
  const until = (JSON.parse(readFileSync(join(dir, file), "utf8")) as { until: number }).until;
  while (Date.now() <= until) await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    (await attemptsOf(async () => failed(await run(request(PUBLIC_IMAGE), darkPublic(), args), "timed out"))) >= 1,
  );
});

test("a remembered failure with a still-valid cached token: the token is served, nothing is asked", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`, "--timeout=1s"];
  ok(await run(request(PUBLIC_IMAGE), s.ep.env(), args));
  // Past half-life, 5 hours left.
  ageCachedToken(dir);
  const r1 = await run(request(PUBLIC_IMAGE), darkPublic(), args);
  ok(r1);
  assert.match(r1.stderr, "serving a cached token");
  const n = await attemptsOf(async () => {
    const r2 = await run(request(PUBLIC_IMAGE), darkPublic(), args);
    ok(r2);
    assert.match(r2.stderr, /serving a cached token .* not asked again before/);
  });
  assert.is(n, 0);
});

test("a failure that is the identity's (AccessDenied) is remembered for that identity only", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "AccessDeniedException", message: "not authorized" },
  };
  const calls = await callsOf(s.ep, async () => {
    failed(await run(request(`${PRIVATE}/a`), s.ep.env(), args), "AccessDeniedException: not authorized");
    failed(await run(request(`${PRIVATE}/b`), s.ep.env(), args), /AccessDeniedException: not authorized \(at /);
    s.ep.behaviour = defaultBehaviour();
    ok(await run(request(`${PRIVATE}/a`), s.ep.env({ AWS_ACCESS_KEY_ID: "AKIDOTHER000EXAMPLE" }), args));
  });
  assert.equal(
    calls.map((c) => [c.api, c.scope?.accessKeyId]),
    [
      ["ecr", "AKIDNODE0000EXAMPLE"],
      ["ecr", "AKIDOTHER000EXAMPLE"],
    ],
  );
});

test("a bad --failure-memory is refused", async () => {
  failed(await run(request(PUBLIC_IMAGE), s.ep.env(), ["--failure-memory=2h"]), 'invalid failure memory "2h"');
});

test.run();
