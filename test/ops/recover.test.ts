// recover --from-cni-cache with caches written by the real libcni (test/libcni/client, Debian's
// libcni 1.1.2): a lost store is rebuilt from the attachments the runtime still knows, so no
// running container's address is handed out again; --dry-run changes nothing, --keep narrows the
// list, an intact store gets only what it lacks, and a conflicting list is refused whole.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { cni } from "../helpers/cni.ts";
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import { GO, libcniCall, libcniClient, needLibcniSource } from "../helpers/libcni-client.ts";
import { gated, needExecutable, needPluginUnderTest } from "../helpers/peers.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";
import type { JsonObject } from "../../shared/json.ts";
import { dbFile, fails, NET, ok, okJson } from "./ops.ts";

type Ctx = { dir: string };
const test = suite<Ctx>("ops: recover from libcni's result cache");
test.before.each((ctx) => {
  ctx.dir = tempDir("recover");
});
test.after.each((ctx) => removeDir(ctx.dir));
const { define: it } = gated(test, "ops", [needPluginUnderTest(), needExecutable(GO, "golang-go"), needLibcniSource()]);

const TYPE = basename(IPAM_PLUGIN);
const ipamOf = (dir: string) => ({
  type: TYPE,
  dataDir: join(dir, "data"),
  ranges: [
    [{ subnet: "10.40.0.0/24", rangeStart: "10.40.0.10", rangeEnd: "10.40.0.19" }],
    [{ subnet: "fd00:40::/120" }],
  ],
});
const netConf = (dir: string) => ({ cniVersion: "1.0.0", name: NET, type: TYPE, ipam: ipamOf(dir) });
/** The standalone .conf a runtime would use (top-level type: the IPAM plugin). */
function confFile(dir: string): string {
  const file = join(dir, "net.conf");
  writeFileSync(file, JSON.stringify(netConf(dir)));
  return file;
}
const cacheOf = (dir: string) => join(dir, "cache");
const results = (dir: string) => join(cacheOf(dir), "results");

/** ADD (or DEL) through libcni: the plugin answers and libcni writes (or removes) its cache entry. */
async function viaLibcni(dir: string, op: "add" | "del", containerID: string, ifname = "eth0"): Promise<string[]> {
  const r = await libcniCall({
    op,
    mode: "net",
    conf: confFile(dir),
    path: [dirname(IPAM_PLUGIN)],
    cacheDir: cacheOf(dir),
    containerID,
    netns: "/var/run/netns/none",
    ifname,
  });
  assert.ok(r.ok, `libcni ${op} ${containerID}: ${r.error}`);
  return ((r.result?.ips ?? []) as { address: string }[]).map((i) => i.address.split("/")[0] ?? "");
}

const plainAdd = (dir: string, id: string) => cni({ command: "ADD", containerId: id }, netConf(dir));
const at = (dir: string) => ["--conf", join(dir, "net.conf")];
const listed = async (dir: string) =>
  (await okJson("list", ...at(dir))).map((o) => `${o.address} ${o.containerID}/${o.ifname}`);

it("a lost store is rebuilt from the cache libcni wrote: the running containers keep their addresses", async ({
  dir,
}) => {
  libcniClient();
  const a = await viaLibcni(dir, "add", "ctr-a");
  const b = await viaLibcni(dir, "add", "ctr-b", "net1");
  await viaLibcni(dir, "add", "ctr-c");
  await viaLibcni(dir, "del", "ctr-c"); // deleted: libcni removed its cache entry
  assert.is(readdirSync(results(dir)).length, 2);
  const before = await listed(dir);

  writeFileSync(dbFile(join(dir, "data")), ""); // the store is lost
  const refused = await plainAdd(dir, "new");
  assert.is(refused.json?.code, 5, "ADD refuses a lost store");

  const dry = await ok("recover", "--from-cni-cache", results(dir), "--dry-run", ...at(dir));
  assert.match(dry, /^would restore 4 reservations into a new store for the network \(dry run, nothing changed\):\n/);
  assert.is(readFileSync(dbFile(join(dir, "data"))).length, 0, "--dry-run leaves the lost store as it was");
  assert.is((await plainAdd(dir, "new")).json?.code, 5);

  const done = await okJson<JsonObject>("recover", "--from-cni-cache", results(dir), ...at(dir));
  assert.is(done.mode, "rebuilt");
  assert.equal(
    (done.restored as JsonObject[]).map((o) => [o.address, o.containerID, o.ifname]),
    [
      [a[0], "ctr-a", "eth0"],
      [b[0], "ctr-b", "net1"],
      [a[1], "ctr-a", "eth0"],
      [b[1], "ctr-b", "net1"],
    ],
  );
  assert.equal(done.setAside, [], "an empty database holds nothing to keep aside");
  assert.equal(await listed(dir), before, "exactly the reservations the store had before it was lost");
  assert.match(await ok("verify", ...at(dir)), /^testnet: ok \(4 reservations\)\n$/);

  // New ADDs never get a running container's address; libcni's own DEL works on the rebuilt store.
  const fresh = await plainAdd(dir, "new");
  assert.is(fresh.code, 0, fresh.stdout);
  const got = ((fresh.json?.ips ?? []) as { address: string }[]).map((i) => i.address.split("/")[0]);
  for (const ip of got) assert.not.ok([...a, ...b].includes(ip ?? ""), `${ip} was not handed out again`);
  await viaLibcni(dir, "del", "ctr-a");
  assert.not.ok((await listed(dir)).some((l) => l.includes("ctr-a")));
});

it("--keep restores only the listed attachments; a missing store directory is rebuilt too", async ({ dir }) => {
  libcniClient();
  await viaLibcni(dir, "add", "ctr-a");
  const b = await viaLibcni(dir, "add", "ctr-b");
  rmSync(join(dir, "data", NET), { recursive: true });
  const keep = join(dir, "keep.json");
  writeFileSync(keep, JSON.stringify([{ containerID: "ctr-b", ifname: "eth0" }]));
  const text = await ok("recover", "--from-cni-cache", results(dir), "--keep", keep, ...at(dir));
  assert.match(text, /^restored 2 reservations /);
  assert.match(text, /skipped .*testnet-ctr-a-eth0: not in the list of attachments to keep\n/);
  assert.equal(await listed(dir), [`${b[0]} ctr-b/eth0`, `${b[1]} ctr-b/eth0`]);
});

it("an intact store gets only what it lacks; a list that would give an address to two holders is refused whole", async ({
  dir,
}) => {
  libcniClient();
  const a = await viaLibcni(dir, "add", "ctr-a");
  await viaLibcni(dir, "add", "ctr-b");
  await ok("release", "--container-id", "ctr-a", ...at(dir)); // freed behind the runtime's back
  const merged = await okJson<JsonObject>("recover", "--from-cni-cache", results(dir), ...at(dir));
  assert.is(merged.mode, "merged");
  assert.equal(
    (merged.restored as JsonObject[]).map((o) => o.address),
    a,
  );
  assert.is((merged.alreadyHeld as JsonObject[]).length, 2);

  // ctr-a's address goes to another container; the cache still says ctr-a has it.
  await ok("release", "--container-id", "ctr-a", ...at(dir));
  const thief = await cni({ command: "ADD", containerId: "thief", args: `IP=${a[0]}` }, netConf(dir));
  assert.is(thief.code, 0, thief.stdout);
  const before = readFileSync(dbFile(join(dir, "data")));
  const r = await fails(1, "recover", "--from-cni-cache", results(dir), ...at(dir));
  assert.match(
    r.stderr,
    new RegExp(`refused, nothing written: ${a[0]?.replaceAll(".", "\\.")} is held by thief/eth0, not ctr-a/eth0`),
  );
  assert.ok(readFileSync(dbFile(join(dir, "data"))).equals(before), "nothing written");
  await fails(1, "recover", "--from-cni-cache", join(dir, "no-such-dir"), ...at(dir));
});

it("a store replaced by another network's database is lost; recover sets that file aside and rebuilds", async ({
  dir,
}) => {
  libcniClient();
  const a = await viaLibcni(dir, "add", "ctr-a");
  const other = await cni(
    { command: "ADD", containerId: "x" },
    { ...netConf(dir), name: "othernet", ipam: { ...ipamOf(dir), ranges: [[{ subnet: "10.41.0.0/24" }]] } },
  );
  assert.is(other.code, 0, other.stdout);
  writeFileSync(dbFile(join(dir, "data")), readFileSync(dbFile(join(dir, "data"), "othernet")));
  const lost = await fails(1, "list", ...at(dir));
  assert.match(lost.stderr, /store lost: .* is another store/);
  const done = await okJson<JsonObject>("recover", "--from-cni-cache", results(dir), ...at(dir));
  const aside = done.setAside as string[];
  assert.is(aside.length, 1);
  assert.ok(existsSync(aside[0] ?? ""), "the foreign database is kept, under a new name");
  assert.equal((await listed(dir)).sort(), [`${a[0]} ctr-a/eth0`, `${a[1]} ctr-a/eth0`].sort());
});

test.run();
