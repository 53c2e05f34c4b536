// release and gc: they free exactly what they print, in one transaction, and the next ADDs get the
// freed addresses; --dry-run prints the same and leaves the database byte for byte as it was; an
// address or attachment the store does not have is exit 1, never a silent success.
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cni, suiteWithDir } from "../helpers/cni.ts";
import { NET, add, addAll, dbBytes, fails, ok, okJson, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: release, gc");

/** A pool of exactly n addresses, 10.1.2.10 upwards. */
const pool = (dir: string, n: number) =>
  v4conf(dir, { ranges: [[{ subnet: "10.1.2.0/24", rangeStart: "10.1.2.10", rangeEnd: `10.1.2.${9 + n}` }]] });
const at = (dir: string) => ["--data-dir", dir, "--network", NET];

async function full(conf: object, id: string): Promise<void> {
  const r = await cni({ command: "ADD", containerId: id }, conf);
  assert.is(r.code, 1, `the pool is full: ${r.stdout}`);
  assert.is(r.json?.code, 999);
}

test("release --container-id frees the attachment's addresses; the next ADD gets the freed one", async ({ dir }) => {
  const conf = pool(dir, 3);
  assert.equal(await addAll(conf, ["a", "b", "c"]), ["10.1.2.10", "10.1.2.11", "10.1.2.12"]);
  await full(conf, "d");
  const before = dbBytes(dir);
  const preview = await okJson("release", "--container-id", "b", "--dry-run", ...at(dir));
  assert.equal(
    preview.map((o) => [o.network, o.address, o.containerID, o.ifname]),
    [[NET, "10.1.2.11", "b", "eth0"]],
  );
  assert.ok(dbBytes(dir).equals(before), "--dry-run leaves the database byte for byte as it was");
  await full(conf, "d");

  const text = await ok("release", "--container-id", "b", ...at(dir));
  assert.match(text, /^released 1 address:\n/);
  assert.match(text, /^testnet +10\.1\.2\.11 +b +eth0 +\d{4}-/m);
  assert.equal(await add(conf, "d"), ["10.1.2.11"], "the freed address is the one the next ADD gets");
  await full(conf, "e");
});

test("release ADDRESS frees one address whoever holds it; --dry-run changes nothing", async ({ dir }) => {
  const conf = pool(dir, 2);
  await addAll(conf, ["a", "b"]);
  const before = dbBytes(dir);
  const dry = await ok("release", "10.1.2.10", "--dry-run", ...at(dir));
  assert.match(dry, /^would release 1 address \(dry run, nothing changed\):\n/);
  assert.ok(dbBytes(dir).equals(before));
  const freed = await okJson("release", "10.1.2.10", ...at(dir));
  assert.equal(
    freed.map((o) => [o.address, o.containerID]),
    [["10.1.2.10", "a"]],
  );
  assert.equal(await add(conf, "c"), ["10.1.2.10"]);
});

test("release of something the store does not have is exit 1 with a message, and changes nothing", async ({ dir }) => {
  const conf = pool(dir, 2);
  await addAll(conf, ["a"]);
  const before = dbBytes(dir);
  const r1 = await fails(1, "release", "10.1.2.11", ...at(dir));
  assert.is(r1.stderr, "berth-ipam: 10.1.2.11 is not reserved in network testnet\n");
  const r2 = await fails(1, "release", "--container-id", "nobody", ...at(dir));
  assert.is(r2.stderr, "berth-ipam: no reservation for container nobody in network testnet\n");
  const r3 = await fails(1, "release", "--container-id", "a", "--ifname", "net9", ...at(dir));
  assert.is(r3.stderr, "berth-ipam: no reservation for container a with ifname net9 in network testnet\n");
  await fails(1, "release", "--container-id", "nobody", "--dry-run", ...at(dir));
  assert.ok(dbBytes(dir).equals(before));
});

test("release --container-id without --ifname frees every interface of the container; with it, only that one", async ({
  dir,
}) => {
  const conf = pool(dir, 4);
  await addAll(conf, ["pod"], "eth0");
  await addAll(conf, ["pod"], "net1");
  await addAll(conf, ["other"], "eth0");
  const one = await okJson("release", "--container-id", "pod", "--ifname", "net1", ...at(dir));
  assert.equal(
    one.map((o) => [o.address, o.ifname]),
    [["10.1.2.11", "net1"]],
  );
  await addAll(conf, ["pod"], "net1");
  const all = await okJson("release", "--container-id", "pod", ...at(dir));
  assert.equal(
    all.map((o) => [o.address, o.ifname]),
    [
      ["10.1.2.10", "eth0"],
      ["10.1.2.13", "net1"],
    ],
  );
  assert.equal(
    (await okJson("list", ...at(dir))).map((o) => o.containerID),
    ["other"],
  );
});

test("release of an attachment taken over from host-local also removes its record file", async ({ dir }) => {
  mkdirSync(join(dir, NET));
  writeFileSync(join(dir, NET, "10.1.2.10"), "legacy\r\neth0");
  const conf = pool(dir, 2);
  assert.equal(await add(conf, "new"), ["10.1.2.11"]);
  await ok("release", "--container-id", "legacy", ...at(dir));
  assert.not.ok(existsSync(join(dir, NET, "10.1.2.10")));
  assert.equal(await add(conf, "next"), ["10.1.2.10"]);
});

test("gc --keep FILE releases every attachment not listed; --dry-run prints the same list first", async ({ dir }) => {
  const conf = pool(dir, 4);
  assert.equal(await addAll(conf, ["a", "b", "c", "d"]), ["10.1.2.10", "10.1.2.11", "10.1.2.12", "10.1.2.13"]);
  const keep = join(dir, "keep.json");
  writeFileSync(
    keep,
    JSON.stringify([
      { containerID: "a", ifname: "eth0" },
      { containerID: "c", ifname: "eth0" },
      { containerID: "gone", ifname: "eth0" },
    ]),
  );
  const before = dbBytes(dir);
  const dry = await okJson("gc", "--keep", keep, "--dry-run", ...at(dir));
  assert.equal(
    dry.map((o) => [o.address, o.containerID]),
    [
      ["10.1.2.11", "b"],
      ["10.1.2.13", "d"],
    ],
  );
  assert.ok(dbBytes(dir).equals(before), "--dry-run leaves the database byte for byte as it was");
  const text = await ok("gc", "--keep", keep, ...at(dir));
  assert.match(text, /^released 2 addresses:\n/);
  assert.equal(
    (await okJson("list", ...at(dir))).map((o) => o.containerID),
    ["a", "c"],
  );
  const next = [...(await add(conf, "e")), ...(await add(conf, "f"))].sort();
  assert.equal(next, ["10.1.2.11", "10.1.2.13"], "the next ADDs get the addresses gc freed");
  await full(conf, "g");
  writeFileSync(keep, JSON.stringify(["a", "c", "e", "f"].map((id) => ({ containerID: id, ifname: "eth0" }))));
  assert.equal(await okJson("gc", "--keep", keep, ...at(dir)), [], "every attachment kept: nothing released");
  assert.is((await okJson("list", ...at(dir))).length, 4);
});

test("gc --keep with a file that is not a list of attachments is exit 1, and releases nothing", async ({ dir }) => {
  const conf = pool(dir, 2);
  await addAll(conf, ["a"]);
  const keep = join(dir, "keep.json");
  for (const [content, message] of [
    ["{", /--keep .*keep\.json: /],
    [JSON.stringify({ containerID: "a" }), /--keep .*keep\.json \(a list of \{containerID, ifname\}\)/],
    [
      JSON.stringify([{ containerID: "a" }]),
      /--keep .*keep\.json\[0\] must be \{"containerID": string, "ifname": string\}/,
    ],
  ] as const) {
    writeFileSync(keep, content);
    const r = await fails(1, "gc", "--keep", keep, ...at(dir));
    assert.match(r.stderr, message);
  }
  await fails(1, "gc", "--keep", join(dir, "missing.json"), ...at(dir));
  assert.is((await okJson("list", ...at(dir))).length, 1);
});

test("a command that changes a store needs one network: a data dir of several without --network is exit 2", async ({
  dir,
}) => {
  await addAll(v4conf(dir), ["a"]);
  await addAll(v4conf(dir, {}, { name: "other" }), ["a"]);
  const r = await fails(2, "release", "--container-id", "a", "--data-dir", dir);
  assert.match(r.stderr, /2 networks \(other, testnet\): pick one with --network/);
  assert.is((await okJson("list", "--data-dir", dir)).length, 2);
  await ok("release", "--container-id", "a", "--data-dir", dir, "--network", "other");
  // with only one network in the data dir, it is the one
  const single = join(dir, "single");
  await addAll(v4conf(single), ["a"]);
  assert.equal(
    (await okJson("release", "--container-id", "a", "--data-dir", single)).map((o) => o.network),
    [NET],
  );
});

test.run();
