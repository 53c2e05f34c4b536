// The SQLite store behind the Store interface, its failures as store errors, and the host-local
// migration.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parseIp, formatIp } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet, type Block } from "../../cni/range-set.ts";
import { StoreError } from "../../cni/store/errors.ts";
import { createSqliteStore, openSqliteStore, type SqliteStore } from "../../cni/store/sqlite.ts";
import { parseHostLocalRecord } from "../../cni/store/host-local-import.ts";
import { cniErrorOf } from "../../cni/with-store.ts";
import { errorMessage } from "../../shared/json.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

type Ctx = { dir: string; store: SqliteStore };
const test = suite<Ctx>("sqlite store");
test.before.each((ctx) => {
  ctx.dir = tempDir();
  ctx.store = createSqliteStore(join(ctx.dir, "net"));
});
test.after.each((ctx) => {
  ctx.store.close();
  removeDir(ctx.dir);
});

const ip = (s: string) => parseIp(s)!;
const setOf = (subnet: string, exclude: Block[] = []) => rangeSet(canonicalizeRanges([{ subnet }]), exclude);
const SET = setOf("10.0.0.0/28");
const res = (addr: string, containerId = "c1", ifname = "eth0", set = SET.key) => ({
  ip: ip(addr),
  containerId,
  ifname,
  rangeSet: set,
});
const next = async (store: SqliteStore, set = SET) => {
  const free = await store.nextFree(set);
  return free ? formatIp(free) : "none";
};

test("reserve takes an address once and moves its set's cursor there", async ({ store }) => {
  await store.transaction(async () => {
    assert.is(await next(store), "10.0.0.2");
    assert.ok(await store.reserve(res("10.0.0.5")));
    assert.not.ok(await store.reserve(res("10.0.0.5", "c2")));
    assert.is(await next(store), "10.0.0.6");
    // Another set's reservation moves that set's cursor, not this one.
    assert.ok(await store.reserve(res("10.0.0.9", "c3", "eth0", "other")));
    assert.is(await next(store), "10.0.0.6");
  });
});

test("IPv4 and IPv6 keys never collide", async ({ store }) => {
  await store.transaction(async () => {
    assert.ok(await store.reserve(res("10.0.0.1")));
    assert.ok(await store.reserve(res("::a00:1", "c2")));
    assert.is(await store.reserve(res("::ffff:a00:2", "c3")), true);
  });
});

test("nextFree: the first gap after a run of taken addresses, skipping holes, wrapping round", async ({ store }) => {
  const v4 = (s: string) => ip(s).value;
  const set = setOf("10.0.0.0/28", [{ family: 4, lo: v4("10.0.0.6"), hi: v4("10.0.0.7") }]);
  await store.transaction(async () => {
    for (const a of ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]) await store.reserve(res(a, a));
    assert.is(await next(store, set), "10.0.0.8");
    for (const a of ["10.0.0.8", "10.0.0.9", "10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14"])
      await store.reserve(res(a, a));
    assert.is(await next(store, set), "none");
    await store.releaseById({ containerId: "10.0.0.3", ifname: "eth0" });
    assert.is(await next(store, set), "10.0.0.3", "after the cursor at the end, the walk wraps to the start");
    assert.is(await next(store, setOf("2001:db8::/120")), "2001:db8::2");
  });
});

test("getById, releaseById (with legacy ID-only records) and listAttachments", async ({ store }) => {
  await store.transaction(async () => {
    await store.reserve(res("10.0.0.2", "a", "eth0"));
    await store.reserve(res("10.0.0.3", "a", "eth1"));
    await store.reserve(res("10.0.0.4", "a", ""));
    await store.reserve(res("10.0.0.5", "b", "eth0"));
    assert.equal(
      (await store.getById({ containerId: "a", ifname: "eth0" })).map((r) => formatIp(r.ip)),
      ["10.0.0.2"],
    );
    assert.equal(await store.listAttachments(), [
      { containerId: "a", ifname: "" },
      { containerId: "a", ifname: "eth0" },
      { containerId: "a", ifname: "eth1" },
      { containerId: "b", ifname: "eth0" },
    ]);
    const gone = await store.releaseById({ containerId: "a", ifname: "eth0" });
    assert.equal(gone.map((r) => formatIp(r.ip)).sort(), ["10.0.0.2", "10.0.0.4"]);
    assert.is((await store.listAttachments()).length, 2);
  });
});

test("a transaction that throws changes nothing", async ({ store }) => {
  await store.transaction(async () => store.reserve(res("10.0.0.2")));
  try {
    await store.transaction(async () => {
      await store.releaseById({ containerId: "c1", ifname: "eth0" });
      await store.reserve(res("10.0.0.9", "c9"));
      throw new Error("abort");
    });
  } catch (e) {
    assert.is(errorMessage(e), "abort");
  }
  await store.transaction(async () => {
    assert.is((await store.getById({ containerId: "c1", ifname: "eth0" })).length, 1);
    assert.is((await store.getById({ containerId: "c9", ifname: "eth0" })).length, 0);
  });
});

test("openSqliteStore on a network never used writes nothing", ({ dir }) => {
  assert.is(openSqliteStore(join(dir, "unused")), undefined);
  assert.not.ok(existsSync(join(dir, "unused")));
});

test("the database and identity files are private to root (0600), whatever the umask", async ({ dir }) => {
  const old = process.umask(0o022);
  try {
    const s = createSqliteStore(join(dir, "private"));
    await s.transaction(async () => undefined);
    s.close();
    assert.is(statSync(join(dir, "private", "berth.db")).mode & 0o777, 0o600);
    assert.is(statSync(join(dir, "private", "berth.id")).mode & 0o777, 0o600);
  } finally {
    process.umask(old);
  }
});

async function storeErrorOf(fn: () => Promise<unknown> | unknown): Promise<StoreError> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error("no store error");
}

test("failures are store errors naming the store's path: busy, corrupt, io", async ({ dir }) => {
  const net = join(dir, "held");
  const first = createSqliteStore(net);
  await first.transaction(async () => undefined);
  first.close();
  const other = new DatabaseSync(join(net, "berth.db"));
  other.exec("BEGIN IMMEDIATE");
  try {
    const s = createSqliteStore(net, { busyTimeoutMs: 50 });
    const busy = await storeErrorOf(() => s.transaction(async () => undefined));
    s.close();
    assert.is(busy.kind, "busy");
    assert.is(busy.message, `store busy: another process held ${net} for 0.05s`);
  } finally {
    other.exec("ROLLBACK");
    other.close();
  }

  const bad = join(dir, "bad");
  mkdirSync(bad);
  writeFileSync(join(bad, "berth.db"), "not a database ".repeat(100));
  const corrupt = await storeErrorOf(() => createSqliteStore(bad).transaction(async () => undefined));
  assert.is(corrupt.kind, "corrupt");
  assert.match(corrupt.message, bad);

  writeFileSync(join(dir, "file"), "");
  const io = await storeErrorOf(() => createSqliteStore(join(dir, "file", "net")).transaction(async () => undefined));
  assert.is(io.kind, "io");
  assert.match(io.message, join(dir, "file", "net"));
});

test("a writer runs at a raised priority while it holds the write lock, and drops back after", async ({ store }) => {
  const { getPriority, setPriority } = await import("node:os");
  const before = getPriority();
  const canRaise = (() => {
    try {
      setPriority(before - 1);
      setPriority(before);
      return true;
    } catch {
      return false;
    }
  })();
  await store.transaction(async () => undefined); // makes the store: its own temporary database, no shared lock
  const inside = await store.transaction(async () => getPriority());
  assert.is(inside, canRaise ? Math.min(before, -10) : before);
  assert.is(getPriority(), before, "restored after COMMIT");
  await store.transaction(async () => Promise.reject(new Error("abort"))).catch(() => undefined);
  assert.is(getPriority(), before, "restored after ROLLBACK");
});

test("the command side maps store errors to CNI codes: busy, unavailable, conflict 11; corrupt, io 5", () => {
  for (const [kind, code] of [
    ["busy", 11],
    ["unavailable", 11],
    ["conflict", 11],
    ["corrupt", 5],
    ["io", 5],
  ] as const) {
    const e = cniErrorOf(
      new StoreError(kind, "/var/lib/cni/networks/n", "the store at /var/lib/cni/networks/n failed"),
    );
    assert.is(e.code, code, kind);
    assert.is(e.message, "the store at /var/lib/cni/networks/n failed");
  }
});

test("host-local records are taken over once: CRLF, legacy ID-only and empty files", async ({ dir }) => {
  const net = join(dir, "hl");
  mkdirSync(net);
  writeFileSync(join(net, "10.0.0.2"), "ctr-a\r\neth0");
  writeFileSync(join(net, "10.0.0.3"), "ctr-b");
  writeFileSync(join(net, "10.0.0.4"), "");
  writeFileSync(join(net, "2001:db8::5"), "ctr-c\r\neth1");
  writeFileSync(join(net, "last_reserved_ip.0"), "10.0.0.4");
  writeFileSync(join(net, "lock"), "");
  const s = createSqliteStore(net);
  await s.transaction(async () => {
    assert.equal(await s.listAttachments(), [
      { containerId: "ctr-a", ifname: "eth0" },
      { containerId: "ctr-b", ifname: "" },
      { containerId: "ctr-c", ifname: "eth1" },
      { containerId: "host-local-unknown", ifname: "" },
    ]);
    const gone = await s.releaseById({ containerId: "ctr-a", ifname: "eth0" });
    assert.is(gone.length, 1);
  });
  s.close();
  assert.not.ok(readdirSync(net).includes("10.0.0.2"), "the released record's file is removed");
  assert.ok(readdirSync(net).includes("10.0.0.3"));
  // A second process does not import again (ctr-a's record stays released).
  writeFileSync(join(net, "10.0.0.2"), "ctr-a\r\neth0");
  const again = createSqliteStore(net);
  await again.transaction(async () => {
    assert.is((await again.getById({ containerId: "ctr-a", ifname: "eth0" })).length, 0);
  });
  again.close();
});

test("a host-local record file goes only when its release commits, never on a rollback", async ({ dir }) => {
  const net = join(dir, "hl");
  mkdirSync(net);
  writeFileSync(join(net, "10.0.0.2"), "ctr-a\r\neth0");
  const s = createSqliteStore(net);
  const failed = await s
    .transaction(async () => {
      assert.is((await s.releaseById({ containerId: "ctr-a", ifname: "eth0" })).length, 1);
      assert.ok(existsSync(join(net, "10.0.0.2")), "inside the transaction the file is still there");
      throw new Error("abort");
    })
    .then(() => "", errorMessage);
  assert.is(failed, "abort");
  assert.ok(existsSync(join(net, "10.0.0.2")), "rolled back: the file stays with its restored reservation");
  await s.transaction(async () => {
    assert.is((await s.getById({ containerId: "ctr-a", ifname: "eth0" })).length, 1);
    await s.releaseById({ containerId: "ctr-a", ifname: "eth0" });
  });
  s.close();
  assert.not.ok(existsSync(join(net, "10.0.0.2")), "committed: the file is gone");
});

test("host-local record parsing", () => {
  assert.equal(parseHostLocalRecord("abc\r\neth0"), { containerId: "abc", ifname: "eth0" });
  assert.equal(parseHostLocalRecord("abc"), { containerId: "abc", ifname: "" });
  assert.equal(parseHostLocalRecord("abc\n"), { containerId: "abc", ifname: "" });
  assert.is(parseHostLocalRecord(""), undefined);
});
test.run();
