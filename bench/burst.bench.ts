// Bursts at the speed of process start: N ADDs on one network started at once (a node booting with
// N pods, a Deployment scaled up), next to N bare `node -e 0` started at once and N ADDs of
// Debian's host-local, in the same run. Rounds interleave the three (bare, berth, host-local,
// repeat) so a shared machine's noise hits them alike; the ratios are per round, and the table
// gives their medians. Every berth burst runs on a network whose store already exists (one ADD
// made it), each round on a fresh data dir, and must hand out N distinct addresses.
// Targets: 200 within 1.2x of the bare burst, 50 within 1.1x (median of the per-round ratios).
// Usage: node bench/burst.bench.ts   (BENCH_BURST_ROUNDS=N, default 5; BENCH_BURST_SIZES=50,200;
// BERTH_IPAM=path picks another build; BERTH_BASELINE_IPAM=path adds the bursts of an older build
// to every round, for a before/after in one run; needs npm run build first)
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { quantile } from "./stats.ts";
import { timedExec, type Timed } from "./timed-exec.ts";

const ROUNDS = Number(process.env.BENCH_BURST_ROUNDS ?? 5);
const SIZES = (process.env.BENCH_BURST_SIZES ?? "50,200").split(",").map(Number);
const HOST_LOCAL = "/usr/lib/cni/host-local";
const CLEAN_PATH = "/usr/bin:/bin";

type Kind = "bare" | "berth" | "baseline" | "host-local";
const BASELINE = process.env.BERTH_BASELINE_IPAM;
type Burst = { wallMs: number; calls: number[] };

const conf = (kind: Kind, dataDir: string) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "burstnet",
    type: "bridge",
    ipam: { type: kind === "host-local" ? "host-local" : "berth-ipam", dataDir, subnet: "10.128.0.0/16" },
  });

const addEnv = (id: string) => ({
  PATH: CLEAN_PATH,
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: id,
  CNI_NETNS: "/var/run/netns/bench",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});

function check(r: Timed, what: string): Timed {
  if (r.code !== 0) throw new Error(`${what}: exit ${r.code} ${r.stdout}${r.stderr}`);
  return r;
}

const fileOf = (kind: Kind): string =>
  kind === "bare"
    ? process.execPath
    : kind === "berth"
      ? IPAM_PLUGIN
      : kind === "baseline"
        ? (BASELINE ?? "")
        : HOST_LOCAL;

/** Starts n processes in one loop and waits for the last; every one must succeed. */
async function burst(kind: Kind, n: number, dataDir: string): Promise<Burst> {
  const file = fileOf(kind);
  const stdinFile = `${dataDir}.json`;
  writeFileSync(stdinFile, kind === "bare" ? "" : conf(kind, dataDir));
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      kind === "bare"
        ? timedExec(file, ["-e", "0"], { env: { PATH: CLEAN_PATH }, stdinFile })
        : timedExec(file, [], { env: addEnv(`burst${i}`), stdinFile }),
    ),
  );
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  for (const r of results) check(r, `${kind} burst of ${n}`);
  if (kind !== "bare") {
    const ips = results.map((r) => (JSON.parse(r.stdout) as { ips: { address: string }[] }).ips[0]?.address);
    if (new Set(ips).size !== n) throw new Error(`${kind} burst of ${n}: ${new Set(ips).size} distinct addresses`);
  }
  return { wallMs, calls: results.map((r) => r.ms) };
}

async function main(): Promise<void> {
  if (!existsSync(IPAM_PLUGIN)) throw new Error(`${IPAM_PLUGIN} missing: run npm run build`);
  const kinds: Kind[] = ["bare", "berth"];
  if (BASELINE) kinds.push("baseline");
  if (existsSync(HOST_LOCAL)) kinds.push("host-local");
  const root = mkdtempSync(join(tmpdir(), "berth-burst-"));
  const out = new Map<string, Burst[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const n of SIZES) {
        for (const kind of kinds) {
          const dataDir = join(root, `${kind}-${n}-${round}`);
          // The store (or host-local's directory) exists before the burst, as on a node that ran pods.
          if (kind !== "bare")
            check(
              await timedExec(fileOf(kind), [], { env: addEnv("first"), stdin: conf(kind, dataDir) }),
              `${kind} first ADD`,
            );
          const b = await burst(kind, n, dataDir);
          out.set(`${kind} ${n}`, [...(out.get(`${kind} ${n}`) ?? []), b]);
          process.stderr.write(`round ${round + 1}/${ROUNDS}: ${n} ${kind}: ${b.wallMs.toFixed(0)} ms\n`);
          rmSync(dataDir, { recursive: true, force: true });
          rmSync(`${dataDir}.json`, { force: true });
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  const fmt = (x: number) => x.toFixed(0);
  const lines = [
    `Node ${process.version}; ${ROUNDS} rounds, each: ${kinds.join(", ")} bursts in turn; clean environment; one network (/16) per burst; berth-ipam = ${IPAM_PLUGIN}.`,
    "",
    "| burst | wall ms (median) | wall / bare (median of rounds) | wall / bare per round | call p50 ms | call p99 ms |",
    "|---|---|---|---|---|---|",
  ];
  const verdicts: string[] = [];
  for (const n of SIZES) {
    const bare = out.get(`bare ${n}`) ?? [];
    for (const kind of kinds) {
      const bs = out.get(`${kind} ${n}`) ?? [];
      const ratios = bs.map((b, i) => b.wallMs / (bare[i]?.wallMs ?? Number.NaN));
      const calls = bs.flatMap((b) => b.calls);
      const median = quantile(ratios, 0.5);
      const label = kind === "baseline" ? `berth-ipam baseline (${BASELINE})` : kind === "berth" ? "berth-ipam" : kind;
      lines.push(
        `| ${n} ${label} | ${fmt(
          quantile(
            bs.map((b) => b.wallMs),
            0.5,
          ),
        )} | ${median.toFixed(2)} | ${ratios.map((r) => r.toFixed(2)).join(" ")} | ${fmt(quantile(calls, 0.5))} | ${fmt(quantile(calls, 0.99))} |`,
      );
      if (kind === "berth") {
        const target = n >= 200 ? 1.2 : 1.1;
        verdicts.push(
          `Target: ${n} berth-ipam ADDs / ${n} bare starts = ${median.toFixed(2)} (<= ${target}: ${median <= target ? "met" : "MISSED"})`,
        );
      }
    }
  }
  process.stdout.write(`${[...lines, "", ...verdicts].join("\n")}\n`);
}

await main();
