// berth-ipam on the etcd store next to the local store, in one run on real 3-member etcd clusters
// on loopback (plaintext, and TLS with client certificates): cold ADD and DEL per exec; etcd
// requests per common ADD, per DEL and per block claim (counted by the transport, kept in each
// node's cache); 8 simulated nodes x 32 concurrent ADDs with 3 rounds of churn (duplicates,
// compare-and-swap retries per ADD, wall time next to the local store); flat cost with 50,000
// addresses allocated cluster-wide; the longest ADD while the leader is killed; time to code 11
// and to STATUS 50 with quorum lost.
// Targets: cold ADD p50 within the local store's p50 + 15 ms (plaintext) and + 30 ms (TLS); 1
// request per common ADD and per DEL, at most 3 per block claim; retries per ADD <= 0.1; full pool
// within 1.1x of empty; longest ADD with the leader killed < 3 s; code 11 <= 5 s; STATUS 50 <= 1 s.
// Usage: node bench/etcd.bench.ts   (BENCH_RUNS=N, default 30; BENCH_ETCD=cold,counts,churn,flat,leader,quorum
// to run some parts only; needs npm run build first)
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { needEtcd, startCluster, type Cluster } from "../test/helpers/etcd-cluster.ts";
import { checkPool, storeConfig } from "../test/helpers/etcd-pool.ts";
import { canonicalizeRanges, rangeSet } from "../cni/range-set.ts";
import { CACHE_FILE } from "../cni/store/etcd/cache.ts";
import { openEtcdStore } from "../cni/store/etcd/store.ts";
import { quantile, stats } from "./stats.ts";
import { timedExec, type Timed } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const CLEAN_ENV = { PATH: "/usr/bin:/bin" };
const NET = "benchnet";

type Node = { name: string; dir: string };
type Target = { label: string; cluster?: Cluster };

let root = "";
const newNode = (name: string): Node => ({ name, dir: mkdtempSync(join(root, `${name}-`)) });

function conf(t: Target, n: Node, subnet: string, net = NET): string {
  const ipam: Record<string, unknown> = { type: "berth-ipam", dataDir: n.dir, ranges: [[{ subnet }]] };
  const c = t.cluster;
  if (c) {
    const tls = c.tls ? { tls: { ca: c.tls.ca, cert: c.tls.clientCert, key: c.tls.clientKey } } : {};
    ipam.store = { type: "etcd", endpoints: c.endpoints, node: n.name, ...tls };
  }
  return JSON.stringify({ cniVersion: "1.1.0", name: net, type: "bridge", ipam });
}

const cniEnv = (command: string, id: string) => ({
  ...CLEAN_ENV,
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: "/var/run/netns/bench",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});

const exec = (command: string, id: string, stdin: string): Promise<Timed> =>
  timedExec(IPAM_PLUGIN, [], { env: cniEnv(command, id), stdin });

async function must(command: string, id: string, stdin: string): Promise<Timed> {
  const r = await exec(command, id, stdin);
  if (r.code !== 0) throw new Error(`${command} ${id}: exit ${r.code} ${r.stdout}`);
  return r;
}

/** The transport's counters as the node's cache keeps them. */
function counters(n: Node, net = NET): Record<string, number> {
  const file = join(n.dir, net, CACHE_FILE);
  if (!existsSync(file)) return {};
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("SELECT key, value FROM meta WHERE key LIKE 'count.%'").all() as {
      key: string;
      value: string;
    }[];
    return Object.fromEntries(rows.map((r) => [r.key.slice(6), Number(r.value)]));
  } finally {
    db.close();
  }
}
const requests = (c: Record<string, number>) => (c.range ?? 0) + (c.txn ?? 0) + (c.auth ?? 0);

const fmt = (x: number) => x.toFixed(1);
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
const out: string[] = [];
const say = (s = "") => {
  out.push(s);
};

async function coldCost(plain: Cluster, tls: Cluster): Promise<void> {
  const targets: Target[] = [
    { label: "local store" },
    { label: "etcd", cluster: plain },
    { label: "etcd TLS", cluster: tls },
  ];
  const nodes = targets.map((t) => newNode(`cold-${t.label.replace(/\W/g, "")}`));
  const samples = new Map<string, number[]>();
  const push = (k: string, v: number) => samples.set(k, [...(samples.get(k) ?? []), v]);
  const subnet = "10.240.0.0/16";
  for (let i = -2; i < RUNS; i++) {
    for (const [j, t] of targets.entries()) {
      const n = nodes[j]!;
      const c = conf(t, n, subnet);
      const a = await must("ADD", `cold${i + 2}`, c);
      const d = await must("DEL", `cold${i + 2}`, c);
      if (i >= 0) {
        push(`${t.label} ADD`, a.ms);
        push(`${t.label} DEL`, d.ms);
      }
    }
  }
  const s = (k: string) => stats(samples.get(k)!);
  const local = s("local store ADD");
  say(`### Cold ADD and DEL per exec (${RUNS} rounds, each case once a round)`);
  say();
  say("| case | p50 ms | p95 ms | p50 - local store p50 |");
  say("|---|---|---|---|");
  for (const t of targets) {
    for (const op of ["ADD", "DEL"]) {
      const st = s(`${t.label} ${op}`);
      const base = s(`local store ${op}`);
      say(
        `| ${t.label} ${op} | ${fmt(st.median)} | ${fmt(st.p95)} | ${t.cluster ? `+${fmt(st.median - base.median)}` : ""} |`,
      );
    }
  }
  const plainDelta = s("etcd ADD").median - local.median;
  const tlsDelta = s("etcd TLS ADD").median - local.median;
  say();
  say(`Target: etcd ADD p50 - local p50 = +${fmt(plainDelta)} ms (<= +15: ${verdict(plainDelta <= 15)})`);
  say(`Target: etcd TLS ADD p50 - local p50 = +${fmt(tlsDelta)} ms (<= +30: ${verdict(tlsDelta <= 30)})`);
  say();
}

async function requestCounts(c: Cluster): Promise<void> {
  const n = newNode("counts");
  // A /24 in /26 blocks: four claims in 200 ADDs, the rest common ADDs.
  const cf = conf({ label: "etcd", cluster: c }, n, "10.241.0.0/24");
  const perAdd: number[] = [];
  const claims: number[] = [];
  const perDel: number[] = [];
  let conflicts = 0;
  for (let i = 0; i < 240; i++) {
    const before = counters(n);
    const r = await exec("ADD", `r${i}`, cf);
    const after = counters(n);
    if (r.code !== 0) break; // the pool is full
    const k = requests(after) - requests(before);
    conflicts += (after.conflicts ?? 0) - (before.conflicts ?? 0);
    // A claim reads the pool's blocks first: that shows as a txn of ranges only, i.e. 2+ requests.
    (k > 1 ? claims : perAdd).push(k);
  }
  for (let i = 0; i < 50; i++) {
    const before = counters(n);
    await must("DEL", `r${i}`, cf);
    perDel.push(requests(counters(n)) - requests(before));
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  say("### etcd requests per command (counted by the transport)");
  say();
  say("| command | count | requests each (mean) | max |");
  say("|---|---|---|---|");
  say(`| common ADD | ${perAdd.length} | ${mean(perAdd).toFixed(2)} | ${Math.max(...perAdd)} |`);
  say(`| ADD claiming a block | ${claims.length} | ${mean(claims).toFixed(2)} | ${Math.max(...claims, 0)} |`);
  say(`| DEL | ${perDel.length} | ${mean(perDel).toFixed(2)} | ${Math.max(...perDel)} |`);
  say();
  say(
    `Target: common ADD ${mean(perAdd).toFixed(2)} and DEL ${mean(perDel).toFixed(2)} requests (1 each: ${verdict(Math.max(...perAdd, ...perDel) === 1)}); ` +
      `block claim at most ${Math.max(...claims, 0)} (<= 3: ${verdict(Math.max(...claims, 0) <= 3)}); lost compares ${conflicts}`,
  );
  say();
}

async function churn(c: Cluster): Promise<void> {
  const NODES = 8;
  const PER = 32;
  const ROUNDS = 3;
  const subnet = "10.242.0.0/16";
  const result = new Map<
    string,
    { wall: number[]; failed: number; dup: number; retries: number; adds: number; why: Map<string, number> }
  >();
  for (const t of [{ label: "local store" }, { label: "etcd", cluster: c }] as Target[]) {
    const nodes = Array.from({ length: NODES }, (_, i) => newNode(`churn-${t.cluster ? "e" : "l"}${i}`));
    const before = nodes.map((n) => counters(n));
    const r = { wall: [] as number[], failed: 0, dup: 0, retries: 0, adds: 0, why: new Map<string, number>() };
    for (let round = 0; round < ROUNDS; round++) {
      const t0 = Date.now();
      const adds = await Promise.all(
        nodes.flatMap((n) =>
          Array.from({ length: PER }, (_, i) => exec("ADD", `${n.name}-${round}-${i}`, conf(t, n, subnet))),
        ),
      );
      r.wall.push(Date.now() - t0);
      r.adds += adds.length;
      for (const a of adds.filter((x) => x.code !== 0)) {
        r.failed++;
        // One line per kind of failure: numbers and addresses blanked out.
        const msg = String(JSON.parse(a.stdout || "{}").msg ?? a.stderr).replace(/[0-9.:]+/g, "#");
        r.why.set(msg, (r.why.get(msg) ?? 0) + 1);
      }
      // Per node pool (local) or cluster-wide pool (etcd): duplicates among what is held now.
      const held = adds.flatMap((a, i) =>
        a.code === 0 ? [`${t.cluster ? "" : Math.floor(i / PER)}/${JSON.parse(a.stdout).ips[0].address}`] : [],
      );
      r.dup += held.length - new Set(held).size;
      // Churn: free half of this round's pods before the next round.
      await Promise.all(
        nodes.flatMap((n) =>
          Array.from({ length: PER / 2 }, (_, i) => exec("DEL", `${n.name}-${round}-${i * 2}`, conf(t, n, subnet))),
        ),
      );
    }
    r.retries = nodes.reduce((sum, n, i) => sum + ((counters(n).conflicts ?? 0) - (before[i]?.conflicts ?? 0)), 0);
    result.set(t.label, r);
  }
  const pool = await checkPool(c);
  say(`### ${NODES} nodes x ${PER} concurrent ADDs, ${ROUNDS} rounds (half of each round DELed before the next)`);
  say();
  say("| store | wall ms per round (each) | failed ADDs | duplicates | CAS retries per ADD |");
  say("|---|---|---|---|---|");
  for (const [label, r] of result) {
    const retries = label === "etcd" ? (r.retries / r.adds).toFixed(3) : "";
    say(`| ${label} | ${r.wall.join(", ")} | ${r.failed} | ${r.dup} | ${retries} |`);
  }
  for (const [label, r] of result) for (const [msg, n] of r.why) say(`- ${label}, ${n} failed: ${msg}`);
  const e = result.get("etcd")!;
  const l = result.get("local store")!;
  const wallRatio = e.wall.reduce((a, b) => a + b, 0) / l.wall.reduce((a, b) => a + b, 0);
  say();
  say(
    `etcd wall / local wall = ${wallRatio.toFixed(2)}; verify after the storm: ${pool.problems.length} problems, ` +
      `${pool.duplicates.length} addresses in two attachments`,
  );
  say(
    `Target: 0 duplicates (${verdict(e.dup === 0 && pool.duplicates.length === 0)}); CAS retries per ADD ${(e.retries / e.adds).toFixed(3)} (<= 0.1: ${verdict(e.retries / e.adds <= 0.1)})`,
  );
  say();
}

async function flatCost(c: Cluster): Promise<void> {
  const FULL = 50_000;
  const subnet = "10.243.0.0/16";
  const set = rangeSet(canonicalizeRanges([{ subnet }]));
  const filler = newNode("filler");
  // 50 nodes of 1,000 addresses each, written through the store itself (blocks, bits, keys).
  for (let k = 0; k < FULL / 1000; k++) {
    const store = openEtcdStore({
      config: storeConfig(c, { node: `fill-${k}` }),
      network: "fullnet",
      dataDir: filler.dir,
      budgetMs: 120_000,
      requestTimeoutMs: 10_000,
    });
    try {
      await store.transaction(async () => {
        for (let i = 0; i < 1000; i++) {
          const ip = await store.nextFree(set);
          if (!ip || !(await store.reserve({ ip, containerId: `f${k}-${i}`, ifname: "eth0", rangeSet: set.key }))) {
            throw new Error("fill failed");
          }
        }
      });
    } finally {
      store.close();
    }
  }
  const full = (await checkPool(c)).reservations.filter((r) => r.network === "fullnet").length;
  const n = newNode("flat");
  const t: Target = { label: "etcd", cluster: c };
  const cFull = conf(t, n, subnet, "fullnet");
  const cEmpty = conf(t, n, subnet, "emptynet");
  const claimFull = (await must("ADD", "claim", cFull)).ms;
  const claimEmpty = (await must("ADD", "claim", cEmpty)).ms;
  const xs = { full: [] as number[], empty: [] as number[] };
  for (let i = -2; i < RUNS; i++) {
    const a = await must("ADD", `flat${i + 2}`, cFull);
    const b = await must("ADD", `flat${i + 2}`, cEmpty);
    await must("DEL", `flat${i + 2}`, cFull);
    await must("DEL", `flat${i + 2}`, cEmpty);
    if (i >= 0) {
      xs.full.push(a.ms);
      xs.empty.push(b.ms);
    }
  }
  const f = stats(xs.full);
  const e = stats(xs.empty);
  say(`### Flat cost: ${full.toLocaleString("en")} addresses allocated cluster-wide (50 nodes) vs an empty pool`);
  say();
  say("| pool | ADD p50 ms | ADD p95 ms | first ADD (block claim) ms |");
  say("|---|---|---|---|");
  say(`| empty | ${fmt(e.median)} | ${fmt(e.p95)} | ${fmt(claimEmpty)} |`);
  say(`| ${full.toLocaleString("en")} allocated | ${fmt(f.median)} | ${fmt(f.p95)} | ${fmt(claimFull)} |`);
  say();
  say(
    `Target: full / empty ADD p50 = ${(f.median / e.median).toFixed(2)} (<= 1.10: ${verdict(f.median / e.median <= 1.1)})`,
  );
  say();
}

async function leaderKill(): Promise<void> {
  const c = await startCluster({ root });
  try {
    const t: Target = { label: "etcd", cluster: c };
    const nodes = [0, 1, 2].map((i) => newNode(`lk-${i}`));
    const lat: number[] = [];
    let failed = 0;
    let stop = false;
    const loop = async (n: Node) => {
      for (let i = 0; !stop; i++) {
        const r = await exec("ADD", `${n.name}-${i}`, conf(t, n, "10.244.0.0/16"));
        lat.push(r.ms);
        if (r.code !== 0) failed++;
      }
    };
    const runs = nodes.map(loop);
    await new Promise((r) => setTimeout(r, 1500));
    const leader = await c.leader();
    await c.kill(leader);
    await new Promise((r) => setTimeout(r, 4000));
    stop = true;
    await Promise.all(runs);
    const longest = Math.max(...lat);
    say("### Leader killed (kill -9) while 3 nodes ADD back to back");
    say();
    say(
      `${lat.length} ADDs, ${failed} failed; p50 ${fmt(quantile(lat, 0.5))} ms, p99 ${fmt(quantile(lat, 0.99))} ms, longest ${fmt(longest)} ms`,
    );
    say();
    say(`Target: longest single ADD ${fmt(longest)} ms (< 3000: ${verdict(longest < 3000)})`);
    say();
  } finally {
    await c.stop();
  }
}

async function quorumLoss(): Promise<void> {
  const c = await startCluster({ root });
  try {
    const t: Target = { label: "etcd", cluster: c };
    const n = newNode("ql");
    const cf = conf(t, n, "10.245.0.0/16");
    await must("ADD", "warm", cf);
    const leader = await c.leader();
    await c.kill((leader + 1) % 3);
    await c.kill((leader + 2) % 3);
    const add: number[] = [];
    const status: number[] = [];
    const codes = new Set<number>();
    for (let i = 0; i < 3; i++) {
      const a = await exec("ADD", `q${i}`, cf);
      codes.add(Number(JSON.parse(a.stdout).code));
      add.push(a.ms);
      // A second apart, so the node's memory of the outage has passed and each looks afresh.
      await new Promise((r) => setTimeout(r, 1100));
      const s = await exec("STATUS", "", cf);
      codes.add(Number(JSON.parse(s.stdout).code));
      status.push(s.ms);
      await new Promise((r) => setTimeout(r, 1100));
    }
    const worstAdd = Math.max(...add);
    const worstStatus = Math.max(...status);
    say("### Quorum lost (2 of 3 members killed)");
    say();
    say(
      `ADD: ${add.map(fmt).join(", ")} ms to an error; STATUS: ${status.map(fmt).join(", ")} ms; codes seen: ${[...codes].join(", ")}`,
    );
    say();
    say(
      `Target: time to code 11 ${fmt(worstAdd)} ms (<= 5000 + process start: ${verdict(worstAdd <= 5200 && codes.has(11))}); ` +
        `to STATUS 50 ${fmt(worstStatus)} ms (<= 1000 + process start: ${verdict(worstStatus <= 1200 && codes.has(50))})`,
    );
    say();
  } finally {
    await c.stop();
  }
}

async function main(): Promise<void> {
  if (!existsSync(IPAM_PLUGIN)) throw new Error(`${IPAM_PLUGIN} missing: run npm run build`);
  const missing = needEtcd().filter((r) => !r.ok);
  if (missing.length) {
    process.stdout.write(`etcd bench skipped: missing ${missing.map((m) => m.what).join("; ")}\n`);
    return;
  }
  root = mkdtempSync(join(tmpdir(), "berth-etcd-bench-"));
  const plain = await startCluster({ root });
  const tls = await startCluster({ root, tls: true, clientCertAuth: true });
  try {
    say(`Node ${process.version}, etcd 3.4 (3 members on loopback, data on ${tmpdir()}), clean environment.`);
    say();
    const parts = (process.env.BENCH_ETCD ?? "cold,counts,churn,flat,leader,quorum").split(",");
    if (parts.includes("cold")) await coldCost(plain, tls);
    if (parts.includes("counts")) await requestCounts(plain);
    if (parts.includes("churn")) await churn(plain);
    if (parts.includes("flat")) await flatCost(plain);
    if (parts.includes("leader")) await leaderKill();
    if (parts.includes("quorum")) await quorumLoss();
  } finally {
    await plain.stop();
    await tls.stop();
    rmSync(root, { recursive: true, force: true });
    process.stdout.write(`${out.join("\n")}\n`);
  }
}

await main();
