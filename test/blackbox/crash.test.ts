// Kills: any plugin process can be killed at any instant (a runtime's timeout, OOM, a reboot).
// No kill may leave a half-written reservation, leak an address for ever, or lose one.
//
// The kill points do not depend on the machine's speed. Half of the processes are killed the
// moment they are seen inside their write transaction: /proc/locks shows the pid holding SQLite's
// WAL write lock (byte 120 of berth.db-shm, sqlite.org/walformat.html "wal-index locks"), which
// is held from BEGIN IMMEDIATE until COMMIT ends. A quarter are killed at a random instant across
// the lifetime of an ADD measured on this machine just before, which also hits start-up, store
// opening and output. The rest are left to finish.
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { addresses, cni, netconf, suiteWithDir, type DirCtx } from "../helpers/cni.ts";
import { addEnv, IPAM_PLUGIN } from "../helpers/exec.ts";
import { underTestIsReference } from "../helpers/peers.ts";

const REF = underTestIsReference();
type Ctx = DirCtx;
const s = suiteWithDir("crash safety");
const test = (name: string, fn: (ctx: Ctx) => Promise<void>) =>
  REF ? s.skip(`${name} (berth store only)`, fn) : s(name, fn);

type Run = {
  id: string;
  pid: number;
  kill(): void;
  done: Promise<{ stdout: string; killed: boolean }>;
  /** Killed while /proc/locks showed it holding the store's write lock. */
  inTransaction: boolean;
};

function startAdd(conf: object, id: string): Run {
  const child = spawn(IPAM_PLUGIN, [], {
    env: { ...addEnv(id), CNI_PATH: "/opt/cni/bin" },
    stdio: ["pipe", "pipe", "ignore"],
  });
  let out = "";
  let killed = false;
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stdin.end(JSON.stringify(conf));
  return {
    id,
    pid: child.pid ?? -1,
    kill: () => {
      killed = child.kill("SIGKILL") || killed;
    },
    done: new Promise((done) =>
      child.on("close", (code) => done({ stdout: code === 0 ? out : "", killed: killed && code !== 0 })),
    ),
    inTransaction: false,
  };
}

/** The pids that hold a SQLite WAL write lock now (a POSIX WRITE lock on byte 120 of a -shm file). */
function writeLockHolders(): Set<number> {
  const out = new Set<number>();
  for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
    const m = /^\d+: POSIX\s+ADVISORY\s+WRITE (\d+) \S+ 120 120$/.exec(line.trim());
    if (m) out.add(Number(m[1]));
  }
  return out;
}

/** The longest of a few concurrent, unkilled ADDs on a scratch network: the window random kills fall in. */
async function measuredLifetimeMs(dir: string): Promise<number> {
  const conf = netconf({ dataDir: join(dir, "measure"), subnet: "10.8.0.0/24" });
  const times = await Promise.all(
    Array.from({ length: 15 }, async (_, i) => {
      const t0 = performance.now();
      const r = await startAdd(conf, `m${i}`).done;
      assert.ok(r.stdout !== "", "the measuring ADDs succeed");
      return performance.now() - t0;
    }),
  );
  return Math.max(...times);
}

test("SIGKILL inside the write transaction and at random instants of 60 concurrent ADDs: the store stays whole and every address is accounted for", async ({
  dir,
}) => {
  const window = await measuredLifetimeMs(dir);
  const conf = netconf({ dataDir: dir, subnet: "10.9.0.0/24" });
  const runs = Array.from({ length: 60 }, (_, i) => startAdd(conf, `c${i}`));
  const inTxnTargets = runs.filter((_, i) => i % 4 < 2);
  for (const r of runs.filter((_, i) => i % 4 === 2)) setTimeout(() => r.kill(), Math.random() * window);

  let alive = true;
  const all = Promise.all(runs.map((r) => r.done)).then((x) => {
    alive = false;
    return x;
  });
  const waiting = new Map(inTxnTargets.map((r) => [r.pid, r]));
  while (alive && waiting.size > 0) {
    for (const pid of writeLockHolders()) {
      const r = waiting.get(pid);
      if (!r) continue;
      r.inTransaction = true;
      r.kill();
      waiting.delete(pid);
    }
    await new Promise((go) => setImmediate(go));
  }
  const outcomes = await all;
  const results = runs.map((r, i) => ({ ...r, ...outcomes[i]! }));
  const completed = results.filter((r) => r.stdout !== "");
  assert.ok(completed.length > 0, "some completed");

  const db = new DatabaseSync(join(dir, "testnet", "berth.db"));
  assert.is((db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check, "ok");
  const rows = db.prepare("SELECT container_id FROM reservation").all() as { container_id: string }[];
  db.close();
  const holders = new Set(rows.map((r) => r.container_id));
  assert.is(holders.size, rows.length, "one address per container");
  // Every ADD that answered holds what it answered.
  for (const r of completed) assert.ok(holders.has(r.id), `${r.id} answered and holds its address`);
  // The kills really cut transactions: a process seen holding the write lock, killed, whose
  // reservation did not land, died between BEGIN IMMEDIATE and the end of COMMIT.
  const cut = results.filter((r) => r.inTransaction && r.killed && !holders.has(r.id));
  assert.ok(cut.length > 0, `some kills landed inside a transaction (${cut.length} of ${inTxnTargets.length})`);

  // A killed ADD is retried by the runtime: it gets an address (its own, if its commit landed).
  const retried = await Promise.all(
    results.filter((r) => r.stdout === "").map((r) => cni({ command: "ADD", containerId: r.id }, conf)),
  );
  for (const r of retried) assert.is(r.code, 0, r.stdout);
  const got = [
    ...completed.map((r) => addresses(JSON.parse(r.stdout))[0]),
    ...retried.map((r) => addresses(r.json)[0]),
  ];
  assert.is(new Set(got).size, 60, "60 containers, 60 distinct addresses");

  // And DEL of every one leaves nothing behind: no address leaked.
  for (const r of runs) assert.is((await cni({ command: "DEL", containerId: r.id }, conf)).code, 0);
  const after = new DatabaseSync(join(dir, "testnet", "berth.db"));
  assert.is((after.prepare("SELECT count(*) AS n FROM reservation").get() as { n: number }).n, 0);
  after.close();
  assert.ok(existsSync(join(dir, "testnet")));
});

s.run();
