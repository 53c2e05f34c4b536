// verify on a clean store and on stores broken on purpose, one invariant each: an address outside
// its range set, an attachment with two addresses in one set, a cursor outside its set, a leftover
// host-local record file, a damaged index, a file that is not a database. --repair fixes what
// needs no guess (and says so); the rest stays a problem, exit 1.
import * as assert from "uvu/assert";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ipKey, parseIp } from "../../cni/ip.ts";
import { cni, suiteWithDir } from "../helpers/cni.ts";
import { NET, add, addAll, dbFile, fails, ok, okJson, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: verify");

const SET = "10.1.2.10-10.1.2.19";
const pool = (dir: string) =>
  v4conf(dir, { ranges: [[{ subnet: "10.1.2.0/24", rangeStart: "10.1.2.10", rangeEnd: "10.1.2.19" }]] });
const at = (dir: string) => ["--data-dir", dir];
const key = (s: string) => ipKey(parseIp(s)!);

/** Edits the store behind berth's back, as a stray manual edit would (no berth process is running). */
function edit(dir: string, sql: string, ...args: (string | Uint8Array)[]): void {
  const db = new DatabaseSync(dbFile(dir));
  try {
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}

type Report = {
  network: string;
  state: string;
  reservations: number;
  problems: { problem: string; repairable: boolean }[];
  repaired: string[];
};

async function broken(dir: string, ...extra: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await fails(1, "verify", ...at(dir), ...extra);
  return r;
}

test("a clean store filled by ADDs and DELs: ok, exit 0, text and JSON", async ({ dir }) => {
  const conf = pool(dir);
  await addAll(conf, ["a", "b", "c"]);
  assert.is((await cni({ command: "DEL", containerId: "b" }, conf)).code, 0);
  assert.is(await ok("verify", ...at(dir)), "testnet: ok (2 reservations)\n");
  assert.equal(await okJson<Report[]>("verify", ...at(dir)), [
    { network: NET, state: "ok", reservations: 2, problems: [], repaired: [] },
  ]);
  assert.is(await ok("verify", "--data-dir", dir, "--network", "never"), "never: no store yet (nothing reserved)\n");
});

test("an address outside its range set: reported, not repaired (which holder is right is a guess)", async ({ dir }) => {
  await addAll(pool(dir), ["a", "b"]);
  edit(dir, "UPDATE reservation SET ip = ? WHERE container_id = 'b'", key("10.1.2.200"));
  const r = await broken(dir);
  assert.is(r.stdout, `testnet: 1 problem\n  10.1.2.200 (b/eth0) is outside its range set ${SET}\n`);
  assert.is(r.stderr, "berth-ipam: verify: 1 problem in testnet\n");
  const repaired = await broken(dir, "--repair");
  assert.not.match(repaired.stdout, /repaired:/);
  await ok("release", "10.1.2.200", ...at(dir));
  assert.is(await ok("verify", ...at(dir)), "testnet: ok (1 reservation)\n");
});

test("an attachment with two addresses in one set: reported, not repaired", async ({ dir }) => {
  await addAll(pool(dir), ["a"]);
  edit(
    dir,
    "INSERT INTO reservation (ip, container_id, ifname, range_set) VALUES (?, 'a', 'eth0', ?)",
    key("10.1.2.15"),
    SET,
  );
  const [rep] = JSON.parse((await broken(dir, "--json")).stdout) as Report[];
  assert.equal(rep?.problems, [
    { problem: `attachment a/eth0 holds 2 addresses in range set ${SET}: 10.1.2.10, 10.1.2.15`, repairable: false },
  ]);
  await broken(dir, "--repair");
});

test("a cursor outside its set: --repair resets it, and ADD goes on from the set's start", async ({ dir }) => {
  const conf = pool(dir);
  await addAll(conf, ["a", "b"]);
  edit(dir, "UPDATE cursor SET ip = ?", key("10.9.9.9"));
  const r = await broken(dir);
  assert.match(
    r.stdout,
    new RegExp(`the cursor of range set ${SET} is at 10\\.9\\.9\\.9, outside the set \\(--repair fixes it\\)`),
  );
  const fixed = await ok("verify", "--repair", ...at(dir));
  assert.is(
    fixed,
    `testnet: repaired: reset the cursor of range set ${SET} (was 10.9.9.9): its walk restarts at the set's first address\ntestnet: ok (2 reservations)\n`,
  );
  assert.equal(await add(conf, "c"), ["10.1.2.12"]);
});

test("a leftover host-local record file: --repair takes it into the store, so ADD never hands it out", async ({
  dir,
}) => {
  const conf = pool(dir);
  await addAll(conf, ["a"]);
  writeFileSync(join(dir, NET, "10.1.2.11"), "late\r\neth0");
  const r = await broken(dir);
  assert.match(
    r.stdout,
    /host-local record file 10\.1\.2\.11 \(late\/eth0\) is not in the store \(--repair fixes it\)/,
  );
  const before = readFileSync(dbFile(dir));
  await broken(dir); // verify alone changes nothing
  assert.ok(readFileSync(dbFile(dir)).equals(before));
  const fixed = await ok("verify", "--repair", ...at(dir));
  assert.match(fixed, /repaired: took host-local record 10\.1\.2\.11 into the store for late\/eth0/);
  assert.match(fixed, /testnet: ok \(2 reservations\)\n$/);
  assert.equal(await add(conf, "b"), ["10.1.2.12"], "10.1.2.11 is held");
  assert.equal(
    (await okJson("list", ...at(dir), "--address", "10.1.2.11")).map((o) => o.containerID),
    ["late"],
  );
});

test("a record file naming another container than the store's holder: reported, not repaired", async ({ dir }) => {
  await addAll(pool(dir), ["a"]);
  writeFileSync(join(dir, NET, "10.1.2.10"), "someone-else\r\neth0");
  const r = await broken(dir, "--repair");
  assert.match(
    r.stdout,
    /host-local record file 10\.1\.2\.10 \(someone-else\/eth0\) names another container than the store, which gives it to a\/eth0\n/,
  );
});

test("damage to the owner index (SQLite's integrity check): --repair rebuilds it from the table", async ({ dir }) => {
  await addAll(pool(dir), ["alpha", "victim", "zulu"]);
  const db = new DatabaseSync(dbFile(dir));
  const root = (
    db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'reservation_owner'").get() as { rootpage: number }
  ).rootpage;
  const size = (db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.close();
  const bytes = readFileSync(dbFile(dir));
  const page = bytes.subarray((root - 1) * size, root * size);
  const i = page.indexOf("victim");
  assert.ok(i >= 0, "the index page holds the container ID");
  page[i + 5] = "n".charCodeAt(0); // the index now says "victin"
  writeFileSync(dbFile(dir), bytes);
  const r = await broken(dir);
  assert.match(r.stdout, /SQLite integrity check: row \d+ missing from index reservation_owner \(--repair fixes it\)/);
  const fixed = await ok("verify", "--repair", ...at(dir));
  assert.match(fixed, /repaired: rebuilt index reservation_owner from the reservations\n/);
  assert.match(fixed, /testnet: ok \(3 reservations\)\n$/);
  await ok("release", "--container-id", "victim", ...at(dir), "--network", NET);
});

test("a store whose pages are damaged or that is not a database: corrupt, reported, and every command refuses it", async ({
  dir,
}) => {
  await addAll(pool(dir), ["a"]);
  writeFileSync(dbFile(dir), Buffer.alloc(8192, 0x5a));
  const r = await broken(dir);
  assert.is(r.stdout, `testnet: 1 problem\n  store corrupt: ${dbFile(dir)}: file is not a database\n`);
  const [rep] = JSON.parse((await broken(dir, "--json")).stdout) as Report[];
  assert.is(rep?.state, "corrupt");
  const list = await fails(1, "list", ...at(dir));
  assert.match(list.stderr, /store corrupt: .*berth\.db; run `berth-ipam verify`/);
  const add = await cni({ command: "ADD", containerId: "b" }, pool(dir));
  assert.equal([add.json?.code, add.json?.msg], [5, `store corrupt: ${dbFile(dir)}; run \`berth-ipam verify\``]);
});

test("damaged table pages (database disk image is malformed): reported as corrupt, exit 1", async ({ dir }) => {
  await addAll(pool(dir), ["a", "b"]);
  const db = new DatabaseSync(dbFile(dir));
  const root = (
    db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'reservation'").get() as { rootpage: number }
  ).rootpage;
  const size = (db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size;
  db.close();
  const bytes = readFileSync(dbFile(dir));
  bytes.fill(0xa5, (root - 1) * size, root * size);
  writeFileSync(dbFile(dir), bytes);
  const r = await broken(dir);
  assert.is(r.stdout, `testnet: 1 problem\n  store corrupt: ${dbFile(dir)}: database disk image is malformed\n`);
  const [rep] = JSON.parse((await broken(dir, "--json")).stdout) as Report[];
  assert.is(rep?.state, "corrupt");
  await broken(dir, "--repair");
});

test("a lost store (emptied, or gone beside its identity file): reported with the recovery command", async ({
  dir,
}) => {
  await addAll(pool(dir), ["a"]);
  writeFileSync(dbFile(dir), "");
  const r = await broken(dir);
  assert.match(
    r.stdout,
    /^testnet: 1 problem\n {2}store lost: .*berth\.db is empty \(zero length\);.*berth-ipam recover --from-cni-cache /,
  );
  rmSync(dbFile(dir));
  const gone = await broken(dir);
  assert.match(
    gone.stdout,
    /store lost: .*berth\.db is missing, but the identity file .*berth\.id shows this network had a store/,
  );
  assert.is((JSON.parse((await broken(dir, "--json")).stdout) as Report[])[0]?.state, "lost");
  const list = await fails(1, "list", ...at(dir));
  assert.match(list.stderr, /^berth-ipam: network testnet: store lost: /);
});

test("one broken network among several: the others are reported ok, the exit is 1", async ({ dir }) => {
  await addAll(pool(dir), ["a"]);
  await addAll(v4conf(dir, {}, { name: "fine" }), ["a"]);
  edit(dir, "UPDATE cursor SET ip = ?", key("10.9.9.9"));
  const r = await broken(dir);
  assert.match(r.stdout, /^fine: ok \(1 reservation\)\ntestnet: 1 problem\n/);
  assert.is(r.stderr, "berth-ipam: verify: 1 problem in testnet\n");
});

test.run();
