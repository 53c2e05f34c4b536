// Start-up cost of berth-credential-provider as the kubelet sees it: exec latency of the SEA
// binary, warm (disk-cache hit: no AWS SDK loaded) and cold (GetAuthorizationToken against a
// local endpoint), next to bare `node -e 0` of the same Node, all under a clean environment.
// Prints a markdown table; ratios are against the baseline measured in the same run.
// Targets: warm <= 1.3x, cold <= 3x.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startAwsEndpoint } from "../test/helpers/aws-endpoint.ts";
import { CREDENTIAL_PROVIDER } from "../test/helpers/exec.ts";
import { quantile } from "./stats.ts";
import { timedExec, type Timed } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

const timed = (file: string, args: string[], env: Record<string, string>, stdin: string) =>
  timedExec(file, args, { env: { PATH: CLEAN_PATH, ...env }, stdin });

const endpoint = await startAwsEndpoint();
const cacheRoot = mkdtempSync(join(tmpdir(), "berth-bench-"));
const request = JSON.stringify({
  apiVersion: "credentialprovider.kubelet.k8s.io/v1",
  kind: "CredentialProviderRequest",
  image: "123456789012.dkr.ecr.us-west-2.amazonaws.com/app",
});
const warmDir = join(cacheRoot, "warm");
const env = endpoint.env();
const cases: { name: string; run: (i: number) => Promise<Timed> }[] = [
  { name: "`node -e 0` (baseline)", run: () => timed(process.execPath, ["-e", "0"], {}, "") },
  {
    name: "warm: disk-cache hit",
    run: () => timed(CREDENTIAL_PROVIDER, ["get-credentials", `--cache-dir=${warmDir}`], env, request),
  },
  // A fresh cache directory each time: the token must come from the endpoint.
  {
    name: "cold: GetAuthorizationToken (local endpoint)",
    run: (i) =>
      timed(CREDENTIAL_PROVIDER, ["get-credentials", `--cache-dir=${join(cacheRoot, `cold-${i}`)}`], env, request),
  },
];

try {
  const prime = await cases[1]!.run(0);
  if (prime.code !== 0) throw new Error(`priming the cache failed (exit ${prime.code})`);
  const samples = cases.map(() => [] as number[]);
  for (let i = 0; i < 3; i++) for (const c of cases) await c.run(-1 - i); // warm the page cache
  const callsBefore = endpoint.calls.length;
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so load drift on the machine hits every case alike.
    for (const [k, c] of cases.entries()) {
      const r = await c.run(i);
      if (r.code !== 0 || (k > 0 && !r.stdout.includes('"auth"'))) throw new Error(`${c.name}: exit ${r.code}`);
      samples[k]!.push(r.ms);
    }
  }
  const coldCalls = endpoint.calls.length - callsBefore;
  if (coldCalls !== RUNS)
    throw new Error(`expected ${RUNS} endpoint calls (cold only), saw ${coldCalls}: the warm case is not a cache hit`);
  const baseMed = quantile(samples[0]!, 0.5);
  const baseP95 = quantile(samples[0]!, 0.95);
  const targets = ["", "≤ 1.3x", "≤ 3x"];
  const limits = [Infinity, 1.3, 3];
  const lines = [
    `### berth-credential-provider start-up (${RUNS} runs each, clean env, ${process.version})`,
    "",
    "| case | median ms | p95 ms | median ratio | p95 ratio | target | verdict |",
    "|---|---:|---:|---:|---:|---|---|",
  ];
  for (const [k, c] of cases.entries()) {
    const med = quantile(samples[k]!, 0.5);
    const p95 = quantile(samples[k]!, 0.95);
    const ratio = med / baseMed;
    const verdict = k === 0 ? "" : ratio <= (limits[k] as number) ? "met" : "missed";
    lines.push(
      `| ${c.name} | ${med.toFixed(1)} | ${p95.toFixed(1)} | ${ratio.toFixed(2)}x | ${(p95 / baseP95).toFixed(2)}x | ${targets[k]} | ${verdict} |`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  await endpoint.close();
  rmSync(cacheRoot, { recursive: true, force: true });
}
