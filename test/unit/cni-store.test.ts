// The SQLite store behind the Store interface, and the host-local migration.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseIp, formatIp } from "../../cni/ip.ts";
import { openSqliteStore, type SqliteStore } from "../../cni/store/sqlite.ts";
import { parseHostLocalRecord } from "../../cni/store/host-local-import.ts";
import { removeDir, tempDir } from "../helpers/cni.ts";

type Ctx = { dir: string; store: SqliteStore };
const test = suite<Ctx>("sqlite store");
test.before.each((ctx) => {
  ctx.dir = tempDir();
  ctx.store = openSqliteStore(join(ctx.dir, "net"), true)!;
});
test.after.each((ctx) => {
  ctx.store.close();
  removeDir(ctx.dir);
});

const ip = (s: string) => parseIp(s)!;
const res = (addr: string, containerId = "c1", ifname = "eth0") => ({
  ip: ip(addr),
  containerId,
  ifname,
  rangeSet: "set",
});

test("reserve takes an address once and moves the cursor", async ({ store }) => {
  await store.transaction(async () => {
    assert.ok(await store.reserve(res("10.0.0.2")));
    assert.not.ok(await store.reserve(res("10.0.0.2", "c2")));
    assert.is(formatIp((await store.lastReserved("set"))!), "10.0.0.2");
    assert.is(await store.lastReserved("other"), undefined);
  });
});

test("IPv4 and IPv6 keys never collide", async ({ store }) => {
  await store.transaction(async () => {
    assert.ok(await store.reserve(res("10.0.0.1")));
    assert.ok(await store.reserve(res("::a00:1", "c2")));
    assert.ok((await store.reserve(res("::ffff:a00:2", "c3"))) === true);
  });
});

test("firstFree finds the first gap after a run of taken addresses, within bounds", async ({ store }) => {
  await store.transaction(async () => {
    for (const a of ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"]) await store.reserve(res(a, a));
    assert.is(formatIp((await store.firstFree(ip("10.0.0.1"), ip("10.0.0.9")))!), "10.0.0.4");
    assert.is(formatIp((await store.firstFree(ip("10.0.0.5"), ip("10.0.0.9")))!), "10.0.0.6");
    assert.is(await store.firstFree(ip("10.0.0.1"), ip("10.0.0.3")), undefined);
    assert.is(formatIp((await store.firstFree(ip("2001:db8::"), ip("2001:db8::ff")))!), "2001:db8::");
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
    assert.is((e as Error).message, "abort");
  }
  await store.transaction(async () => {
    assert.is((await store.getById({ containerId: "c1", ifname: "eth0" })).length, 1);
    assert.is((await store.getById({ containerId: "c9", ifname: "eth0" })).length, 0);
  });
});

test("openSqliteStore(create=false) on a network never used writes nothing", ({ dir }) => {
  assert.is(openSqliteStore(join(dir, "unused"), false), undefined);
  assert.not.ok(existsSync(join(dir, "unused")));
});

test("the database file is private to root (0600)", ({ dir }) => {
  const old = process.umask(0o077);
  try {
    const s = openSqliteStore(join(dir, "private"), true)!;
    s.close();
    assert.is(statSync(join(dir, "private", "berth.db")).mode & 0o777, 0o600);
  } finally {
    process.umask(old);
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
  const s = openSqliteStore(net, true)!;
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
  const again = openSqliteStore(net, true)!;
  await again.transaction(async () => {
    assert.is((await again.getById({ containerId: "ctr-a", ifname: "eth0" })).length, 0);
  });
  again.close();
});

test("host-local record parsing", () => {
  assert.equal(parseHostLocalRecord("abc\r\neth0"), { containerId: "abc", ifname: "eth0" });
  assert.equal(parseHostLocalRecord("abc"), { containerId: "abc", ifname: "" });
  assert.equal(parseHostLocalRecord("abc\n"), { containerId: "abc", ifname: "" });
  assert.is(parseHostLocalRecord(""), undefined);
});
test.run();
