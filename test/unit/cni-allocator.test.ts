// The allocator against the in-memory store, and the round-robin walk every store shares:
// host-local's allocator_test.go ("should allocate ips in round robin", the requested-IP cases,
// "when out of ips") and range_set_test.go.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { allocate } from "../../cni/allocator.ts";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet, walkOrder, type Block } from "../../cni/range-set.ts";
import { memoryStore } from "../../cni/store/memory.ts";
import { errorMessage } from "../../shared/json.ts";

const att = { containerId: "c", ifname: "eth0" };
const ipOf = (s: string) => parseIp(s)!;
const setOf = (ranges: Record<string, unknown>[], exclude: Block[] = []) =>
  rangeSet(canonicalizeRanges(ranges), exclude);
const v4 = (s: string): bigint => ipOf(s).value;
const text = (lo: bigint, hi: bigint) => `${formatIp({ family: 4, value: lo })}-${formatIp({ family: 4, value: hi })}`;

async function next(subnets: string[], reserved: string[], last?: string): Promise<string> {
  const set = setOf(subnets.map((subnet) => ({ subnet })));
  const store = memoryStore(
    reserved.map((ip) => ({ ip: ipOf(ip), containerId: `r${ip}`, ifname: "eth0", rangeSet: "x" })),
  );
  if (last) store.cursors.set(set.key, ipOf(last));
  try {
    return (await allocate(store, set, att)).address.split("/")[0]!;
  } catch (e) {
    return errorMessage(e);
  }
}

const test = suite("allocator (host-local allocator_test.go)");
const table: [string[], string[], string | undefined, string][] = [
  [["10.0.0.0/29"], [], undefined, "10.0.0.2"],
  [["2001:db8:1::/64"], [], undefined, "2001:db8:1::2"],
  [["10.0.0.0/30"], [], undefined, "10.0.0.2"],
  [["10.0.0.0/29"], ["10.0.0.2"], undefined, "10.0.0.3"],
  [["10.0.0.0/29"], [], "10.0.0.5", "10.0.0.6"],
  [["10.0.0.0/29"], ["10.0.0.4", "10.0.0.5"], "10.0.0.3", "10.0.0.6"],
  [["10.0.0.0/29"], ["10.0.0.6"], "10.0.0.5", "10.0.0.2"],
  [["10.0.0.0/29"], ["10.0.0.2"], "10.0.0.128", "10.0.0.3"],
  [["10.0.0.0/29"], ["10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"], "10.0.0.3", "10.0.0.3"],
  [["10.0.0.0/30", "10.0.1.0/30"], [], undefined, "10.0.0.2"],
  [["10.0.0.0/30", "10.0.1.0/30"], [], "10.0.0.2", "10.0.1.2"],
  [["10.0.0.0/30", "10.0.1.0/30", "10.0.2.0/30"], [], "10.0.2.2", "10.0.0.2"],
];
for (const [subnets, reserved, last, want] of table) {
  test(`round robin: ${subnets.join("+")} reserved [${reserved.join(" ")}] last ${last ?? "-"} -> ${want}`, async () => {
    assert.is(await next(subnets, reserved, last), want);
  });
}

test("when out of ips: a /29 gives five addresses and then says the range set is exhausted", async () => {
  const set = setOf([{ subnet: "10.0.0.0/29" }]);
  const store = memoryStore();
  const got: string[] = [];
  for (let i = 0; i < 5; i++) got.push((await allocate(store, set, { containerId: `c${i}`, ifname: "eth0" })).address);
  assert.equal(got, ["10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29", "10.0.0.6/29"]);
  try {
    await allocate(store, set, att);
    assert.unreachable("exhausted");
  } catch (e) {
    assert.match(errorMessage(e), /^no IP addresses available in range set: 10\.0\.0\.1-10\.0\.0\.6$/);
  }
});

test("when requesting a specific IP: taken, gateway, excluded, outside", async () => {
  const set = setOf([{ subnet: "192.168.1.0/29" }], [{ family: 4, lo: v4("192.168.1.6"), hi: v4("192.168.1.6") }]);
  const store = memoryStore();
  assert.is((await allocate(store, set, att, { required: ipOf("192.168.1.5") })).address, "192.168.1.5/29");
  const err = async (ip: string) =>
    allocate(store, set, { containerId: "d", ifname: "eth0" }, { required: ipOf(ip) }).then(() => "", errorMessage);
  assert.is(
    await err("192.168.1.5"),
    "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6",
  );
  assert.is(
    await err("192.168.1.6"),
    "requested IP address 192.168.1.6 is not available in range set 192.168.1.1-192.168.1.6",
  );
  assert.is(await err("192.168.1.1"), "requested ip 192.168.1.1 is subnet's gateway");
  assert.is(await err("192.168.2.1"), "192.168.2.1 not in range set 192.168.1.1-192.168.1.6");
});

test("a preferred address (held before a re-ADD) is kept while allowed, else the next free one is handed out", async () => {
  const set = setOf([{ subnet: "192.168.1.0/29" }], [{ family: 4, lo: v4("192.168.1.3"), hi: v4("192.168.1.3") }]);
  const store = memoryStore();
  const take = async (preferred: string, id: string) =>
    (await allocate(store, set, { containerId: id, ifname: "eth0" }, { preferred: ipOf(preferred) })).address;
  assert.is(await take("192.168.1.5", "a"), "192.168.1.5/29", "still allowed: kept");
  assert.is(await take("192.168.1.3", "b"), "192.168.1.6/29", "excluded now: the next free address");
  assert.is(await take("192.168.1.1", "c"), "192.168.1.2/29", "the gateway now: the next free address");
  assert.is(await take("10.9.9.9", "d"), "192.168.1.4/29", "outside the set now: the next free address");
  assert.is(
    await take("192.168.1.5", "e").catch(errorMessage),
    "no IP addresses available in range set: 192.168.1.1-192.168.1.6",
    "held by another and nothing else free: the set is exhausted",
  );
});

const walk = suite("range-set walk (host-local RangeIter)");

walk("after the cursor, the other ranges, then back round to the cursor", () => {
  const set = setOf([{ subnet: "10.0.0.0/29" }, { subnet: "10.0.1.0/29" }]);
  const segs = walkOrder(set, ipOf("10.0.0.3")).map((s) => text(s.lo, s.hi));
  assert.equal(segs, ["10.0.0.4-10.0.0.6", "10.0.1.2-10.0.1.6", "10.0.0.2-10.0.0.3"]);
});

walk("no cursor, or one the set does not contain, starts at the first range", () => {
  const set = setOf([{ subnet: "10.0.0.0/29" }, { subnet: "10.0.1.0/29" }]);
  const first = ["10.0.0.2-10.0.0.6", "10.0.1.2-10.0.1.6"];
  assert.equal(
    walkOrder(set, undefined).map((s) => text(s.lo, s.hi)),
    first,
  );
  assert.equal(
    walkOrder(set, ipOf("10.0.9.9")).map((s) => text(s.lo, s.hi)),
    first,
  );
});

walk("holes: each range's gateway and the excluded blocks of the set's family, merged, clipped to the set", () => {
  const set = setOf(
    [{ subnet: "10.0.0.0/28" }],
    [
      { family: 4, lo: v4("10.0.0.4"), hi: v4("10.0.0.7") },
      { family: 4, lo: v4("10.0.0.6"), hi: v4("10.0.0.8") },
      { family: 4, lo: v4("10.0.0.14"), hi: v4("10.0.1.255") },
      { family: 6, lo: 0n, hi: 1n << 100n },
    ],
  );
  assert.equal(
    set.holes.map((h) => text(h.lo, h.hi)),
    ["10.0.0.1-10.0.0.1", "10.0.0.4-10.0.0.8", "10.0.0.14-10.0.0.14"],
  );
  assert.equal(
    walkOrder(set, undefined).map((s) => text(s.lo, s.hi)),
    ["10.0.0.2-10.0.0.3", "10.0.0.9-10.0.0.13"],
  );
});

walk("the key is the ranges' text without the holes, so a changed exclude keeps the cursor", () => {
  const plain = setOf([{ subnet: "10.0.0.0/24" }]);
  const excluding = setOf([{ subnet: "10.0.0.0/24" }], [{ family: 4, lo: v4("10.0.0.9"), hi: v4("10.0.0.9") }]);
  assert.is(plain.key, "10.0.0.1-10.0.0.254");
  assert.is(excluding.key, plain.key);
});

walk("the walk's length depends on ranges and holes, never on the pool's size", () => {
  const big = setOf([{ subnet: "10.0.0.0/8" }], [{ family: 4, lo: v4("10.1.0.0"), hi: v4("10.1.0.255") }]);
  assert.is(walkOrder(big, ipOf("10.200.0.0")).length, 3);
  assert.is(walkOrder(big, undefined).length, 2);
});

test.run();
walk.run();
