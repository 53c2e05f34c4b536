// The operator side's costs: what the audit log adds to an ADD, that the CLI costs the CNI path
// nothing (VERSION and ADD start-up against the previous build), and `list` on a full pool.
// Rounds interleave the cases so the machine's noise hits them alike; medians, ratios in-run.
// Targets: ADD with log / without log <= 1.05; this build / previous build ~1.00 for VERSION and
// ADD; `list` (text and --json) on 60,000 reservations under 1 s.
// Usage: node bench/ops.bench.ts (after npm run build). BENCH_RUNS=N (default 30).
//   The previous build: BERTH_BASELINE_BIN=/path/to/berth-ipam, or else it is built here from
//   BERTH_BASELINE_REF (default: main) into a temp dir.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
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

async function run(file: string, args: string[], env: Record<string, string>, stdin = ""): Promise<number> {
  const r = await timedExec(file, args, { env, stdin });
  if (r.code !== 0)
    throw new Error(`${file} ${args.join(" ")} ${env.CNI_COMMAND ?? ""}: exit ${r.code} ${r.stderr}${r.stdout}`);
  return r.ms;
}

const TIME = "/usr/bin/time";
/** Wall ms, and the CPU ms (user + sys, from time(1)) that the machine's other load does not inflate. */
async function cpuRun(file: string, args: string[]): Promise<{ wall: number; cpu: number }> {
  const r = await timedExec(TIME, ["-f", "berth-cpu %U %S", file, ...args], { env: CLEAN });
  const m = /berth-cpu (\d+\.\d+) (\d+\.\d+)\s*$/.exec(r.stderr);
  if (r.code !== 0 || !m) throw new Error(`${file} ${args.join(" ")}: exit ${r.code} ${r.stderr}`);
  return { wall: r.ms, cpu: (Number(m[1]) + Number(m[2])) * 1000 };
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
  execFileSync(process.execPath, ["packaging/build.ts", "berth-ipam"], {
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
    const push = (k: string, ms: number) => samples.set(k, [...(samples.get(k) ?? []), ms]);
    type Case = { name: string; go: (i: number) => Promise<number> };
    const addDel = (bin: string, dir: string, logFile?: string) => async (i: number) => {
      const ms = await run(bin, [], cniEnv("ADD", `b${i}`), conf(dir, logFile));
      await run(bin, [], cniEnv("DEL", `b${i}`), conf(dir, logFile));
      return ms;
    };
    const cases: Case[] = [
      { name: "node -e 0", go: () => run(process.execPath, ["-e", "0"], CLEAN) },
      { name: "VERSION, this build", go: () => run(IPAM_PLUGIN, [], cniEnv("VERSION", "v")) },
      { name: "VERSION, previous build", go: () => run(base.bin, [], cniEnv("VERSION", "v")) },
      { name: "ADD, this build", go: addDel(IPAM_PLUGIN, dirs.plain ?? "") },
      { name: "ADD, previous build", go: addDel(base.bin, dirs.base ?? "") },
      { name: "ADD with log", go: addDel(IPAM_PLUGIN, dirs.logged ?? "", log) },
    ];
    for (let i = -2; i < RUNS; i++) {
      // Rotate the order each round: no case always runs first or right after another.
      const order = cases.map((_, k) => cases[(k + i + 2) % cases.length] as Case);
      for (const c of order) {
        const ms = await c.go(i + 2);
        if (i >= 0) push(c.name, ms);
      }
    }
    const list = [
      { name: "list (text)", args: ["list", "--data-dir", dirs.full ?? ""] },
      { name: "list --json", args: ["list", "--data-dir", dirs.full ?? "", "--json"] },
      { name: "usage", args: ["usage", "--data-dir", dirs.full ?? ""] },
      { name: "verify", args: ["verify", "--data-dir", dirs.full ?? ""] },
    ];
    for (let i = -1; i < LIST_RUNS; i++) {
      for (const c of list) {
        const t = await cpuRun(IPAM_PLUGIN, c.args);
        if (i >= 0) push(c.name, t.wall);
        if (i >= 0) push(`${c.name} cpu`, t.cpu);
      }
    }

    const s = (k: string) => stats(samples.get(k) ?? []);
    const node = s("node -e 0");
    const lines = [
      `Node ${process.version}; ${RUNS} interleaved rounds (order rotated each round), clean environment.`,
      `Previous build: ${base.what}.`,
      "",
      "| case | median ms | p95 ms | runs | median / node -e 0 |",
      "|---|---|---|---|---|",
      ...cases.map((c) => {
        const st = s(c.name);
        return `| ${c.name} | ${fmt(st.median)} | ${fmt(st.p95)} | ${st.n} | ${(st.median / node.median).toFixed(2)} |`;
      }),
      "",
      `60,000 reservations in one network, ${LIST_RUNS} runs each:`,
      "",
      "| command | median ms | p95 ms | median CPU ms (user+sys) | runs |",
      "|---|---|---|---|---|",
      ...list.map(
        (c) =>
          `| berth-ipam ${c.args[0]}${c.name.includes("json") ? " --json" : ""} | ${fmt(s(c.name).median)} | ${fmt(s(c.name).p95)} | ${fmt(s(`${c.name} cpu`).median)} | ${s(c.name).n} |`,
      ),
      "",
    ];
    const r = (a: string, b: string) => s(a).median / s(b).median;
    const withLog = r("ADD with log", "ADD, this build");
    const version = r("VERSION, this build", "VERSION, previous build");
    const add = r("ADD, this build", "ADD, previous build");
    const listMs = Math.max(s("list (text)").median, s("list --json").median);
    lines.push(
      `Target: ADD with log / without = ${withLog.toFixed(3)} (<= 1.05: ${verdict(withLog <= 1.05)})`,
      `Target: start-up unchanged: VERSION this / previous build = ${version.toFixed(3)}, ADD this / previous = ${add.toFixed(3)} (within 1.05: ${verdict(version <= 1.05 && add <= 1.05)})`,
      `Target: list on 60,000 reservations = ${fmt(listMs)} ms (< 1000: ${verdict(listMs < 1000)}; CPU ${fmt(Math.max(s("list (text) cpu").median, s("list --json cpu").median))} ms)`,
    );
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
