// Kills: any plugin process can be killed at any instant (a runtime's timeout, OOM, a reboot).
// No kill may leave a half-written reservation, leak an address for ever, or lose one.
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { addresses, cni, netconf, suiteWithDir, type DirCtx } from "../helpers/cni.ts";
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import { underTestIsReference } from "../helpers/peers.ts";

const REF = underTestIsReference();
type Ctx = DirCtx;
const s = suiteWithDir("crash safety");
const test = (name: string, fn: (ctx: Ctx) => Promise<void>) =>
  REF ? s.skip(`${name} (berth store only)`, fn) : s(name, fn);

/** Starts an ADD and SIGKILLs it after delayMs; resolves with its stdout (possibly empty). */
function addThenKill(
  conf: object,
  id: string,
  delayMs: number,
): Promise<{ id: string; stdout: string; killed: boolean }> {
  return new Promise((done) => {
    const child = spawn(IPAM_PLUGIN, [], {
      env: {
        PATH: "/usr/bin:/bin",
        CNI_COMMAND: "ADD",
        CNI_CONTAINERID: id,
        CNI_NETNS: "/x",
        CNI_IFNAME: "eth0",
        CNI_PATH: "/opt/cni/bin",
      },
      stdio: ["pipe", "pipe", "ignore"],
    });
    let out = "";
    let killed = false;
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => {
      killed = child.kill("SIGKILL");
    }, delayMs);
    child.on("close", (code) => {
      clearTimeout(t);
      done({ id, stdout: code === 0 ? out : "", killed: killed && code !== 0 });
    });
    child.stdin.end(JSON.stringify(conf));
  });
}

test("SIGKILL at random points of 60 concurrent ADDs: the store stays whole and every address is accounted for", async ({
  dir,
}) => {
  const conf = netconf({ dataDir: dir, subnet: "10.9.0.0/24" });
  // Spread the kills over the whole life of a process (60 at once on two cores take up to about
  // a second); every fourth one is left to finish.
  const runs = await Promise.all(
    Array.from({ length: 60 }, (_, i) => addThenKill(conf, `c${i}`, i % 4 === 3 ? 20_000 : (i * 17) % 900)),
  );
  const completed = runs.filter((r) => r.stdout !== "");
  assert.ok(
    runs.some((r) => r.killed),
    "some processes were really killed",
  );
  assert.ok(completed.length > 0, "some completed");

  const db = new DatabaseSync(join(dir, "testnet", "berth.db"));
  assert.is((db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check, "ok");
  const rows = db.prepare("SELECT container_id FROM reservation").all() as { container_id: string }[];
  db.close();
  const holders = new Set(rows.map((r) => r.container_id));
  assert.is(holders.size, rows.length, "one address per container");
  // Every ADD that answered holds what it answered.
  for (const r of completed) assert.ok(holders.has(r.id), `${r.id} answered and holds its address`);

  // A killed ADD is retried by the runtime: it gets an address (its own, if its commit landed).
  const retried = await Promise.all(
    runs.filter((r) => r.stdout === "").map((r) => cni({ command: "ADD", containerId: r.id }, conf)),
  );
  for (const r of retried) assert.is(r.code, 0, r.stdout);
  const all = [
    ...completed.map((r) => addresses(JSON.parse(r.stdout))[0]),
    ...retried.map((r) => addresses(r.json)[0]),
  ];
  assert.is(new Set(all).size, 60, "60 containers, 60 distinct addresses");

  // And DEL of every one leaves nothing behind: no address leaked.
  for (const r of runs) assert.is((await cni({ command: "DEL", containerId: r.id }, conf)).code, 0);
  const after = new DatabaseSync(join(dir, "testnet", "berth.db"));
  assert.is((after.prepare("SELECT count(*) AS n FROM reservation").get() as { n: number }).n, 0);
  after.close();
  assert.ok(existsSync(join(dir, "testnet")));
});

s.run();
