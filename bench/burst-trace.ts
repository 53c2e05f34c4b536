// Where the time of a burst goes: N concurrent ADDs of berth-ipam on one network (whose store
// exists), each writing its phase timestamps (BERTH_IPAM_TRACE, cni/trace.ts), then per phase the
// median, the sum over all processes and the maximum, and the write lock's timeline: how long it
// was held in all, and how long it sat free while processes waited for it (SQLite's busy handler
// sleeps between tries). Not part of `npm run bench`: a tool for finding the cost, run by hand.
// Usage: node bench/burst-trace.ts [N=200]   (BERTH_IPAM=path for another build)
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addEnv, IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { quantile } from "./stats.ts";

const N = Number(process.argv[2] ?? 200);
const root = mkdtempSync(join(tmpdir(), "berth-trace-"));
const trace = join(root, "trace.jsonl");
const confFile = join(root, "conf.json");
writeFileSync(
  confFile,
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "tracenet",
    type: "bridge",
    ipam: { type: "berth-ipam", dataDir: root, subnet: "10.128.0.0/16" },
  }),
);
const now = () => performance.timeOrigin + performance.now();

function add(id: string, env: Record<string, string> = {}): Promise<number> {
  return new Promise((done, fail) => {
    const fd = openSync(confFile, "r");
    const child = spawn(IPAM_PLUGIN, [], {
      env: { ...addEnv(id), ...env },
      stdio: [fd, "ignore", "inherit"],
    });
    closeSync(fd);
    child.on("error", fail);
    child.on("close", (code) => done(code ?? -1));
  });
}

type Row = Record<string, number>;
try {
  if ((await add("first")) !== 0) throw new Error("first ADD failed");
  const t0 = now();
  const codes = await Promise.all(Array.from({ length: N }, (_, i) => add(`t${i}`, { BERTH_IPAM_TRACE: trace })));
  const wall = now() - t0;
  if (codes.some((c) => c !== 0)) throw new Error(`${codes.filter((c) => c !== 0).length} ADDs failed`);
  const rows = readFileSync(trace, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Row);
  const phases: [string, string, string][] = [
    ["origin", "main", "process start to main (bundle loaded)"],
    ["main", "open", "stdin, config, to the store"],
    ["open", "begin", "open the database, prepare"],
    ["begin", "locked", "wait for the write lock"],
    ["locked", "commit", "transaction work"],
    ["commit", "committed", "COMMIT (WAL write + fsync)"],
    ["committed", "close", "after commit"],
    ["close", "closed", "close (checkpoint when last)"],
    ["closed", "exit", "to exit"],
  ];
  const fmt = (x: number) => x.toFixed(1);
  const lines = [
    `${N} concurrent ADDs, wall ${wall.toFixed(0)} ms; ${IPAM_PLUGIN}`,
    "",
    "| phase | median ms | sum ms | max ms |",
    "|---|---|---|---|",
  ];
  for (const [a, b, name] of phases) {
    const d = rows.map((r) => (r[b] ?? Number.NaN) - (r[a] ?? Number.NaN)).filter((x) => !Number.isNaN(x));
    lines.push(
      `| ${name} | ${fmt(quantile(d, 0.5))} | ${d.reduce((x, y) => x + y, 0).toFixed(0)} | ${fmt(Math.max(...d))} |`,
    );
  }
  // The lock: held from "locked" to "committed"; waited for from "begin" to "locked".
  const held = rows.map((r) => [r.locked ?? 0, r.committed ?? 0] as const).sort((x, y) => x[0] - y[0]);
  const waits = rows.map((r) => [r.begin ?? 0, r.locked ?? 0] as const);
  const events: [number, number, number][] = []; // time, held delta, waiting delta
  for (const [a, b] of held) events.push([a, 1, 0], [b, -1, 0]);
  for (const [a, b] of waits) events.push([a, 0, 1], [b, 0, -1]);
  events.sort((x, y) => x[0] - y[0]);
  let holders = 0;
  let waiting = 0;
  let last = events[0]?.[0] ?? 0;
  let idleWhileWaiting = 0;
  let heldTotal = 0;
  for (const [t, dh, dw] of events) {
    if (holders === 0 && waiting > 0) idleWhileWaiting += t - last;
    if (holders > 0) heldTotal += t - last;
    holders += dh;
    waiting += dw;
    last = t;
  }
  const span = (held.at(-1)?.[1] ?? 0) - (held[0]?.[0] ?? 0);
  const starts = rows.map((r) => r.origin ?? 0);
  lines.push(
    "",
    `write lock: first taken to last released ${span.toFixed(0)} ms; held ${heldTotal.toFixed(0)} ms; free while processes waited ${idleWhileWaiting.toFixed(0)} ms`,
    `process starts (time origin) spread over ${(Math.max(...starts) - Math.min(...starts)).toFixed(0)} ms after the first; last exit ${(Math.max(...rows.map((r) => r.exit ?? 0)) - t0).toFixed(0)} ms after the burst began`,
  );
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
