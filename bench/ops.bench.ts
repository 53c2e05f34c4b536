// The operator side's costs: what the audit log adds to an ADD, that the CLI costs the CNI path
// nothing (VERSION and ADD start-up against the previous build), and `list` on a full pool.
// Rounds interleave the cases so the machine's noise hits them alike; medians, ratios in-run.
// Targets: ADD with log / without log <= 1.05; this build / previous build ~1.00 for VERSION and
// ADD; `list` (text and --json) on 60,000 reservations under 1 s. Every run goes through time(1):
// wall time and CPU time (user + sys) are both reported.
// Usage: node bench/ops.bench.ts (after npm run build). BENCH_RUNS=N (default 30).
//   The previous build: BERTH_BASELINE_BIN=/path/to/berth-ipam, or else it is built here from
//   BERTH_BASELINE_REF (default: main) into a temp dir.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { canonicalizeRanges, rangeSet } from "../cni/range-set.ts";
import { createSqliteStore } from "../cni/store/sqlite.ts";
import { IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { stats } from "./stats.ts";
import { timedExec } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const LIST_RUNS = Math.max(5, Math.round(RUNS / 3));
const FULL = 60_000;
const ROOT = resolve(import.meta.dirname, "..");
const CLEAN = { PATH: "/usr/bin:/bin" };
const fmt = (x: number) => x.toFixed(1);
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");

const cniEnv = (command: string, id: string) => ({
  ...CLEAN,
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: "/var/run/netns/bench",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});
const conf = (dir: string, log?: string) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "benchnet",
    type: "bridge",
    ipam: { type: "berth-ipam", dataDir: dir, subnet: "10.128.0.0/16", ...(log ? { log: { file: log } } : {}) },
  });

const TIME = "/usr/bin/time";
type Took = { wall: number; cpu: number };

/**
 * Runs a program under time(1): the wall ms from spawn to exit, and its CPU ms (user + sys, in
 * time(1)'s 10 ms steps), which the shared machine's other load inflates far less than wall time.
 */
async function run(out: string, file: string, args: string[], env: Record<string, string>, stdin = ""): Promise<Took> {
  const r = await timedExec(TIME, ["-o", out, "-f", "%U %S", file, ...args], { env, stdin });
  if (r.code !== 0)
    throw new Error(`${file} ${args.join(" ")} ${env.CNI_COMMAND ?? ""}: exit ${r.code} ${r.stderr}${r.stdout}`);
  const [user = "", sys = ""] = readFileSync(out, "utf8").trim().split(/\s+/);
  return { wall: r.ms, cpu: (Number(user) + Number(sys)) * 1000 };
}

/** The previous build's binary: given, or built from a git ref in a temp dir (its own build script). */
function baseline(root: string): { bin: string; what: string } {
  if (process.env.BERTH_BASELINE_BIN)
    return { bin: process.env.BERTH_BASELINE_BIN, what: process.env.BERTH_BASELINE_BIN };
  const ref = process.env.BERTH_BASELINE_REF ?? "main";
  const git = (...a: string[]) => execFileSync("git", a, { cwd: ROOT, encoding: "utf8" }).trim();
  const commit = git("rev-parse", "--short=12", ref);
  const same = git("rev-parse", `${ref}^{tree}`) === git("rev-parse", "HEAD^{tree}");
  const src = join(root, "baseline-src");
  mkdirSync(src);
  process.stderr.write(`building the baseline berth-ipam from ${ref} (${commit})…\n`);
  execFileSync("bash", ["-c", `git -C "${ROOT}" archive "${ref}" | tar -x -C "${src}"`]);
  symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"));
  // No arguments: the build script's interface has changed over time; every version writes dist/bin.
  execFileSync(process.execPath, ["packaging/build.ts"], {
    cwd: src,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const note = same ? " — the same tree as HEAD: set BERTH_BASELINE_REF to the commit before the change" : "";
  return { bin: join(src, "dist/bin/berth-ipam"), what: `${ref} (${commit})${note}` };
}

/** 60,000 reservations, as 60,000 ADDs would leave them (one transaction, through the store's own API). */
async function fill(dir: string): Promise<void> {
  const set = rangeSet(canonicalizeRanges([{ subnet: "10.128.0.0/16" }]));
  const base = set.ranges[0].rangeStart.value + 1n;
  const store = createSqliteStore(join(dir, "benchnet"));
  await store.transaction(async () => {
    for (let i = 0; i < FULL; i++)
      await store.reserve({
        ip: { family: 4, value: base + BigInt(i) },
        containerId: `fill${i}`,
        ifname: "eth0",
        rangeSet: set.key,
      });
  });
  store.close();
}

async function main(): Promise<void> {
  if (!existsSync(IPAM_PLUGIN)) throw new Error(`${IPAM_PLUGIN} missing: run npm run build`);
  const root = mkdtempSync(join(tmpdir(), "berth-bench-ops-"));
  try {
    const base = baseline(root);
    const dirs = Object.fromEntries(["plain", "logged", "base", "full"].map((k) => [k, join(root, k)]));
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
    const log = join(root, "audit.log");
    process.stderr.write("filling 60,000 reservations…\n");
    await fill(dirs.full ?? "");

    const samples = new Map<string, number[]>();
    const push = (k: string, t: Took) => {
      samples.set(k, [...(samples.get(k) ?? []), t.wall]);
      samples.set(`${k} cpu`, [...(samples.get(`${k} cpu`) ?? []), t.cpu]);
    };
    const out = join(root, "time.out");
    const timed = (file: string, args: string[], env: Record<string, string>, stdin = "") =>
      run(out, file, args, env, stdin);
    type Case = { name: string; go: (i: number) => Promise<Took> };
    const addDel = (bin: string, dir: string, logFile?: string) => async (i: number) => {
      const t = await timed(bin, [], cniEnv("ADD", `b${i}`), conf(dir, logFile));
      await timed(bin, [], cniEnv("DEL", `b${i}`), conf(dir, logFile));
      return t;
    };
    const cases: Case[] = [
      { name: "node -e 0", go: () => timed(process.execPath, ["-e", "0"], CLEAN) },
      { name: "VERSION, this build", go: () => timed(IPAM_PLUGIN, [], cniEnv("VERSION", "v")) },
      { name: "VERSION, previous build", go: () => timed(base.bin, [], cniEnv("VERSION", "v")) },
      { name: "ADD, this build", go: addDel(IPAM_PLUGIN, dirs.plain ?? "") },
      { name: "ADD, previous build", go: addDel(base.bin, dirs.base ?? "") },
      { name: "ADD with log", go: addDel(IPAM_PLUGIN, dirs.logged ?? "", log) },
    ];
    for (let i = -2; i < RUNS; i++) {
      // Rotate the order each round: no case always runs first or right after another.
      const order = cases.map((_, k) => cases[(k + i + 2) % cases.length] as Case);
      for (const c of order) {
        const t = await c.go(i + 2);
        if (i >= 0) push(c.name, t);
      }
    }
    const list = [
      { name: "list", args: ["list", "--data-dir", dirs.full ?? ""] },
      { name: "list --json", args: ["list", "--data-dir", dirs.full ?? "", "--json"] },
      { name: "usage", args: ["usage", "--data-dir", dirs.full ?? ""] },
      { name: "verify", args: ["verify", "--data-dir", dirs.full ?? ""] },
    ];
    for (let i = -1; i < LIST_RUNS; i++) {
      for (const c of list) {
        const t = await timed(IPAM_PLUGIN, c.args, CLEAN);
        if (i >= 0) push(c.name, t);
      }
    }

    const s = (k: string) => stats(samples.get(k) ?? []);
    // time(1) counts CPU in 10 ms steps: a mean over the rounds resolves what a median of steps cannot.
    const mean = (k: string) => {
      const xs = samples.get(`${k} cpu`) ?? [];
      return xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);
    };
    const node = s("node -e 0");
    const row = (name: string, label = name) =>
      `| ${label} | ${fmt(s(name).median)} | ${fmt(s(name).p95)} | ${fmt(mean(name))} | ${s(name).n} | ${(s(name).median / node.median).toFixed(2)} |`;
    const lines = [
      `Node ${process.version}; ${RUNS} interleaved rounds (order rotated each round), clean environment.`,
      `Previous build: ${base.what}.`,
      "",
      "| case | median ms | p95 ms | mean CPU ms (user+sys) | runs | median / node -e 0 |",
      "|---|---|---|---|---|---|",
      ...cases.map((c) => row(c.name)),
      "",
      `60,000 reservations in one network, ${LIST_RUNS} runs each:`,
      "",
      "| command | median ms | p95 ms | mean CPU ms (user+sys) | runs | median / node -e 0 |",
      "|---|---|---|---|---|---|",
      ...list.map((c) => row(c.name, `berth-ipam ${c.name}`)),
      "",
    ];
    const wall = (a: string, b: string) => s(a).median / s(b).median;
    const cpu = (a: string, b: string) => mean(a) / mean(b);
    const ratio = (a: string, b: string) => `${wall(a, b).toFixed(3)} (wall) / ${cpu(a, b).toFixed(3)} (CPU)`;
    const verdicts = (a: string, b: string, max: number) =>
      `wall ${verdict(wall(a, b) <= max)}, CPU ${verdict(cpu(a, b) <= max)}`;
    const listMs = Math.max(s("list").median, s("list --json").median);
    lines.push(
      `Target: ADD with log / without = ${ratio("ADD with log", "ADD, this build")} (<= 1.05: ${verdicts("ADD with log", "ADD, this build", 1.05)})`,
      `Target: VERSION this / previous build = ${ratio("VERSION, this build", "VERSION, previous build")} (<= 1.05: ${verdicts("VERSION, this build", "VERSION, previous build", 1.05)})`,
      `Target: ADD this / previous build = ${ratio("ADD, this build", "ADD, previous build")} (<= 1.05: ${verdicts("ADD, this build", "ADD, previous build", 1.05)})`,
      `Target: list on 60,000 reservations = ${fmt(listMs)} ms wall, ${fmt(Math.max(mean("list"), mean("list --json")))} ms CPU (< 1000: ${verdict(listMs < 1000)})`,
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
