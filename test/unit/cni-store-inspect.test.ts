// The SQLite store's schema 2 (reservation.reserved_at, and the migration of schema-1 stores) and
// its read/repair API for the operator CLI (cni/store/inspect.ts), and the CLI's store-agnostic
// invariants (cni/cli/verify.ts) and range-set keys (cni/cli/sets.ts).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet } from "../../cni/range-set.ts";
import { createSqliteStore, openSqliteStore, type SqliteStore } from "../../cni/store/sqlite.ts";
import { fromKey, sizeOf, spans } from "../../cni/cli/sets.ts";
import { invariantProblems } from "../../cni/cli/verify.ts";
import type { StoredReservation } from "../../cni/store/inspect.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";
import { schema1Store, schemaVersion } from "../helpers/schema1-store.ts";

type Ctx = { dir: string; net: string };
const test = suite<Ctx>("sqlite store: schema 2 and the operator API");
test.before.each((ctx) => {
  ctx.dir = tempDir();
  ctx.net = join(ctx.dir, "net");
});
test.after.each((ctx) => removeDir(ctx.dir));

const ip = (s: string) => parseIp(s)!;
const SET = rangeSet(canonicalizeRanges([{ subnet: "10.0.0.0/28" }]));
const res = (addr: string, containerId = "c1", ifname = "eth0", set = SET.key) => ({
  ip: ip(addr),
  containerId,
  ifname,
  rangeSet: set,
});

async function withStore<T>(dir: string, fn: (s: SqliteStore) => Promise<T>): Promise<T> {
  const s = createSqliteStore(dir);
  try {
    return await s.transaction(() => fn(s));
  } finally {
    s.close();
  }
}

const schema1 = (dir: string) =>
  schema1Store(dir, [{ ip: "10.0.0.2", containerId: "old", ifname: "eth0", rangeSet: SET.key }]);
const version = schemaVersion;

test("a new store is schema 2 and records when each address was reserved", async ({ net }) => {
  const before = Date.now();
  await withStore(net, (s) => s.reserve(res("10.0.0.2")));
  const after = Date.now();
  assert.is(version(net), 2);
  const [r] = await withStore(net, (s) => s.reservations());
  assert.ok(r?.reservedAt, "reservedAt is set");
  const t = r.reservedAt.getTime();
  assert.ok(t >= before && t <= after, `${t} within [${before}, ${after}]`);
});

test("a schema-1 store is migrated in place: its reservations kept with no time, new ones timed", async ({ net }) => {
  schema1(net);
  assert.is(version(net), 1);
  await withStore(net, (s) => s.reserve(res("10.0.0.3", "new")));
  assert.is(version(net), 2);
  const rs = await withStore(net, (s) => s.reservations());
  assert.equal(
    rs.map((r) => [formatIp(r.ip), r.containerId, r.reservedAt === undefined]),
    [
      ["10.0.0.2", "old", true],
      ["10.0.0.3", "new", false],
    ],
  );
  // the migrated store still hands out round-robin past what it held
  assert.is(formatIp((await withStore(net, (s) => s.nextFree(SET)))!), "10.0.0.4");
});

test("migrating twice is harmless: a second open of a migrated store changes nothing", async ({ net }) => {
  schema1(net);
  assert.is((await withStore(net, (s) => s.reservations())).length, 1);
  assert.is((await withStore(net, (s) => s.reservations())).length, 1);
  assert.is(version(net), 2);
});

test("reservations(filter): by container, by ifname (with legacy ID-only records, as DEL), by address", async ({
  net,
}) => {
  await withStore(net, async (s) => {
    await s.reserve(res("10.0.0.2", "a", "eth0"));
    await s.reserve(res("10.0.0.3", "a", "net1"));
    await s.reserve(res("10.0.0.4", "a", ""));
    await s.reserve(res("10.0.0.5", "b", "eth0"));
  });
  const addrs = (rs: StoredReservation[]) => rs.map((r) => formatIp(r.ip));
  await withStore(net, async (s) => {
    assert.equal(addrs(await s.reservations()), ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]);
    assert.equal(addrs(await s.reservations({ containerId: "a" })), ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    assert.equal(addrs(await s.reservations({ containerId: "a", ifname: "net1" })), ["10.0.0.3", "10.0.0.4"]);
    assert.equal(addrs(await s.reservations({ ip: ip("10.0.0.5") })), ["10.0.0.5"]);
    assert.equal(addrs(await s.reservations({ ip: ip("10.0.0.9") })), []);
    assert.is(await s.countReserved(4, ip("10.0.0.3").value, ip("10.0.0.5").value), 3);
    assert.is(await s.countReserved(6, 0xfdn << 120n, 0xfen << 120n), 0, "the other family's keys are not counted");
  });
});

test("cursors, dropCursor and releaseAddress", async ({ net }) => {
  await withStore(net, async (s) => {
    await s.reserve(res("10.0.0.7"));
    await s.reserve(res("10.0.0.8", "c2"));
  });
  await withStore(net, async (s) => {
    assert.equal(
      (await s.cursors()).map((c) => [c.rangeSet, formatIp(c.ip)]),
      [[SET.key, "10.0.0.8"]],
    );
    const gone = await s.releaseAddress(ip("10.0.0.7"));
    assert.is(gone?.containerId, "c1");
    assert.is(await s.releaseAddress(ip("10.0.0.7")), undefined, "a free address releases nothing");
    assert.ok(await s.dropCursor(SET.key));
    assert.not.ok(await s.dropCursor(SET.key));
  });
  assert.is(
    formatIp((await withStore(net, (s) => s.nextFree(SET)))!),
    "10.0.0.2",
    "the walk restarts after the gateway",
  );
});

test("read() sees one consistent view and takes no write lock", async ({ net }) => {
  await withStore(net, (s) => s.reserve(res("10.0.0.2")));
  const reader = openSqliteStore(net)!;
  const writer = openSqliteStore(net, { busyTimeoutMs: 100 })!;
  try {
    await reader.read(async () => {
      assert.is((await reader.reservations()).length, 1);
      // a writer commits while the read is open: it is not blocked, and the read does not see it
      await writer.transaction(() => writer.reserve(res("10.0.0.3", "c2")));
      assert.is((await reader.reservations()).length, 1);
    });
    assert.is((await reader.read(() => reader.reservations())).length, 2);
  } finally {
    reader.close();
    writer.close();
  }
});

test("a host-local record released by address loses its file once the release commits", async ({ net }) => {
  mkdirSync(net, { recursive: true });
  writeFileSync(join(net, "10.0.0.9"), "legacy\r\neth0");
  utimesSync(join(net, "10.0.0.9"), 1_700_000_000, 1_700_000_000);
  const [r] = await withStore(net, (s) => s.reservations());
  assert.is(r?.containerId, "legacy");
  assert.is(r?.reservedAt?.getTime(), 1_700_000_000_000, "an imported record is dated by its file");
  await withStore(net, (s) => s.releaseAddress(ip("10.0.0.9")));
  assert.not.ok(existsSync(join(net, "10.0.0.9")));
});

test("checkStorage: clean, then a leftover host-local file (repairable) and one naming another owner (not)", async ({
  net,
}) => {
  await withStore(net, (s) => s.reserve(res("10.0.0.2", "a")));
  assert.equal(await withStore(net, (s) => s.checkStorage()), []);
  writeFileSync(join(net, "10.0.0.5"), "late\r\neth0"); // written after the import
  writeFileSync(join(net, "10.0.0.2"), "other\r\neth0"); // the store gives 10.0.0.2 to a
  const problems = await withStore(net, (s) => s.checkStorage());
  assert.equal(problems, [
    {
      problem:
        "host-local record file 10.0.0.2 (other/eth0) names another container than the store, which gives it to a/eth0",
      repairable: false,
    },
    { problem: "host-local record file 10.0.0.5 (late/eth0) is not in the store", repairable: true },
  ]);
  const done = await withStore(net, (s) => s.repairStorage());
  assert.equal(done, [
    "took host-local record 10.0.0.5 into the store for late/eth0 (release it if that container is gone)",
  ]);
  const rs = await withStore(net, (s) => s.reservations({ ip: ip("10.0.0.5") }));
  assert.equal(
    rs.map((r) => [r.containerId, r.ifname, r.rangeSet]),
    [["late", "eth0", ""]],
  );
  assert.is((await withStore(net, (s) => s.checkStorage())).length, 1, "only the unrepairable one is left");
});

test("range-set keys: parsed back into their spans; anything else is not a key", () => {
  const two = rangeSet(canonicalizeRanges([{ subnet: "10.1.0.0/24" }, { subnet: "10.2.0.0/30" }]));
  const v = fromKey(two.key)!;
  assert.is(v.key, "10.1.0.1-10.1.0.254,10.2.0.1-10.2.0.2");
  assert.is(sizeOf(v), 256n);
  assert.ok(spans(v, ip("10.2.0.2")));
  assert.not.ok(spans(v, ip("10.2.0.3")));
  assert.not.ok(spans(v, ip("::1")));
  assert.is(sizeOf(fromKey("fd00::1-fd00::ffff:ffff:ffff:ffff")!), (1n << 64n) - 1n);
  for (const bad of [
    "",
    "10.1.0.1",
    "10.1.0.9-10.1.0.1",
    "10.1.0.1-fd00::1",
    "10.1.0.1-10.1.0.2,fd00::1-fd00::2",
    "x-y",
  ])
    assert.is(fromKey(bad), undefined, bad);
});

test("invariants: an address outside its set, two addresses of one attachment in one set, a stray cursor", () => {
  const r = (addr: string, containerId: string, set = SET.key): StoredReservation => ({
    ...res(addr, containerId, "eth0", set),
    reservedAt: undefined,
  });
  assert.equal(invariantProblems([r("10.0.0.2", "a"), r("10.0.0.3", "b"), r("10.9.9.9", "h", "")], []), []);
  assert.equal(
    invariantProblems(
      [r("10.0.0.2", "a"), r("10.0.0.3", "a"), r("10.0.0.99", "b"), r("10.0.0.4", "c", "garbage")],
      [
        { rangeSet: SET.key, ip: ip("10.0.0.4") },
        { rangeSet: SET.key.replace("10.0.0.1", "10.0.0.0"), ip: ip("10.0.1.1") },
      ],
    ),
    [
      { problem: `10.0.0.99 (b/eth0) is outside its range set ${SET.key}`, repairable: false },
      { problem: '10.0.0.4 (c/eth0) names no valid range set: "garbage"', repairable: false },
      { problem: `attachment a/eth0 holds 2 addresses in range set ${SET.key}: 10.0.0.2, 10.0.0.3`, repairable: false },
      { problem: "the cursor of range set 10.0.0.0-10.0.0.14 is at 10.0.1.1, outside the set", repairable: true },
    ],
  );
});

test.run();
