// IP arithmetic and host-local's range rules (backend/allocator range_test.go, range_set_test.go).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatIp, ipFromKey, ipKey, parseCidr, parseIp, parseIpOrCidr } from "../../cni/ip.ts";
import { canonicalizeRange, rangesOverlap, rangeString, type Range } from "../../cni/range.ts";
import { canonicalizeRanges, rangeSet } from "../../cni/range-set.ts";
import { errorMessage } from "../../shared/json.ts";

const ip = suite("ip");
ip("parses and prints both families the way Go's net.IP does", () => {
  for (const [input, out] of [
    ["10.1.2.3", "10.1.2.3"],
    ["2001:DB8::1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"],
    ["2001:0:0:1::1", "2001:0:0:1::1"],
    ["::ffff:10.0.0.1", "10.0.0.1"],
    ["64:ff9b::192.0.2.33", "64:ff9b::c000:221"],
  ]) {
    assert.is(formatIp(parseIp(input!)!), out, input);
  }
});
ip("rejects what Go rejects", () => {
  for (const bad of [
    "10.1.2",
    "10.1.2.256",
    "010.1.2.3",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "10.1.2.3/24",
    "",
    "abc",
    "1.2.3.4 ",
  ]) {
    assert.is(parseIp(bad), undefined, bad);
  }
  assert.is(parseCidr("10.0.0.0/33"), undefined);
  assert.is(parseCidr("10.0.0.0"), undefined);
  assert.is(parseCidr("2001:db8::/129"), undefined);
  assert.is(formatIp(parseIpOrCidr("10.1.2.11/24")!), "10.1.2.11");
});
ip("store keys sort like addresses and keep the family", () => {
  const a = parseIp("10.0.0.255")!;
  const b = parseIp("10.0.1.0")!;
  assert.ok(Buffer.compare(Buffer.from(ipKey(a)), Buffer.from(ipKey(b))) < 0);
  assert.equal(ipFromKey(ipKey(a)), a);
  const v6 = parseIp("2001:db8::ffff:1")!;
  assert.equal(ipFromKey(ipKey(v6)), v6);
});
ip.run();

const range = suite("range (host-local range_test.go)");
const r = (o: Record<string, unknown>): Range => canonicalizeRange(o);
const msg = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return errorMessage(e);
  }
  return "";
};
range('"should generate sane defaults": /24, /25 and a v6 /64', () => {
  assert.is(rangeString(r({ subnet: "192.0.2.0/24" })), "192.0.2.1-192.0.2.254");
  assert.is(formatIp(r({ subnet: "192.0.2.0/24" }).gateway), "192.0.2.1");
  assert.is(rangeString(r({ subnet: "192.0.2.0/25" })), "192.0.2.1-192.0.2.126");
  const v6 = r({ subnet: "2001:db8:1::/64" });
  assert.is(
    rangeString(v6),
    "2001:db8:1::1-2001:db8:1:0:ffff:ffff:ffff:ffff" /* Go: a lone zero group is not compressed */,
  );
  assert.is(formatIp(v6.gateway), "2001:db8:1::1");
});
range('"should reject ipv4 network with host bit set": the message names the network address', () => {
  assert.is(
    msg(() => r({ subnet: "192.0.2.12/24" })),
    "Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0",
  );
  assert.is(
    msg(() => r({ subnet: "192.168.127.0/23" })),
    "Network has host bits set. For a subnet mask of length 23 the network address is 192.168.126.0",
  );
});
range('"Should reject a network that\'s too small": /31, /32, /127 and /128', () => {
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/31" })),
    "Network 192.0.2.0/31 too small to allocate from",
  );
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/32" })),
    "Network 192.0.2.0/32 too small to allocate from",
  );
  assert.is(
    msg(() => r({ subnet: "2001:db8::/127" })),
    "Network 2001:db8::/127 too small to allocate from",
  );
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/30" })),
    "",
  );
});
range('"should reject invalid RangeStart and RangeEnd specifications": in the subnet and in order', () => {
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/24", rangeStart: "192.0.3.0" })),
    "RangeStart 192.0.3.0 not in network 192.0.2.0/24",
  );
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/24", rangeEnd: "192.0.4.0" })),
    "RangeEnd 192.0.4.0 not in network 192.0.2.0/24",
  );
  assert.is(
    msg(() => r({ subnet: "192.0.2.0/24", rangeStart: "192.0.2.50", rangeEnd: "192.0.2.40" })),
    "RangeStart 192.0.2.50 not in network 192.0.2.0/24",
  );
  assert.is(
    rangeString(r({ subnet: "192.0.2.0/24", rangeStart: "192.0.2.40", rangeEnd: "192.0.2.50" })),
    "192.0.2.40-192.0.2.50",
  );
});
range('"Detecting overlap" (range_test.go table)', () => {
  const o = (a: Record<string, unknown>, b: Record<string, unknown>) => rangesOverlap(r(a), r(b));
  assert.not.ok(o({ subnet: "10.0.0.0/24" }, { subnet: "10.0.1.0/24" }));
  assert.not.ok(o({ subnet: "10.0.0.0/24" }, { subnet: "2001:db8::/64" }));
  assert.ok(o({ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/24" }));
  assert.ok(o({ subnet: "10.0.0.0/20" }, { subnet: "10.0.2.0/24" }));
  assert.not.ok(
    o({ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.127" }, { subnet: "10.0.0.0/24", rangeStart: "10.0.0.128" }),
  );
  assert.ok(o({ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.127" }, { subnet: "10.0.0.0/24", rangeStart: "10.0.0.127" }));
});
range('range_set_test.go "should discover overlaps within a set", empty and mixed-family sets', () => {
  assert.is(
    msg(() => canonicalizeRanges([])),
    "empty range set",
  );
  assert.is(
    msg(() => canonicalizeRanges([{ subnet: "10.0.0.0/24" }, { subnet: "2001:db8::/64" }])),
    "mixed address families",
  );
  assert.is(
    msg(() => canonicalizeRanges([{ subnet: "192.168.0.0/20" }, { subnet: "192.168.2.0/24" }])),
    "subnets 192.168.0.1-192.168.15.254 and 192.168.2.1-192.168.2.254 overlap",
  );
  assert.is(
    rangeSet(canonicalizeRanges([{ subnet: "192.168.0.0/24" }, { subnet: "172.16.1.0/24" }])).key,
    "192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254",
  );
});
range.run();
