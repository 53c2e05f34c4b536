// berth-credential-provider as the kubelet sees it, all under a clean environment:
// 1. Start-up: exec latency of the binary warm (disk-cache hit, node mode and token mode: no AWS
//    SDK loaded) and cold (GetAuthorizationToken against a local endpoint), next to bare
//    `node -e 0` of the same Node, interleaved round by round; ratios against that baseline in the
//    same run. With BERTH_CREDENTIAL_PROVIDER_BEFORE=<binary> the same warm case of that binary
//    (say, one built from main) is measured beside ours.
// 2. Cache round trips: 100 token-mode pulls over 10 service accounts, a fresh token and a new
//    process each, counted at the local endpoint.
// 3. Time to fail with ECR Public black-holed (a listener that accepts and never answers): the
//    first pull, which waits out the attempts, and the pulls after it while the failure is
//    remembered; the attempts as the endpoint saw them.
// Targets: warm <= 1.3x, cold <= 3x; at most 10 STS and 10 ECR calls per 100 pulls.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAwsEndpoint } from "../test/helpers/aws-endpoint.ts";
import { startBlackHole } from "../test/helpers/black-hole.ts";
import { CREDENTIAL_PROVIDER } from "../test/helpers/exec.ts";
import { serviceAccountToken } from "../test/helpers/service-account-token.ts";
import { quantile } from "./stats.ts";
import { timedExec, type Timed } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const FAIL_RUNS = Number(process.env.BENCH_FAIL_RUNS ?? 2);
const BEFORE = process.env.BERTH_CREDENTIAL_PROVIDER_BEFORE;
const CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

const timed = (file: string, args: string[], env: Record<string, string>, stdin: string) =>
  timedExec(file, args, { env: { PATH: CLEAN_PATH, ...env }, stdin });

const endpoint = await startAwsEndpoint();
const hole = await startBlackHole();
const cacheRoot = mkdtempSync(join(tmpdir(), "berth-bench-"));
const PRIVATE_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/app";
const requestFor = (image: string, extra: object = {}) =>
  JSON.stringify({
    apiVersion: "credentialprovider.kubelet.k8s.io/v1",
    kind: "CredentialProviderRequest",
    image,
    ...extra,
  });
const request = requestFor(PRIVATE_IMAGE);
const ROLE = { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull" };
const tokenRequest = (uid: string) =>
  requestFor(PRIVATE_IMAGE, {
    serviceAccountToken: serviceAccountToken({ namespace: "bench", name: `sa-${uid}`, uid }),
    serviceAccountAnnotations: ROLE,
  });
const warmDir = join(cacheRoot, "warm");
const env = endpoint.env();
const cacheArgs = (dir: string) => ["get-credentials", `--cache-dir=${dir}`];

type Case = { name: string; run: (i: number) => Promise<Timed>; target?: number; answers: boolean };
const cases: Case[] = [
  { name: "`node -e 0` (baseline)", run: () => timed(process.execPath, ["-e", "0"], {}, ""), answers: false },
  {
    name: "warm: disk-cache hit",
    run: () => timed(CREDENTIAL_PROVIDER, cacheArgs(warmDir), env, request),
    target: 1.3,
    answers: true,
  },
  {
    name: "warm: token-mode disk-cache hit (a new pod's token)",
    run: () => timed(CREDENTIAL_PROVIDER, cacheArgs(warmDir), env, tokenRequest("warm")),
    target: 1.3,
    answers: true,
  },
  ...(BEFORE
    ? [
        {
          name: `before (${BEFORE}): disk-cache hit`,
          run: () => timed(BEFORE, cacheArgs(join(cacheRoot, "before")), env, request),
          answers: true,
        },
      ]
    : []),
  // A fresh cache directory each time: the token must come from the endpoint.
  {
    name: "cold: GetAuthorizationToken (local endpoint)",
    run: (i) => timed(CREDENTIAL_PROVIDER, cacheArgs(join(cacheRoot, `cold-${i}`)), env, request),
    target: 3,
    answers: true,
  },
];

const lines: string[] = [];
try {
  for (const c of cases.slice(1, -1)) {
    const prime = await c.run(0);
    if (prime.code !== 0) throw new Error(`priming ${c.name} failed (exit ${prime.code}): ${prime.stderr}`);
  }
  const samples = cases.map(() => [] as number[]);
  for (let i = 0; i < 3; i++) for (const c of cases) await c.run(-1 - i); // warm the page cache
  const callsBefore = endpoint.calls.length;
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so load drift on the machine hits every case alike.
    for (const [k, c] of cases.entries()) {
      const r = await c.run(i);
      if (r.code !== 0 || (c.answers && !r.stdout.includes('"auth"'))) throw new Error(`${c.name}: exit ${r.code}`);
      samples[k]!.push(r.ms);
    }
  }
  const coldCalls = endpoint.calls.length - callsBefore;
  if (coldCalls !== RUNS)
    throw new Error(`expected ${RUNS} endpoint calls (cold only), saw ${coldCalls}: a warm case is not a cache hit`);
  const baseMed = quantile(samples[0]!, 0.5);
  const baseP95 = quantile(samples[0]!, 0.95);
  lines.push(
    `### berth-credential-provider start-up (${RUNS} runs each, clean env, ${process.version})`,
    "",
    "| case | median ms | p95 ms | median ratio | p95 ratio | target | verdict |",
    "|---|---:|---:|---:|---:|---|---|",
  );
  for (const [k, c] of cases.entries()) {
    const med = quantile(samples[k]!, 0.5);
    const p95 = quantile(samples[k]!, 0.95);
    const ratio = med / baseMed;
    const verdict = c.target === undefined ? "" : ratio <= c.target ? "met" : "missed";
    lines.push(
      `| ${c.name} | ${med.toFixed(1)} | ${p95.toFixed(1)} | ${ratio.toFixed(2)}x | ${(p95 / baseP95).toFixed(2)}x | ${c.target ? `≤ ${c.target}x` : ""} | ${verdict} |`,
    );
  }

  // 2. Round trips of the token-mode cache.
  const roundDir = join(cacheRoot, "rounds");
  const before = endpoint.calls.length;
  for (let round = 0; round < 10; round++) {
    for (let sa = 0; sa < 10; sa++) {
      const r = await timed(CREDENTIAL_PROVIDER, cacheArgs(roundDir), env, tokenRequest(`rounds-${sa}`));
      if (r.code !== 0) throw new Error(`token-mode pull failed: ${r.stderr}`);
    }
  }
  const calls = endpoint.calls.slice(before);
  const sts = calls.filter((c) => c.api === "sts").length;
  const ecr = calls.filter((c) => c.api === "ecr").length;
  lines.push(
    "",
    "### Token-mode cache round trips (100 pulls, 10 service accounts, a fresh token and a new process each)",
    "",
    "| calls | STS | ECR | target | verdict |",
    "|---|---:|---:|---|---|",
    `| per 100 pulls | ${sts} | ${ecr} | ≤ 10 each | ${sts <= 10 && ecr <= 10 ? "met" : "missed"} |`,
  );

  // 3. ECR Public black-holed.
  const darkEnv = endpoint.env({ AWS_ENDPOINT_URL_ECR_PUBLIC: hole.url });
  const publicRequest = requestFor("public.ecr.aws/nginx/nginx");
  const first: { ms: number; attempts: number[] }[] = [];
  const repeated: number[] = [];
  let repeatedAttempts = 0;
  for (let i = 0; i < FAIL_RUNS; i++) {
    const dir = join(cacheRoot, `dark-${i}`);
    const seen = hole.attempts.length;
    const r = await timed(CREDENTIAL_PROVIDER, cacheArgs(dir), darkEnv, publicRequest);
    if (r.code !== 1) throw new Error(`a black-holed pull answered (exit ${r.code})`);
    // When each attempt reached the endpoint and when the client gave up on it.
    const attempts = hole.attempts.slice(seen).map((a) => ((a.closedAt ?? a.connectedAt) - a.connectedAt) / 1000);
    first.push({ ms: r.ms, attempts });
    const seenAfter = hole.attempts.length;
    for (let j = 0; j < 10; j++) {
      const again = await timed(CREDENTIAL_PROVIDER, cacheArgs(dir), darkEnv, publicRequest);
      if (again.code !== 1) throw new Error("a remembered failure answered");
      repeated.push(again.ms);
    }
    repeatedAttempts += hole.attempts.length - seenAfter;
  }
  lines.push(
    "",
    `### Time to fail, ECR Public black-holed (accepts, never answers), --cache-dir, ${FAIL_RUNS} first pulls and ${repeated.length} repeated`,
    "",
    "| pull | median ms | worst ms | attempts reaching the endpoint | each attempt held (s, the endpoint's clock) |",
    "|---|---:|---:|---:|---|",
    `| first | ${quantile(
      first.map((f) => f.ms),
      0.5,
    ).toFixed(
      0,
    )} | ${Math.max(...first.map((f) => f.ms)).toFixed(0)} | ${first.map((f) => f.attempts.length).join(", ")} | ${first.map((f) => f.attempts.map((a) => a.toFixed(2)).join(" + ")).join("; ")} |`,
    `| repeated (failure remembered) | ${quantile(repeated, 0.5).toFixed(0)} | ${Math.max(...repeated).toFixed(0)} | ${repeatedAttempts} | |`,
    `| \`node -e 0\` (baseline, above) | ${baseMed.toFixed(0)} | | | |`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await endpoint.close();
  await hole.close();
  rmSync(cacheRoot, { recursive: true, force: true });
}
