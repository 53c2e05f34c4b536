// A store knows that it existed (cni/store/identity.ts): a lost store is refused and never made
// again silently, a damaged one is "corrupt", its files are never opened through a link, and a
// failed first transaction leaves nothing behind.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { canonicalizeRanges, rangeSet } from "../../cni/range-set.ts";
import { scrambleStorePages } from "../helpers/ipam-store.ts";
import { parseIp, formatIp } from "../../cni/ip.ts";
import { StoreError } from "../../cni/store/errors.ts";
import { isStoreId } from "../../cni/store/identity.ts";
import { createSqliteStore, inspectSqliteStore, openSqliteStore } from "../../cni/store/sqlite.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

type Ctx = { dir: string; net: string };
const test = suite<Ctx>("store identity, lost and corrupt stores");
test.before.each((ctx) => {
  ctx.dir = tempDir();
  ctx.net = join(ctx.dir, "net");
});
test.after.each((ctx) => removeDir(ctx.dir));

const SET = rangeSet(canonicalizeRanges([{ subnet: "10.0.0.0/24" }]));
const ip = (s: string) => parseIp(s)!;

/** One transaction that reserves addr for id (its attachment's eth0). */
async function reserve(net: string, addr: string, id = addr): Promise<void> {
  const s = createSqliteStore(net);
  try {
    await s.transaction(async () => {
      assert.ok(await s.reserve({ ip: ip(addr), containerId: id, ifname: "eth0", rangeSet: SET.key }));
    });
  } finally {
    s.close();
  }
}

async function storeError(work: () => Promise<unknown>): Promise<StoreError> {
  try {
    await work();
  } catch (e) {
    if (e instanceof StoreError) return e;
    throw e;
  }
  throw new Error("expected a store error");
}

const add = (net: string, addr = "10.0.0.9") => storeError(() => reserve(net, addr));
const files = (net: string) => readdirSync(net).sort();
const dbId = (net: string) => {
  const db = new DatabaseSync(join(net, "berth.db"));
  try {
    return (db.prepare("SELECT value FROM meta WHERE key = 'store_id'").get() as { value: string } | undefined)?.value;
  } finally {
    db.close();
  }
};

test("a new store gets one identity, the same in the database and in berth.id", async ({ net }) => {
  await reserve(net, "10.0.0.2");
  const id = readFileSync(join(net, "berth.id"), "utf8").trim();
  assert.ok(isStoreId(id), id);
  assert.is(dbId(net), id);
  assert.equal(files(net), ["berth.db", "berth.id"], "no temporary file left");
  await reserve(net, "10.0.0.3");
  assert.is(readFileSync(join(net, "berth.id"), "utf8").trim(), id, "the identity stays");
});

for (const [name, lose, why] of [
  ["emptied (zero length)", (net: string) => truncateSync(join(net, "berth.db"), 0), "is empty"],
  ["deleted", (net: string) => rmSync(join(net, "berth.db")), "is missing, but the identity file"],
  [
    "replaced by another network's store",
    (net: string) => copyFileSync(join(net, "..", "other", "berth.db"), join(net, "berth.db")),
    "is another store (identity",
  ],
  [
    "replaced by a SQLite database that is no berth store",
    (net: string) => {
      rmSync(join(net, "berth.db"));
      const db = new DatabaseSync(join(net, "berth.db"));
      db.exec("CREATE TABLE t (x)");
      db.close();
    },
    "is not a berth store",
  ],
] as const) {
  test(`a store whose berth.db was ${name} is lost: refused, named, and not made again`, async ({ dir, net }) => {
    await reserve(net, "10.0.0.2");
    await reserve(join(dir, "other"), "10.0.0.2", "other-network");
    lose(net);
    const before = files(net).map((f) => `${f}:${statSync(join(net, f)).size}`);
    const e = await add(net);
    assert.is(e.kind, "lost");
    assert.match(e.message, `store lost: ${join(net, "berth.db")} ${why}`);
    assert.match(
      e.message,
      `run \`berth-ipam recover --from-cni-cache /var/lib/cni/results --data-dir ${dir} --network net\``,
    );
    assert.equal(
      files(net).map((f) => `${f}:${statSync(join(net, f)).size}`),
      before,
      "nothing written",
    );
    // The read-side opening refuses it the same way (DEL, CHECK, GC, STATUS decide what to answer).
    const readSide = async () => {
      const s = openSqliteStore(net);
      try {
        await s?.transaction(async () => undefined);
      } finally {
        s?.close();
      }
    };
    assert.is((await storeError(readSide)).kind, "lost");
    assert.is(inspectSqliteStore(net).state, "lost");
  });
}

test("a missing berth.db whose write-ahead log is still there is lost, even without berth.id", async ({ net }) => {
  mkdirSync(net);
  writeFileSync(join(net, "berth.db-wal"), "");
  const e = await add(net);
  assert.is(e.kind, "lost");
  assert.match(e.message, "is missing, but its write-ahead log");
  assert.not.ok(existsSync(join(net, "berth.db")));
});

test("a damaged identity file makes the store lost (its database cannot be checked)", async ({ net }) => {
  await reserve(net, "10.0.0.2");
  writeFileSync(join(net, "berth.id"), "garbage\n");
  const e = await add(net);
  assert.is(e.kind, "lost");
  assert.match(e.message, "its identity file");
});

test("a store from before identities is adopted: it gets an identity in both places", async ({ net }) => {
  await reserve(net, "10.0.0.2");
  rmSync(join(net, "berth.id"));
  const db = new DatabaseSync(join(net, "berth.db"));
  db.exec("DELETE FROM meta WHERE key = 'store_id'");
  db.close();
  await reserve(net, "10.0.0.3");
  const id = readFileSync(join(net, "berth.id"), "utf8").trim();
  assert.ok(isStoreId(id));
  assert.is(dbId(net), id);
});

test("a lost identity file with an intact database is written again from the database", async ({ net }) => {
  await reserve(net, "10.0.0.2");
  const id = dbId(net);
  rmSync(join(net, "berth.id"));
  await reserve(net, "10.0.0.3");
  assert.is(readFileSync(join(net, "berth.id"), "utf8").trim(), id);
});

/** A store with many reservations, then garbage over every page but the first (the schema). */
async function malformed(net: string): Promise<void> {
  const s = createSqliteStore(net);
  await s.transaction(async () => {
    for (let i = 0; i < 2000; i++)
      await s.reserve({
        ip: { family: 4, value: 0x0a000000n + BigInt(i) },
        containerId: `c${i}`,
        ifname: "eth0",
        rangeSet: "x",
      });
  });
  s.close();
  scrambleStorePages(net);
}

test("a store with malformed pages is corrupt: `store corrupt: <path>; run \\`berth-ipam verify\\``", async ({
  net,
}) => {
  await malformed(net);
  const e = await add(net, "10.0.0.250");
  assert.is(e.kind, "corrupt");
  assert.is(e.message, `store corrupt: ${join(net, "berth.db")}; run \`berth-ipam verify\``);
  assert.match(e.detail, "malformed");
  const h = inspectSqliteStore(net, { integrity: true });
  assert.is(h.state, "corrupt");
});

test("a berth.db that is not a database at all is corrupt, with SQLite's words in the detail", async ({ net }) => {
  mkdirSync(net);
  writeFileSync(join(net, "berth.db"), "not a database ".repeat(500));
  const e = await add(net);
  assert.is(e.kind, "corrupt");
  assert.is(e.message, `store corrupt: ${join(net, "berth.db")}; run \`berth-ipam verify\``);
  assert.is(e.detail, "file is not a database");
});

for (const file of ["berth.db", "berth.db-wal", "berth.db-shm", "berth.id"]) {
  test(`a symlinked ${file} is never opened or created through, and its target is not touched`, async ({
    dir,
    net,
  }) => {
    await reserve(net, "10.0.0.2");
    const target = join(dir, "target");
    writeFileSync(target, "");
    rmSync(join(net, file), { force: true });
    symlinkSync(target, join(net, file));
    const e = await add(net);
    assert.is(e.kind, "io");
    assert.match(e.message, `${join(net, file)} is a symbolic link`);
    assert.is(statSync(target).size, 0, "nothing written through the link");
  });
}

test("a symlinked berth.db in a network never used is not created through", async ({ dir, net }) => {
  mkdirSync(net);
  const target = join(dir, "outside");
  writeFileSync(target, "");
  symlinkSync(target, join(net, "berth.db"));
  const e = await add(net);
  assert.is(e.kind, "io");
  assert.is(statSync(target).size, 0);
});

test("a symlinked data dir is fine", async ({ dir }) => {
  const real = join(dir, "real");
  mkdirSync(real);
  symlinkSync(real, join(dir, "link"));
  await reserve(join(dir, "link", "net"), "10.0.0.2");
  assert.ok(existsSync(join(real, "net", "berth.db")));
  await reserve(join(dir, "link", "net"), "10.0.0.3");
});

test("a failed first transaction leaves no file or directory behind, also the data dir it made", async ({ dir }) => {
  const net = join(dir, "a", "b", "net");
  const s = createSqliteStore(net);
  const failed = await s
    .transaction(async () => {
      await s.reserve({ ip: ip("10.0.0.2"), containerId: "x", ifname: "eth0", rangeSet: SET.key });
      throw new Error("refused");
    })
    .then(
      () => "",
      (e: Error) => e.message,
    );
  s.close();
  assert.is(failed, "refused");
  assert.equal(readdirSync(dir), [], "not even the data dir's parents");
});

test("a failed first transaction in an existing directory leaves the directory as it was", async ({ net }) => {
  mkdirSync(net);
  writeFileSync(join(net, "10.0.0.7"), "hl\r\neth0");
  const s = createSqliteStore(net);
  await s.transaction(async () => Promise.reject(new Error("refused"))).catch(() => undefined);
  s.close();
  assert.equal(files(net), ["10.0.0.7"]);
});

test("two processes making the same store: one build wins, the other's transaction runs again on it", async ({
  net,
}) => {
  const a = createSqliteStore(net);
  const b = createSqliteStore(net);
  let release = () => {};
  const gate = new Promise<void>((go) => (release = go));
  let runsOfA = 0;
  const first = a.transaction(async () => {
    runsOfA++;
    if (runsOfA === 1) await gate; // A builds its store, then waits while B builds and places its own
    const free = await a.nextFree(SET);
    return free !== undefined && a.reserve({ ip: free, containerId: "a", ifname: "eth0", rangeSet: SET.key });
  });
  await b.transaction(async () =>
    b.reserve({ ip: ip("10.0.0.2"), containerId: "b", ifname: "eth0", rangeSet: SET.key }),
  );
  release();
  assert.ok(await first);
  a.close();
  b.close();
  assert.is(runsOfA, 2, "A lost the race and ran again on B's store");
  const s = createSqliteStore(net);
  await s.transaction(async () => {
    assert.equal(
      (await s.getById({ containerId: "a", ifname: "eth0" })).map((r) => formatIp(r.ip)),
      ["10.0.0.3"],
    );
    assert.equal(
      (await s.getById({ containerId: "b", ifname: "eth0" })).map((r) => formatIp(r.ip)),
      ["10.0.0.2"],
    );
  });
  s.close();
  assert.equal(files(net), ["berth.db", "berth.id"]);
});

test("inspect: absent, ok with the identity, and a store from before identities is ok without one", async ({ net }) => {
  assert.is(inspectSqliteStore(net).state, "absent");
  await reserve(net, "10.0.0.2");
  const h = inspectSqliteStore(net, { integrity: true });
  assert.equal(h, { state: "ok", path: join(net, "berth.db"), storeId: dbId(net) });
  assert.equal(files(net), ["berth.db", "berth.id"], "inspect wrote nothing");
});

test.run();
