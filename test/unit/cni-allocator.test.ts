// The allocator against the in-memory store: host-local's round-robin table (checklist 12) and
// its requested-address rules.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { allocate, walkOrder, withoutHoles } from "../../cni/allocator.ts";
import { formatIp, parseIp } from "../../cni/ip.ts";
import { canonicalizeRangeSet, rangeSetString } from "../../cni/range-set.ts";
import { memoryStore } from "../../cni/store/memory.ts";

const att = { containerId: "c", ifname: "eth0" };
const ipOf = (s: string) => parseIp(s)!;

async function next(subnets: string[], reserved: string[], last?: string): Promise<string> {
  const set = canonicalizeRangeSet(subnets.map((subnet) => ({ subnet })));
  const store = memoryStore(
    reserved.map((ip) => ({ ip: ipOf(ip), containerId: `r${ip}`, ifname: "eth0", rangeSet: "x" })),
  );
  if (last) store.cursors.set(rangeSetString(set), ipOf(last));
  try {
    return (await allocate(store, set, [], att)).address.split("/")[0]!;
  } catch (e) {
    return (e as Error).message;
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
  test(`12: ${subnets.join("+")} reserved [${reserved.join(" ")}] last ${last ?? "-"} -> ${want}`, async () => {
    assert.is(await next(subnets, reserved, last), want);
  });
}

test("13, 16: a /29 gives five addresses and then says the range set is exhausted", async () => {
  const set = canonicalizeRangeSet([{ subnet: "10.0.0.0/29" }]);
  const store = memoryStore();
  const got: string[] = [];
  for (let i = 0; i < 5; i++)
    got.push((await allocate(store, set, [], { containerId: `c${i}`, ifname: "eth0" })).address);
  assert.equal(got, ["10.0.0.2/29", "10.0.0.3/29", "10.0.0.4/29", "10.0.0.5/29", "10.0.0.6/29"]);
  try {
    await allocate(store, set, [], att);
    assert.unreachable("exhausted");
  } catch (e) {
    assert.match((e as Error).message, /^no IP addresses available in range set: 10\.0\.0\.1-10\.0\.0\.6$/);
  }
});

test("15: requested addresses: taken, gateway, outside", async () => {
  const set = canonicalizeRangeSet([{ subnet: "192.168.1.0/29" }]);
  const store = memoryStore();
  assert.is((await allocate(store, set, [], att, ipOf("192.168.1.5"))).address, "192.168.1.5/29");
  const err = async (ip: string) =>
    allocate(store, set, [], { containerId: "d", ifname: "eth0" }, ipOf(ip)).then(
      () => "",
      (e: Error) => e.message,
    );
  assert.is(
    await err("192.168.1.5"),
    "requested IP address 192.168.1.5 is not available in range set 192.168.1.1-192.168.1.6",
  );
  assert.is(await err("192.168.1.1"), "requested ip 192.168.1.1 is subnet's gateway");
  assert.is(await err("192.168.2.1"), "192.168.2.1 not in range set 192.168.1.1-192.168.1.6");
});

test("walk order: after the cursor, the other ranges, then back round to the cursor", () => {
  const set = canonicalizeRangeSet([{ subnet: "10.0.0.0/29" }, { subnet: "10.0.1.0/29" }]);
  const segs = walkOrder(set, ipOf("10.0.0.3")).map(
    (s) => `${formatIp({ family: 4, value: s.lo })}-${formatIp({ family: 4, value: s.hi })}`,
  );
  assert.equal(segs, ["10.0.0.4-10.0.0.6", "10.0.1.1-10.0.1.6", "10.0.0.1-10.0.0.3"]);
});

test("holes: the gateway and excluded stretches are cut out", () => {
  const set = canonicalizeRangeSet([{ subnet: "10.0.0.0/28" }]);
  const parts = withoutHoles({ range: set[0]!, lo: 1n + (10n << 24n), hi: 14n + (10n << 24n) }, [
    { family: 4, lo: (10n << 24n) + 4n, hi: (10n << 24n) + 7n },
    { family: 6, lo: 0n, hi: 100n },
  ]).map((p) => [Number(p.lo & 255n), Number(p.hi & 255n)]);
  assert.equal(parts, [
    [2, 3],
    [8, 14],
  ]);
});

test("round robin is O(1) in the pool's size: one store lookup per segment, not per address", async () => {
  const set = canonicalizeRangeSet([{ subnet: "10.0.0.0/16" }]);
  const store = memoryStore();
  let lookups = 0;
  const firstFree = store.firstFree;
  store.firstFree = (lo, hi) => {
    lookups++;
    return firstFree(lo, hi);
  };
  for (let i = 0; i < 200; i++) await allocate(store, set, [], { containerId: `c${i}`, ifname: "eth0" });
  assert.ok(lookups <= 200, `lookups ${lookups}`);
});
test.run();
