// berth-ipam's cost per exec as the pool fills, next to Debian's host-local run the same way and
// to bare `node -e 0` of the same Node, all with a clean environment (only PATH and CNI_*).
// Each round runs every case once, so machine noise hits them alike; ratios are within this run.
// Targets: ADD at 60,000 allocations within 1.1x of berth's empty-pool ADD; empty-pool
// ADD within 1.25x of `node -e 0`.
// Usage: node bench/ipam.bench.ts   (BENCH_RUNS=N, default 30; needs npm run build first)
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { formatIp } from "../cni/ip.ts";
import { canonicalizeRanges, rangeSet } from "../cni/range-set.ts";
import { createSqliteStore } from "../cni/store/sqlite.ts";
import { quantile, stats } from "./stats.ts";
import { loadIpamConfig } from "../cni/config.ts";
import { timedExec } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const FULL = 60_000;
const HOST_LOCAL = "/usr/lib/cni/host-local";
const SUBNET = "10.128.0.0/16";
const CLEAN_ENV = { PATH: "/usr/bin:/bin" };

type Plugin = "berth" | "host-local";
type Pool = { plugin: Plugin; dir: string };

const conf = (p: Pool) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "benchnet",
    type: "bridge",
    ipam: { type: p.plugin === "berth" ? "berth-ipam" : "host-local", dataDir: p.dir, subnet: SUBNET },
  });

async function run(file: string, args: string[], env: Record<string, string>, stdin: string): Promise<number> {
  const r = await timedExec(file, args, { env: { ...CLEAN_ENV, ...env }, stdin });
  if (r.code !== 0) throw new Error(`${file} ${env.CNI_COMMAND ?? args.join(" ")}: exit ${r.code} ${r.stderr}`);
  return r.ms;
}

const cniEnv = (command: string, id: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: "/var/run/netns/bench",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});
const pluginFile = (p: Pool) => (p.plugin === "berth" ? IPAM_PLUGIN : HOST_LOCAL);
const add = (p: Pool, id: string) => run(pluginFile(p), [], cniEnv("ADD", id), conf(p));
const del = (p: Pool, id: string) => run(pluginFile(p), [], cniEnv("DEL", id), conf(p));

/** The /16's first n usable addresses, allocated the way n ADDs would leave them. */
async function fill(p: Pool, n: number): Promise<void> {
  if (n === 0) return;
  const set = rangeSet(canonicalizeRanges([{ subnet: SUBNET }]));
  const base = set.ranges[0].rangeStart.value + 1n; // .0.1 is the gateway
  const ips = Array.from({ length: n }, (_, i) => ({ family: 4 as const, value: base + BigInt(i) }));
  if (p.plugin === "berth") {
    const store = createSqliteStore(join(p.dir, "benchnet"));
    await store.transaction(async () => {
      for (const [i, ip] of ips.entries())
        await store.reserve({ ip, containerId: `fill${i}`, ifname: "eth0", rangeSet: set.key });
    });
    store.close();
  } else {
    const d = join(p.dir, "benchnet");
    mkdirSync(d, { recursive: true });
    for (const [i, ip] of ips.entries()) writeFileSync(join(d, formatIp(ip)), `fill${i}\r\neth0`);
    writeFileSync(join(d, "last_reserved_ip.0"), formatIp(ips[ips.length - 1]!));
  }
}

async function concurrentAdds(p: Pool, n: number, tag: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => add(p, `${tag}${i}`)));
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** n disjoint /24 ranges of 10.x.y.0 in a shuffled order. */
const manyRanges = (n: number) =>
  Array.from({ length: n }, (_, i) => (i * 7919) % n).map((k) => ({ subnet: `10.${(k >> 8) & 255}.${k & 255}.0/24` }));

/**
 * Range-set validation as the number of ranges grows (host-local's pairwise check is O(n^2)):
 * in-process, one set of n ranges and n sets of one range; and one ADD through each plugin with
 * 3,000 ranges in one set (host-local at 30,000 would take about half a minute).
 */
async function rangeValidation(root: string, haveRef: boolean): Promise<string[]> {
  const lines = ["| range-set validation | median ms | runs |", "|---|---|---|"];
  const validate = (ipam: Record<string, unknown>) =>
    loadIpamConfig({
      env: { command: "ADD", containerId: "c", netns: "/n", ifname: "eth0", args: "", path: [] },
      version: "1.0.0",
      config: { ipam },
      name: "n",
    });
  for (const n of [3_000, 30_000]) {
    const ranges = manyRanges(n);
    for (const [shape, ipam] of [
      ["in one set", { ranges: [ranges] }],
      ["as many one-range sets", { ranges: ranges.map((r) => [r]) }],
    ] as const) {
      const times = Array.from({ length: 5 }, () => {
        const t0 = performance.now();
        validate(ipam);
        return performance.now() - t0;
      });
      lines.push(
        `| ${n.toLocaleString("en")} ranges ${shape}, in-process | ${quantile(times, 0.5).toFixed(1)} | ${times.length} |`,
      );
    }
  }
  for (const plugin of haveRef ? (["berth", "host-local"] as const) : (["berth"] as const)) {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const dir = join(root, `ranges-${plugin}-${i}`);
      const conf = JSON.stringify({
        cniVersion: "1.0.0",
        name: "rangesnet",
        type: "bridge",
        ipam: { type: plugin === "berth" ? "berth-ipam" : "host-local", dataDir: dir, ranges: [manyRanges(3_000)] },
      });
      times.push(await run(plugin === "berth" ? IPAM_PLUGIN : HOST_LOCAL, [], cniEnv("ADD", `r${i}`), conf));
    }
    lines.push(
      `| ADD with 3,000 ranges in one set, ${plugin} (whole exec) | ${quantile(times, 0.5).toFixed(1)} | ${times.length} |`,
    );
  }
  return lines;
}

async function main(): Promise<void> {
  if (!existsSync(IPAM_PLUGIN)) throw new Error(`${IPAM_PLUGIN} missing: run npm run build`);
  const haveRef = existsSync(HOST_LOCAL);
  const root = mkdtempSync(join(tmpdir(), "berth-bench-"));
  try {
    const pools: Record<string, Pool> = {};
    const plugins: Plugin[] = haveRef ? ["berth", "host-local"] : ["berth"];
    for (const plugin of plugins) {
      for (const [label, n] of [
        ["empty", 0],
        ["60k", FULL],
      ] as const) {
        const p: Pool = { plugin, dir: join(root, `${plugin}-${label}`) };
        mkdirSync(p.dir);
        process.stderr.write(`filling ${plugin} ${label} pool…\n`);
        await fill(p, n);
        pools[`${plugin} ${label}`] = p;
      }
    }
    const samples = new Map<string, number[]>();
    const push = (k: string, ms: number) => samples.set(k, [...(samples.get(k) ?? []), ms]);
    // host-local at 60,000 takes over a second per call: fewer rounds for it.
    const refFullRuns = Math.min(RUNS, 10);
    for (let i = -2; i < RUNS; i++) {
      const record = i >= 0; // two warm-up rounds
      const t = (k: string, ms: number) => record && push(k, ms);
      t("node -e 0", await run(process.execPath, ["-e", "0"], {}, ""));
      for (const [name, p] of Object.entries(pools)) {
        if (p.plugin === "host-local" && name.endsWith("60k") && i >= refFullRuns) continue;
        const id = `bench${i + 2}`;
        t(`${name} ADD`, await add(p, id));
        t(`${name} DEL`, await del(p, id));
      }
    }
    const wall50: [string, number][] = [];
    for (const [name, p] of Object.entries(pools)) {
      if (p.plugin === "host-local" && name.endsWith("60k")) continue; // each of its ADDs reads all 60,000 records: about a minute for 50
      wall50.push([name, await concurrentAdds(p, 50, "conc")]);
    }

    const s = (k: string) => stats(samples.get(k)!);
    const node = s("node -e 0");
    const berthEmpty = s("berth empty ADD");
    const fmt = (x: number) => x.toFixed(1);
    const lines = [
      `Node ${process.version} (bare \`node -e 0\` = process.execPath), ${RUNS} rounds, /16 pool, clean environment.`,
      "",
      "| case | median ms | p95 ms | runs | median / node -e 0 | median / berth empty ADD | median / host-local same case |",
      "|---|---|---|---|---|---|---|",
      `| node -e 0 | ${fmt(node.median)} | ${fmt(node.p95)} | ${node.n} | 1.00 | | |`,
    ];
    for (const name of Object.keys(pools)) {
      for (const op of ["ADD", "DEL"]) {
        const k = `${name} ${op}`;
        const st = s(k);
        const refKey = k.replace("berth", "host-local");
        const vsRef = k.startsWith("berth") && samples.has(refKey) ? (st.median / s(refKey).median).toFixed(2) : "";
        lines.push(
          `| ${k} | ${fmt(st.median)} | ${fmt(st.p95)} | ${st.n} | ${(st.median / node.median).toFixed(2)} | ${(st.median / berthEmpty.median).toFixed(2)} | ${vsRef} |`,
        );
      }
    }
    lines.push(
      "",
      "| 50 concurrent ADDs | wall ms |",
      "|---|---|",
      ...wall50.map(([n, ms]) => `| ${n} | ${fmt(ms)} |`),
    );
    const full = s("berth 60k ADD");
    const fullDel = s("berth 60k DEL");
    const emptyDel = s("berth empty DEL");
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    lines.push(
      "",
      `Target: berth ADD at 60,000 / berth empty ADD = ${(full.median / berthEmpty.median).toFixed(2)} (<= 1.10: ${verdict(full.median / berthEmpty.median <= 1.1)}); ` +
        `DEL at 60,000 / empty DEL = ${(fullDel.median / emptyDel.median).toFixed(2)}`,
      `Target: berth empty ADD / node -e 0 = ${(berthEmpty.median / node.median).toFixed(2)} (<= 1.25: ${verdict(berthEmpty.median / node.median <= 1.25)})`,
    );
    lines.push("", ...(await rangeValidation(root, haveRef)));
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
