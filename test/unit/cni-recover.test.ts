// Recovery of a lost store: libcni's result cache read back (cni/store/cni-cache.ts), the plan of
// what to restore (cni/store/recover.ts) and the restore itself, in one transaction that refuses
// any address with two holders.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet } from "../../cni/range-set.ts";
import { readCniCache } from "../../cni/store/cni-cache.ts";
import { RestoreConflictError, StoreError } from "../../cni/store/errors.ts";
import { planRecovery, restoreReservations } from "../../cni/store/recover.ts";
import { createSqliteStore, inspectSqliteStore } from "../../cni/store/sqlite.ts";
import type { Reservation } from "../../cni/store/store.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

type Ctx = { dir: string };
const test = suite<Ctx>("recovery from the CNI result cache");
test.before.each((ctx) => {
  ctx.dir = tempDir();
});
test.after.each((ctx) => removeDir(ctx.dir));

const ip = (s: string) => parseIp(s)!;
const V4 = rangeSet(canonicalizeRanges([{ subnet: "10.1.0.0/24" }]));
const V6 = rangeSet(canonicalizeRanges([{ subnet: "2001:db8::/64" }]));

/** A cache entry as libcni's cacheAdd writes it (containernetworking/cni libcni/api.go cachedInfo). */
function cacheEntry(network: string, containerId: string, ifName: string, result: unknown): string {
  return JSON.stringify({
    kind: "cniCacheV1",
    containerId,
    config: Buffer.from(JSON.stringify({ cniVersion: "1.0.0", name: network })).toString("base64"),
    ifName,
    networkName: network,
    cniArgs: [["IgnoreUnknown", "1"]],
    result,
  });
}
const writeEntry = (dir: string, network: string, id: string, ifname: string, result: unknown) =>
  writeFileSync(join(dir, `${network}-${id}-${ifname}`), cacheEntry(network, id, ifname, result));

test("readCniCache: every result version's addresses; other networks ignored; what cannot be used is listed", ({
  dir,
}) => {
  const cache = join(dir, "results");
  mkdirSync(cache);
  writeEntry(cache, "net", "c1", "eth0", {
    cniVersion: "1.0.0",
    interfaces: [{ name: "eth0" }],
    ips: [
      { address: "10.1.0.5/24", gateway: "10.1.0.1", interface: 0 },
      { address: "2001:db8::5/64", interface: 0 },
    ],
  });
  writeEntry(cache, "net", "c-2", "net-1", { cniVersion: "0.2.0", ip4: { ip: "10.1.0.6/24" } });
  writeEntry(cache, "net-b", "c3", "eth0", { cniVersion: "1.0.0", ips: [{ address: "10.9.0.2/24" }] });
  writeEntry(cache, "other", "c4", "eth0", { cniVersion: "1.0.0", ips: [{ address: "10.1.0.7/24" }] });
  writeFileSync(join(cache, "net-legacy-eth0"), JSON.stringify({ cniVersion: "0.3.1", ips: [] }));
  writeFileSync(join(cache, "net-garbage-eth0"), "{");
  writeEntry(cache, "net", "noaddr", "eth0", { cniVersion: "1.0.0", ips: [] });
  symlinkSync(join(cache, "net-c1-eth0"), join(cache, "net-link-eth0"));

  const scan = readCniCache(cache, "net");
  assert.equal(
    scan.attachments.map((a) => [a.containerId, a.ifname, a.addresses.map(formatIp)]),
    [
      ["c-2", "net-1", ["10.1.0.6"]],
      ["c1", "eth0", ["10.1.0.5", "2001:db8::5"]],
    ],
  );
  assert.equal(
    scan.skipped.map((s) => [s.file.slice(cache.length + 1), s.reason]),
    [
      ["net-garbage-eth0", "not JSON"],
      ["net-legacy-eth0", "not a libcni cniCacheV1 entry (kind null)"],
      ["net-link-eth0", "a symbolic link"],
      ["net-noaddr-eth0", "the cached result lists no addresses"],
    ],
  );
  assert.equal(
    readCniCache(cache, "net-b").attachments.map((a) => a.containerId),
    ["c3"],
  );
  assert.throws(() => readCniCache(join(dir, "nope"), "net"), /cannot read the CNI result cache .*nope: no such file/);
});

test("planRecovery: addresses go to the set that holds them, sorted; keep and the sets filter", () => {
  const cached = [
    { network: "n", containerId: "b", ifname: "eth0", addresses: [ip("10.1.0.9"), ip("2001:db8::9")], file: "f1" },
    { network: "n", containerId: "a", ifname: "eth0", addresses: [ip("10.1.0.3"), ip("10.1.0.4")], file: "f2" },
    { network: "n", containerId: "c", ifname: "eth0", addresses: [ip("192.168.0.1")], file: "f3" },
    { network: "n", containerId: "gone", ifname: "eth0", addresses: [ip("10.1.0.2")], file: "f4" },
  ];
  const plan = planRecovery(cached, {
    rangeSets: [V4, V6],
    keep: ["a", "b", "c"].map((containerId) => ({ containerId, ifname: "eth0" })),
  });
  assert.equal(
    plan.restore.map((r) => `${formatIp(r.ip)} ${r.containerId} ${r.rangeSet}`),
    [
      "10.1.0.3 a 10.1.0.1-10.1.0.254",
      "10.1.0.9 b 10.1.0.1-10.1.0.254",
      "2001:db8::9 b 2001:db8::1-2001:db8::ffff:ffff:ffff:ffff",
    ],
  );
  assert.equal(
    plan.skipped.map((s) => `${s.attachment.containerId} ${s.address ? formatIp(s.address) : "-"}: ${s.reason}`),
    [
      "a 10.1.0.4: a second address of the attachment in range set 10.1.0.1-10.1.0.254",
      "c 192.168.0.1: outside every range set of the network",
      "gone -: not in the list of attachments to keep",
    ],
  );
  assert.equal(
    planRecovery(cached).restore.map((r) => r.rangeSet),
    ["", "", "", "", "", ""],
    "without the config's sets, addresses are restored with no set",
  );
});

const res = (addr: string, containerId: string, set = V4.key): Reservation => ({
  ip: ip(addr),
  containerId,
  ifname: "eth0",
  rangeSet: set,
});

async function held(net: string): Promise<string[]> {
  const s = createSqliteStore(net);
  try {
    return await s.transaction(async () => {
      const out: string[] = [];
      for (const a of await s.listAttachments())
        for (const r of await s.getById(a)) out.push(`${formatIp(r.ip)} ${r.containerId}`);
      return out.sort();
    });
  } finally {
    s.close();
  }
}

async function addTo(net: string, r: Reservation): Promise<boolean> {
  const s = createSqliteStore(net);
  try {
    return await s.transaction(() => s.reserve(r));
  } finally {
    s.close();
  }
}

test("restore into an intact store merges the missing reservations and keeps its identity", async ({ dir }) => {
  const loc = { dataDir: dir, network: "net" };
  const net = join(dir, "net");
  await addTo(net, res("10.1.0.2", "a"));
  const id = readFileSync(join(net, "berth.id"), "utf8");
  const out = await restoreReservations(loc, [res("10.1.0.2", "a"), res("10.1.0.3", "b")]);
  assert.is(out.mode, "merged");
  assert.equal(
    out.restored.map((r) => r.containerId),
    ["b"],
  );
  assert.equal(
    out.alreadyHeld.map((r) => r.containerId),
    ["a"],
  );
  assert.equal(await held(net), ["10.1.0.2 a", "10.1.0.3 b"]);
  assert.is(readFileSync(join(net, "berth.id"), "utf8"), id);
  // The set's cursor moved with the restore: the next address handed out is after it.
  const s = createSqliteStore(net);
  assert.is(await s.transaction(async () => formatIp((await s.nextFree(V4))!)), "10.1.0.4");
  s.close();
});

test("a restore that would give an address to two holders is refused whole, nothing written", async ({ dir }) => {
  const loc = { dataDir: dir, network: "net" };
  const net = join(dir, "net");
  await addTo(net, res("10.1.0.2", "a"));
  const before = readFileSync(join(net, "berth.db"));
  const refused = await restoreReservations(loc, [res("10.1.0.3", "b"), res("10.1.0.2", "c")]).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(refused, RestoreConflictError);
  assert.match(String((refused as Error).message), "10.1.0.2 is held by a/eth0, not c/eth0");
  assert.equal(await held(net), ["10.1.0.2 a"]);
  assert.ok(readFileSync(join(net, "berth.db")).equals(before));
  const twice = await restoreReservations(loc, [res("10.1.0.7", "x"), res("10.1.0.7", "y")]).catch((e: Error) => e);
  assert.instance(twice, RestoreConflictError, "two holders within the list itself");
});

test("a dry run checks everything and writes nothing", async ({ dir }) => {
  const loc = { dataDir: dir, network: "net" };
  const net = join(dir, "net");
  await addTo(net, res("10.1.0.2", "a"));
  const before = readFileSync(join(net, "berth.db"));
  const dry = await restoreReservations(loc, [res("10.1.0.3", "b")], { dryRun: true });
  assert.equal(
    dry.restored.map((r) => r.containerId),
    ["b"],
  );
  assert.equal(await held(net), ["10.1.0.2 a"]);
  assert.ok(readFileSync(join(net, "berth.db")).equals(before));
  const lostDry = await restoreReservations({ dataDir: dir, network: "new" }, [res("10.1.0.3", "b")], {
    dryRun: true,
  });
  assert.is(lostDry.mode, "rebuilt");
  assert.equal(readdirSync(dir), ["net"], "no store made by a dry run");
});

test("restore of a lost store: a new store with a new identity, the old file set aside, ADDs work again", async ({
  dir,
}) => {
  const loc = { dataDir: dir, network: "net" };
  const net = join(dir, "net");
  await addTo(net, res("10.1.0.2", "a"));
  await addTo(net, res("10.1.0.3", "b"));
  const oldId = readFileSync(join(net, "berth.id"), "utf8").trim();
  truncateSync(join(net, "berth.db"), 0);
  assert.is(inspectSqliteStore(net).state, "lost");
  writeFileSync(join(net, "10.1.0.9"), "hl\r\neth0"); // a host-local record still in the directory
  const out = await restoreReservations(loc, [res("10.1.0.2", "a"), res("10.1.0.3", "b")]);
  assert.is(out.mode, "rebuilt");
  assert.is(out.hostLocalImported, 1);
  assert.ok(out.storeId && out.storeId !== oldId, "a new identity");
  assert.is(readFileSync(join(net, "berth.id"), "utf8").trim(), out.storeId);
  assert.equal(await held(net), ["10.1.0.2 a", "10.1.0.3 b", "10.1.0.9 hl"]);
  assert.ok(await addTo(net, res("10.1.0.4", "c")), "the store takes ADDs again");
  assert.is(inspectSqliteStore(net).state, "ok");
});

test("restore of a store replaced by another network's keeps that file aside, under a new name", async ({ dir }) => {
  const net = join(dir, "net");
  await addTo(net, res("10.1.0.2", "a"));
  await addTo(join(dir, "other"), res("10.1.0.2", "someone-else"));
  writeFileSync(join(net, "berth.db"), readFileSync(join(dir, "other", "berth.db")));
  assert.is(inspectSqliteStore(net).state, "lost");
  const out = await restoreReservations({ dataDir: dir, network: "net" }, [res("10.1.0.2", "a")]);
  assert.is(out.setAside.length, 1);
  assert.match(out.setAside[0] ?? "", /berth\.db\.lost-/);
  assert.ok(statSync(out.setAside[0] ?? "").size > 0);
  assert.equal(await held(net), ["10.1.0.2 a"]);
});

test("a corrupt store is refused unless asked to rebuild it", async ({ dir }) => {
  const net = join(dir, "net");
  mkdirSync(net);
  writeFileSync(join(net, "berth.db"), "not a database ".repeat(500));
  const e = await restoreReservations({ dataDir: dir, network: "net" }, [res("10.1.0.2", "a")]).catch((x) => x);
  assert.instance(e, StoreError);
  assert.is((e as StoreError).kind, "corrupt");
  const out = await restoreReservations({ dataDir: dir, network: "net" }, [res("10.1.0.2", "a")], {
    rebuildCorrupt: true,
  });
  assert.is(out.mode, "rebuilt");
  assert.equal(await held(net), ["10.1.0.2 a"]);
});

test("restore into a network without a store creates it", async ({ dir }) => {
  const out = await restoreReservations({ dataDir: dir, network: "fresh" }, [res("10.1.0.5", "a")]);
  assert.is(out.mode, "rebuilt");
  assert.equal(await held(join(dir, "fresh")), ["10.1.0.5 a"]);
});

test.run();
