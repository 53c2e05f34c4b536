// list, show and usage against stores filled by real CNI ADDs: the text columns people read
// (aligned under their headers) and the JSON scripts read (exactly the contract's keys).
import * as assert from "uvu/assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { suiteWithDir } from "../helpers/cni.ts";
import { NET, RFC3339, add, addAll, berth, fails, ok, okJson, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: list, show, usage");

/** Each row's cells, cut at the offsets where the header's columns start; asserts nothing spills. */
function cells(text: string, headers: readonly string[]): string[][] {
  const [head = "", ...rows] = text.trimEnd().split("\n");
  const starts = headers.map((h) => head.indexOf(h));
  for (const [i, s] of starts.entries())
    assert.ok(s >= 0 && (i === 0 || s > (starts[i - 1] ?? 0)), `header ${headers[i]} in ${head}`);
  return rows.map((row) =>
    starts.map((s, i) => {
      if (i > 0) assert.is(row[s - 1], " ", `column ${headers[i]} starts at ${s} in ${JSON.stringify(row)}`);
      return row.slice(s, starts[i + 1] ?? row.length).trim();
    }),
  );
}

const DUAL = { ranges: [[{ subnet: "10.1.2.0/24" }], [{ subnet: "fd00:1::/120" }]] };

test("list: every reservation of every network in the data dir, as aligned columns and as JSON", async ({ dir }) => {
  const t0 = Date.now();
  const a = await addAll(v4conf(dir, DUAL), ["ctr-a", "ctr-b"]);
  const b = await addAll(v4conf(dir, { subnet: "10.9.0.0/24" }, { name: "other" }), ["ctr-a"], "net1");
  const t1 = Date.now();
  assert.equal(a, ["10.1.2.2", "fd00:1::2", "10.1.2.3", "fd00:1::3"]);

  const text = await ok("list", "--data-dir", dir);
  const rows = cells(text, ["NETWORK", "ADDRESS", "CONTAINER ID", "IFNAME", "RESERVED AT"]);
  assert.equal(
    rows.map((r) => r.slice(0, 4)),
    [
      ["other", b[0], "ctr-a", "net1"],
      [NET, "10.1.2.2", "ctr-a", "eth0"],
      [NET, "10.1.2.3", "ctr-b", "eth0"],
      [NET, "fd00:1::2", "ctr-a", "eth0"],
      [NET, "fd00:1::3", "ctr-b", "eth0"],
    ],
  );
  for (const r of rows) assert.match(r[4] ?? "", RFC3339);

  const json = await okJson("list", "--data-dir", dir);
  assert.is(json.length, 5);
  for (const o of json) {
    assert.equal(Object.keys(o), ["network", "address", "containerID", "ifname", "reservedAt"]);
    const at = Date.parse(String(o.reservedAt));
    assert.match(String(o.reservedAt), RFC3339);
    assert.ok(at >= t0 - 1000 && at <= t1 + 1000, `reservedAt ${o.reservedAt} within the test's ADDs`);
  }
  assert.equal(
    json.map((o) => [o.network, o.address, o.containerID, o.ifname]),
    rows.map((r) => r.slice(0, 4)),
    "text and JSON list the same reservations",
  );
});

test("list filters: --network, --container-id, --ifname, --address; --conf of a .conflist picks the berth-ipam plugin", async ({
  dir,
}) => {
  await addAll(v4conf(dir, DUAL), ["a", "b"]);
  await addAll(v4conf(dir, { subnet: "10.9.0.0/24" }, { name: "other" }), ["a"]);
  const pick = async (...args: string[]) =>
    (await okJson("list", ...args)).map((o) => `${o.network} ${o.address} ${o.containerID}`);
  assert.equal(await pick("--data-dir", dir, "--network", "other"), ["other 10.9.0.2 a"]);
  assert.equal(await pick("--data-dir", dir, "--container-id", "a"), [
    "other 10.9.0.2 a",
    `${NET} 10.1.2.2 a`,
    `${NET} fd00:1::2 a`,
  ]);
  assert.equal(await pick("--data-dir", dir, "--address", "fd00:1::3"), [`${NET} fd00:1::3 b`]);
  assert.equal(await pick("--data-dir", dir, "--container-id", "a", "--ifname", "net1"), []);
  const list = join(dir, "10-net.conflist");
  writeFileSync(
    list,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: NET,
      plugins: [
        { type: "bridge", bridge: "cni0", ipam: { type: "berth-ipam", dataDir: dir, ...DUAL } },
        { type: "portmap", capabilities: { portMappings: true } },
      ],
    }),
  );
  assert.equal(await pick("--conf", list, "--container-id", "b"), [`${NET} 10.1.2.3 b`, `${NET} fd00:1::3 b`]);
  const conf = join(dir, "net.conf");
  writeFileSync(conf, JSON.stringify(v4conf(dir, {}, { name: "other" })));
  assert.equal(await pick("--conf", conf), ["other 10.9.0.2 a"]);
  await fails(1, "list", "--conf", list, "--network", "other");
});

test("list of a data dir with no store, or a network never used: no rows, nothing created", async ({ dir }) => {
  assert.equal(await okJson("list", "--data-dir", dir), []);
  assert.equal(await okJson("list", "--data-dir", dir, "--network", "never"), []);
  assert.is((await ok("list", "--data-dir", dir)).trim(), "NETWORK  ADDRESS  CONTAINER ID  IFNAME  RESERVED AT");
  assert.equal((await import("node:fs")).readdirSync(dir), [], "the CLI creates no store");
});

test("show: who holds an address, since when, in which range set; free, excluded, gateway, outside", async ({
  dir,
}) => {
  const ipam = {
    ranges: [[{ subnet: "10.1.2.0/24", rangeStart: "10.1.2.10", gateway: "10.1.2.1" }]],
    exclude: ["10.1.2.12"],
  };
  const conf = join(dir, "net.conf");
  writeFileSync(conf, JSON.stringify(v4conf(dir, ipam)));
  assert.equal(await add(v4conf(dir, ipam), "holder"), ["10.1.2.10"]);
  const show = async (addr: string) => (await okJson("show", addr, "--conf", conf))[0];
  const held = await show("10.1.2.10");
  assert.equal(
    { ...held, reservedAt: undefined },
    {
      network: NET,
      address: "10.1.2.10",
      rangeSet: "10.1.2.10-10.1.2.254",
      configKnown: true,
      state: "reserved",
      containerID: "holder",
      ifname: "eth0",
      reservedAt: undefined,
    },
  );
  assert.match(String(held?.reservedAt), RFC3339);
  assert.is((await show("10.1.2.11"))?.state, "free");
  assert.is((await show("10.1.2.12"))?.state, "excluded");
  assert.is((await show("10.1.2.1"))?.state, "gateway", "a gateway outside the range is still the gateway");
  assert.is((await show("10.1.2.5"))?.state, "outside");
  assert.is((await show("10.7.0.1"))?.rangeSet, null);

  const text = await ok("show", "10.1.2.10", "--conf", conf);
  assert.match(text, /^network +testnet$/m);
  assert.match(text, /^range set +10\.1\.2\.10-10\.1\.2\.254$/m);
  assert.match(text, /^state +reserved$/m);
  assert.match(text, /^container ID +holder$/m);
  assert.match(text, /^reserved at +\d{4}-/m);

  // Without the config, the store's own record of the set: held and free are known, holes are not.
  const bare = (await okJson("show", "10.1.2.12", "--data-dir", dir))[0];
  assert.equal([bare?.state, bare?.rangeSet, bare?.configKnown], ["free", "10.1.2.10-10.1.2.254", false]);
  assert.match(await ok("show", "10.1.2.12", "--data-dir", dir), /^note +.*need --conf$/m);
  await fails(2, "show", "10.1.2.300", "--data-dir", dir);
});

test("usage: per range set its size, reserved, free, excluded and cursor; --json has exactly the contract's keys", async ({
  dir,
}) => {
  const ipam = { ...DUAL, exclude: ["10.1.2.96/29"] };
  const conf = join(dir, "net.conf");
  writeFileSync(conf, JSON.stringify(v4conf(dir, ipam)));
  await addAll(v4conf(dir, ipam), ["a", "b", "c"]);
  const json = await okJson("usage", "--conf", conf);
  for (const o of json) assert.equal(Object.keys(o), ["network", "rangeSet", "size", "reserved", "free"]);
  // 10.1.2.1-254 less its gateway .1 and the 8 excluded: 245; fd00:1::1-ff less the gateway: 254.
  assert.equal(json, [
    { network: NET, rangeSet: "10.1.2.1-10.1.2.254", size: 245, reserved: 3, free: 242 },
    { network: NET, rangeSet: "fd00:1::1-fd00:1::ff", size: 254, reserved: 3, free: 251 },
  ]);
  const rows = cells(await ok("usage", "--conf", conf), [
    "NETWORK",
    "RANGE SET",
    "SIZE",
    "RESERVED",
    "FREE",
    "EXCLUDED",
    "CURSOR",
  ]);
  assert.equal(rows, [
    [NET, "10.1.2.1-10.1.2.254", "245", "3", "242", "9", "10.1.2.4"],
    [NET, "fd00:1::1-fd00:1::ff", "254", "3", "251", "1", "fd00:1::4"],
  ]);
  // From the store alone: the sets it recorded, holes unknown.
  const bare = await okJson("usage", "--data-dir", dir);
  assert.equal(
    bare.map((o) => [o.rangeSet, o.size, o.reserved, o.free]),
    [
      ["10.1.2.1-10.1.2.254", 254, 3, 251],
      ["fd00:1::1-fd00:1::ff", 255, 3, 252],
    ],
  );
  // A /64 does not fit a double: its size is printed as the exact integer.
  const big = join(dir, "big.conf");
  writeFileSync(big, JSON.stringify(v4conf(dir, { subnet: "fd00:2::/64" }, { name: "big" })));
  const out = await ok("usage", "--conf", big, "--json");
  assert.match(out, /"size":18446744073709551614/, out);
});

test("usage and show need a store or a config: a data dir without stores is exit 1", async ({ dir }) => {
  await fails(1, "usage", "--data-dir", dir);
  await fails(1, "show", "10.1.2.3", "--data-dir", dir);
  await fails(1, "list", "--data-dir", join(dir, "missing"));
});

test("exit 2 for a wrong command line, with one line on stderr", async ({ dir }) => {
  await fails(2, "frobnicate");
  await fails(2, "list", "--no-such-flag");
  await fails(2, "list", "--conf", join(dir, "x.conf"), "--data-dir", dir);
  await fails(2, "list", "--data-dir", dir, "--network", "../etc");
  await fails(2, "list", "--data-dir", dir, "--address", "nope");
  await fails(2, "release", "--data-dir", dir, "--network", NET);
  await fails(2, "release", "10.1.2.3", "--container-id", "x", "--data-dir", dir, "--network", NET);
  await fails(2, "gc", "--data-dir", dir);
  await fails(2, "validate", "--data-dir", dir);
});

test("no CNI_COMMAND and no arguments: the CNI about text on stderr, then the usage hint; exit 0", async () => {
  const r = await berth();
  assert.is(r.code, 0);
  assert.is(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /^CNI berth-ipam \d/);
  assert.match(lines[1] ?? "", /^CNI protocol versions supported: 0\.1\.0, /);
  assert.match(lines[2] ?? "", /berth-ipam --help/);
  const help = await berth("--help");
  assert.is(help.code, 0);
  for (const c of ["list", "show", "usage", "release", "gc", "verify", "validate", "recover"])
    assert.match(help.stdout, new RegExp(`berth-ipam ${c}\\b`), c);
});

test.run();
