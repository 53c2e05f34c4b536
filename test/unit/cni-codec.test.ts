// shared/cni: env rules, versions, result rendering per version, and the dispatcher.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseEnv, validateIfname } from "../../shared/cni/env.ts";
import { type CniError, toCniError } from "../../shared/cni/errors.ts";
import { compareVersions, isSupported, supportedListText } from "../../shared/cni/version.ts";
import { prevResultAddresses, renderResult, type IpamResult } from "../../shared/cni/result.ts";

const env = suite("env");
const code = (fn: () => unknown): [number, string, string] => {
  try {
    fn();
  } catch (e) {
    const c = e as CniError;
    return [c.code, c.message, c.details];
  }
  return [0, "", ""];
};
env("spec: each command's required variables, named in one error (code 4)", () => {
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "ADD" })),
    [4, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing", ""],
  );
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "DEL" })),
    [4, "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing", ""],
  );
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "GC" })),
    [4, "required env variables [CNI_PATH] missing", ""],
  );
  assert.is(parseEnv({ CNI_COMMAND: "STATUS" }).command, "STATUS");
  assert.is(parseEnv({ CNI_COMMAND: "VERSION" }).command, "VERSION");
});
env("an empty variable counts as missing, as in the Go skel", () => {
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "", CNI_IFNAME: "eth0" }))[1],
    "required env variables [CNI_CONTAINERID] missing",
  );
});
env("skel: unknown command and invalid container IDs", () => {
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "add" })),
    [4, "unknown CNI_COMMAND: add", ""],
  );
  assert.equal(
    code(() => parseEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "../etc", CNI_IFNAME: "eth0" })),
    [4, "invalid characters in containerID", "../etc"],
  );
  assert.is(parseEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "a_b.c-9", CNI_IFNAME: "eth0" }).containerId, "a_b.c-9");
});
env("skel: interface name rules", () => {
  assert.is(validateIfname(""), "interface name is empty");
  assert.is(validateIfname("a".repeat(15)), undefined);
  assert.is(validateIfname("a".repeat(16)), "interface name is too long");
  assert.is(validateIfname("."), "interface name is . or ..");
  assert.is(validateIfname("a\tb"), "interface name contains / or : or whitespace characters");
});
env("CNI_PATH splits on ':' and drops empty parts", () => {
  assert.equal(parseEnv({ CNI_COMMAND: "GC", CNI_PATH: "/a::/b" }).path, ["/a", "/b"]);
});
env.run();

const version = suite("version");
version("supported versions and ordering", () => {
  for (const v of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]) assert.ok(isSupported(v), v);
  assert.not.ok(isSupported("1.2.0"));
  assert.ok(compareVersions("0.10.0", "0.4.0") > 0);
  assert.is(compareVersions("1.0.0", "1.0.0"), 0);
  assert.is(supportedListText(), '["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]');
});
version.run();

const result = suite("result rendering");
const res: IpamResult = {
  ips: [
    { address: "10.0.0.2/24", gateway: "10.0.0.1" },
    { address: "10.1.0.2/24", gateway: "10.1.0.1" },
    { address: "2001:db8::2/64" },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "10.0.0.1", mtu: 1500 }, { dst: "::/0" }],
  dns: { nameservers: ["192.0.2.1"], search: [] },
};
result("0.2.0: first address of each family, routes split by family, empty dns fields left out", () => {
  assert.equal(renderResult("0.2.0", res), {
    cniVersion: "0.2.0",
    ip4: { ip: "10.0.0.2/24", gateway: "10.0.0.1", routes: [{ dst: "0.0.0.0/0", gw: "10.0.0.1" }] },
    ip6: { ip: "2001:db8::2/64", routes: [{ dst: "::/0" }] },
    dns: { nameservers: ["192.0.2.1"] },
  });
});
result("0.4.0 has ips[].version; 1.0.0 does not; only 1.1.0 has route attributes", () => {
  const r040 = renderResult("0.4.0", res) as { ips: { version: string }[]; routes: object[] };
  assert.equal(
    r040.ips.map((i) => i.version),
    ["4", "4", "6"],
  );
  assert.equal(r040.routes[0], { dst: "0.0.0.0/0", gw: "10.0.0.1" });
  const r100 = renderResult("1.0.0", res) as { ips: object[] };
  assert.equal(r100.ips[0], { address: "10.0.0.2/24", gateway: "10.0.0.1" });
  assert.equal((renderResult("1.1.0", res) as { routes: object[] }).routes[0], {
    dst: "0.0.0.0/0",
    gw: "10.0.0.1",
    mtu: 1500,
  });
});
result("dns is always present, even empty", () => {
  assert.equal(renderResult("1.0.0", { ips: [], routes: [], dns: {} }), { cniVersion: "1.0.0", dns: {} });
});
result("0.2.0 with no address at all is an error, as types/100 convertTo02x", () => {
  assert.throws(() => renderResult("0.2.0", { ips: [], routes: [], dns: {} }), /no valid IP addresses/);
});
result("prevResult addresses from 0.2.0, 0.4.0 and 1.0.0 shapes", () => {
  assert.equal(prevResultAddresses({ ip4: { ip: "10.0.0.2/24" }, ip6: { ip: "2001:db8::2/64" } }), [
    "10.0.0.2",
    "2001:db8::2",
  ]);
  assert.equal(prevResultAddresses({ ips: [{ version: "4", address: "10.0.0.2/24" }] }), ["10.0.0.2"]);
  assert.equal(prevResultAddresses(null), []);
});
result.run();

const errors = suite("errors");
errors("anything thrown becomes a one-line 999, never a stack", () => {
  const e = toCniError(new Error("boom\n    at x (y.js:1:1)"));
  assert.is(e.code, 999);
  assert.is(e.message, "boom");
  assert.is(toCniError("plain").message, "plain");
});
errors.run();
