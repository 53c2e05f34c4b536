// Block arithmetic of the etcd store (cni/store/etcd/blocks.ts) and its `store` config section
// (cni/store/etcd/config.ts): pure functions, no etcd needed.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet, type Block } from "../../cni/range-set.ts";
import {
  blockIndexSpans,
  blockName,
  blockOf,
  emptyMap,
  findBlock,
  firstFreeIn,
  mapCount,
  mapEmpty,
  mapHas,
  mapMembers,
  mapWith,
  nodeHash,
  parseBlockName,
  usableIn,
} from "../../cni/store/etcd/blocks.ts";
import { parseEtcdStoreConfig } from "../../cni/store/etcd/config.ts";
import { storeConfigOf } from "../../cni/config.ts";
import { CniError } from "../../shared/cni/errors.ts";

const ip = (s: string) => parseIp(s)!;
const setOf = (ranges: Record<string, string>[], exclude: Block[] = []) =>
  rangeSet(canonicalizeRanges(ranges), exclude);
const text = (family: 4 | 6, v: bigint | undefined) => (v === undefined ? "none" : formatIp({ family, value: v }));

const blocks = suite("etcd blocks");

blocks("a block is the aligned CIDR around an address, named without a slash", () => {
  const b = blockOf(ip("10.1.2.77"), 26);
  assert.is(blockName(b), "10.1.2.64-26");
  assert.is(blockName(blockOf(ip("fd10:210::1:2:3:4"), 122)), "fd10:210::1:2:3:0-122");
  assert.equal(parseBlockName("10.1.2.64-26"), b);
  assert.is(parseBlockName("10.1.2.65-26"), undefined, "host bits set");
  assert.is(parseBlockName("10.1.2.64"), undefined);
});

blocks("bitmaps: set, clear, count, members", () => {
  const b = blockOf(ip("10.0.0.0"), 26);
  let m = emptyMap(b);
  assert.is(m.length, 8);
  assert.ok(mapEmpty(m));
  m = mapWith(m, 0, true);
  m = mapWith(m, 63, true);
  m = mapWith(m, 9, true);
  assert.ok(mapHas(m, 63));
  assert.not.ok(mapHas(m, 62));
  assert.is(mapCount(m), 3);
  assert.equal(mapMembers(m), [0, 9, 63]);
  const cleared = mapWith(m, 9, false);
  assert.is(mapCount(cleared), 2);
  assert.is(mapCount(m), 3, "mapWith copies");
  assert.is(emptyMap(blockOf(ip("10.0.0.0"), 30)).length, 1, "a /30 still has a byte");
});

blocks("usable addresses of a block: the set's ranges minus gateway and exclude", () => {
  const set = setOf([{ subnet: "10.0.0.0/24" }], [{ family: 4, lo: ip("10.0.0.10").value, hi: ip("10.0.0.12").value }]);
  const first = blockOf(ip("10.0.0.0"), 26);
  const parts = usableIn(first, set).map((p) => `${text(4, p.lo)}-${text(4, p.hi)}`);
  // .0 is outside rangeStart (.1), .1 is the gateway, .10-.12 excluded.
  assert.equal(parts, ["10.0.0.2-10.0.0.9", "10.0.0.13-10.0.0.63"]);
  const last = blockOf(ip("10.0.0.200"), 26);
  assert.equal(
    usableIn(last, set).map((p) => `${text(4, p.lo)}-${text(4, p.hi)}`),
    ["10.0.0.192-10.0.0.254"],
    "rangeEnd .254 leaves out the broadcast address",
  );
  assert.equal(usableIn(blockOf(ip("10.0.1.0"), 26), set), [], "outside the set");
});

blocks("firstFreeIn skips taken and unusable addresses, after a cursor", () => {
  const set = setOf([{ subnet: "10.0.0.0/24" }]);
  const b = blockOf(ip("10.0.0.0"), 26);
  let m = emptyMap(b);
  assert.is(text(4, firstFreeIn(b, m, set)), "10.0.0.2");
  m = mapWith(m, 2, true);
  m = mapWith(m, 3, true);
  assert.is(text(4, firstFreeIn(b, m, set)), "10.0.0.4");
  assert.is(text(4, firstFreeIn(b, m, set, ip("10.0.0.40").value)), "10.0.0.41");
  assert.is(firstFreeIn(b, m, set, ip("10.0.0.63").value), undefined, "nothing after the block's last address");
});

blocks("a small subnet inside a bigger block: only the subnet's addresses", () => {
  const set = setOf([{ subnet: "10.0.0.16/28" }]);
  const b = blockOf(ip("10.0.0.16"), 26);
  assert.is(blockName(b), "10.0.0.0-26");
  assert.equal(
    usableIn(b, set).map((p) => `${text(4, p.lo)}-${text(4, p.hi)}`),
    ["10.0.0.18-10.0.0.30"],
  );
});

blocks("block index spans merge ranges that share blocks", () => {
  const set = setOf([
    { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" },
    { subnet: "10.0.1.0/24" },
  ]);
  assert.equal(
    blockIndexSpans(set, 26).map((s) => [s.lo - (ip("10.0.0.0").value >> 6n), s.hi - (ip("10.0.0.0").value >> 6n)]),
    [
      [0n, 0n],
      [4n, 7n],
    ],
  );
});

blocks("findBlock starts at the node's hash point and skips taken blocks", () => {
  const set = setOf([{ subnet: "10.0.0.0/22" }]); // 16 blocks of /26
  const a = findBlock(set, 26, "worker-1", () => true)!;
  const b = findBlock(set, 26, "worker-2", () => true)!;
  assert.is(a.base, ((nodeHash("worker-1") % 16n) << 6n) + ip("10.0.0.0").value);
  assert.is.not(a.base, b.base, "two nodes start at different blocks");
  const taken = new Set([a.base]);
  const next = findBlock(set, 26, "worker-1", (x) => !taken.has(x.base))!;
  assert.is(next.base, a.base + 64n === ip("10.0.4.0").value ? ip("10.0.0.0").value : a.base + 64n, "the next one");
  assert.is(
    findBlock(set, 26, "worker-1", () => false),
    undefined,
    "every block taken: none",
  );
});

blocks("findBlock on a huge IPv6 pool never enumerates it", () => {
  const set = setOf([{ subnet: "fd10:210::/64" }]);
  let calls = 0;
  const b = findBlock(set, 122, "worker-3", () => ++calls > 3)!;
  assert.is(calls, 4);
  assert.ok(b.base >= ip("fd10:210::").value);
});

const config = suite("etcd store config");
const parse = (o: Record<string, unknown>) => parseEtcdStoreConfig({ type: "etcd", ...o }, () => "host-a");
const code7 = (o: Record<string, unknown>, re: RegExp) => {
  try {
    parse(o);
  } catch (e) {
    assert.instance(e, CniError);
    assert.is((e as CniError).code, 7);
    assert.match((e as CniError).message, re);
    return;
  }
  assert.unreachable(`accepted ${JSON.stringify(o)}`);
};

config("the issue's example, and the defaults", () => {
  const c = parse({
    endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379"],
    prefix: "/berth",
    node: "worker-3",
    blockSize: 26,
    tls: { ca: "/etc/berth/etcd-ca.pem", cert: "/etc/berth/etcd.pem", key: "/etc/berth/etcd-key.pem" },
    auth: { username: "berth-worker-3", passwordFile: "/etc/berth/etcd-password" },
  });
  assert.equal(c.endpoints, ["https://10.0.0.11:2379", "https://10.0.0.12:2379"]);
  assert.is(c.blockSize6, 122);
  assert.equal(c.auth, { username: "berth-worker-3", passwordFile: "/etc/berth/etcd-password" });
  const d = parse({ endpoints: ["http://127.0.0.1:2379"] });
  assert.is(d.prefix, "/berth");
  assert.is(d.node, "host-a", "node defaults to the host name");
  assert.is(d.blockSize, 26);
});

config("unknown keys and bad values are code 7 with the key named", () => {
  code7({ endpoints: ["http://a:1"], blocksize: 26 }, /unknown key "blocksize"/);
  code7({ endpoints: ["http://a:1"], tls: { ca: "x", crt: "y" } }, /ipam\.store\.tls: unknown key "crt"/);
  code7(
    { endpoints: ["http://a:1"], auth: { username: "u", password: "p" } },
    /ipam\.store\.auth: unknown key "password"/,
  );
  code7({ endpoints: [] }, /endpoints must be a non-empty list/);
  code7({ endpoints: ["10.0.0.1:2379"] }, /not an http/);
  code7({ endpoints: ["http://user:secret@10.0.0.1:2379"] }, /no credentials in the URL/);
  code7({ endpoints: ["http://a:1", "https://b:2"] }, /mix of http and https/);
  code7({ endpoints: ["http://a:1"], blockSize: 31 }, /blockSize must be an IPv4 prefix length from 20 to 30/);
  code7({ endpoints: ["http://a:1"], blockSize6: 64 }, /blockSize6 must be an IPv6 prefix length/);
  code7({ endpoints: ["http://a:1"], node: "a/b" }, /not a valid node name/);
  code7({ endpoints: ["http://a:1"], prefix: "berth" }, /prefix must look like/);
  code7({ endpoints: ["http://a:1"], tls: { ca: "/x" } }, /tls needs https/);
  code7({ endpoints: ["https://a:1"], tls: { cert: "/x" } }, /cert and key go together/);
  code7({ endpoints: ["http://a:1"], auth: { username: "u" } }, /needs username and passwordFile/);
});

config("a secret given in the wrong place is never echoed", () => {
  try {
    parse({ endpoints: ["http://u:hunter2@a:1"] });
    assert.unreachable();
  } catch (e) {
    assert.not.match((e as Error).message, /hunter2/);
  }
  try {
    parse({ endpoints: ["u:hunter2@a:1"] });
    assert.unreachable();
  } catch (e) {
    assert.not.match((e as Error).message, /hunter2/);
  }
});

config("ipam.store: absent or local is the local store; anything else is etcd's or code 7", () => {
  assert.equal(storeConfigOf({ ipam: { type: "berth-ipam" } }), { type: "local" });
  assert.equal(storeConfigOf({ ipam: { store: { type: "local" } } }), { type: "local" });
  assert.equal(storeConfigOf({}), { type: "local" }, "DEL with no ipam at all still finds the local store");
  const e = storeConfigOf({ ipam: { store: { type: "etcd", endpoints: ["http://127.0.0.1:2379"], node: "n1" } } });
  assert.is(e.type, "etcd");
  for (const [store, re] of [
    [{ type: "consul" }, /unknown store type "consul"/],
    [{}, /unknown store type undefined/],
    ["etcd", /ipam\.store must be an object/],
    [{ type: "local", dataDir: "/x" }, /unknown key "dataDir" for the local store/],
  ] as const) {
    try {
      storeConfigOf({ ipam: { store } });
      assert.unreachable(JSON.stringify(store));
    } catch (err) {
      assert.is((err as CniError).code, 7);
      assert.match((err as Error).message, re);
    }
  }
});

blocks.run();
config.run();
