// The CNI protocol as the skel owns it (SPEC.md "Parameters", "Error codes", "Version"): env
// validation, decoding, version negotiation, result shapes per version, errors on stdout only.
import * as assert from "uvu/assert";
import { addresses, cni, netconf, snapshot, suiteWithDir } from "../helpers/cni.ts";
import { underTestIsReference } from "../helpers/peers.ts";

const REF = underTestIsReference();

const test = suiteWithDir("protocol");

/** An error the spec's way: exit 1, one JSON object on stdout with code and msg, nothing else there. */
function assertCniError(r: Awaited<ReturnType<typeof cni>>, code: number, msg?: string | RegExp): void {
  assert.is(r.code, 1, `exit code: ${r.stdout} ${r.stderr}`);
  assert.ok(r.json, `stdout is one JSON object: ${JSON.stringify(r.stdout)}`);
  assert.is(r.json.code, code, `code of ${r.stdout}`);
  if (typeof msg === "string") assert.is(r.json.msg, msg);
  else if (msg) assert.match(String(r.json.msg), msg);
  assert.not.match(r.stdout, /\n\s+at /, "no stack trace");
  assert.not.match(r.stderr, /\n\s+at .*\.(js|ts|cjs):\d+/, "no stack trace on stderr either");
}

test("spec: ADD without CNI_CONTAINERID and CNI_IFNAME is error 4 naming both", async ({ dir }) => {
  const r = await cni(
    { command: "ADD", env: { CNI_CONTAINERID: "", CNI_IFNAME: "" } },
    netconf({ dataDir: dir, subnet: "10.1.2.0/24" }),
  );
  assertCniError(r, 4, "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing");
});

test("spec: ADD and CHECK need CNI_NETNS (error 4); DEL does not", async ({ dir }) => {
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
  assertCniError(
    await cni({ command: "ADD", env: { CNI_NETNS: "" } }, conf),
    4,
    "required env variables [CNI_NETNS] missing",
  );
  assertCniError(
    await cni({ command: "CHECK", env: { CNI_NETNS: "" } }, conf),
    4,
    "required env variables [CNI_NETNS] missing",
  );
  assert.is((await cni({ command: "DEL", env: { CNI_NETNS: "" } }, conf)).code, 0);
});

test("skel: an unknown CNI_COMMAND is error 4", async ({ dir }) => {
  assertCniError(
    await cni({ command: "FROB" }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" })),
    4,
    "unknown CNI_COMMAND: FROB",
  );
});

test("skel: no CNI_COMMAND prints the about text on stderr and exits 0 with stdout empty", async () => {
  const r = await cni({ command: "", env: { CNI_CONTAINERID: "", CNI_IFNAME: "", CNI_NETNS: "", CNI_PATH: "" } }, "");
  assert.is(r.code, 0);
  assert.is(r.stdout, "");
  assert.match(r.stderr, "CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0");
});

for (const [id, why] of [
  ["../x", "path-like"],
  ["-x", "leading dash"],
  ["a b", "space"],
  ["a/b", "slash"],
] as const) {
  test(`skel: container ID ${JSON.stringify(id)} (${why}) is error 4 with the ID as details, no state`, async ({
    dir,
  }) => {
    const before = snapshot(dir);
    const r = await cni({ command: "ADD", containerId: id }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }));
    assertCniError(r, 4, "invalid characters in containerID");
    assert.is(r.json?.details, id);
    assert.is(snapshot(dir), before);
  });
}

for (const [ifname, msg] of [
  ["abcdefghijklmnop", "interface name is too long"],
  ["..", "interface name is . or .."],
  ["eth/0", "interface name contains / or : or whitespace characters"],
  ["eth:0", "interface name contains / or : or whitespace characters"],
  ["eth 0", "interface name contains / or : or whitespace characters"],
] as const) {
  test(`skel: interface name ${JSON.stringify(ifname)} is error 4: ${msg}`, async ({ dir }) => {
    assertCniError(await cni({ command: "ADD", ifname }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" })), 4, msg);
  });
}

for (const [name, code, msg] of [
  ["../etc", 7, "invalid characters found in network name"],
  ["a/b", 7, "invalid characters found in network name"],
  ["", 7, "missing network name"],
] as const) {
  test(`skel: network name ${JSON.stringify(name)} is error ${code}: ${msg}, no state`, async ({ dir }) => {
    const before = snapshot(dir);
    assertCniError(
      await cni({ command: "ADD" }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }, { name })),
      code,
      msg,
    );
    assert.is(snapshot(dir), before);
  });
}

test("skel: stdin that is not JSON is error 6", async () => {
  assertCniError(await cni({ command: "ADD" }, "{"), 6, /^error unmarshall network config: /);
});

test("spec: an unsupported cniVersion is error 1 with the supported list in details", async ({ dir }) => {
  const r = await cni({ command: "ADD" }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }, { cniVersion: "9.9.9" }));
  assertCniError(r, 1, "incompatible CNI versions");
  assert.match(
    String(r.json?.details),
    /^config is "9.9.9", plugin supports \["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"/,
  );
});

test("spec: CHECK below 0.4.0 is error 1", async ({ dir }) => {
  assertCniError(
    await cni({ command: "CHECK" }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }, { cniVersion: "0.3.1" })),
    1,
    "config version does not allow CHECK",
  );
});

for (const command of ["GC", "STATUS"]) {
  test(`spec: ${command} below 1.1.0 is error 1 (host-local 1.1.1 predates ${command}: error 4)`, async ({ dir }) => {
    const r = await cni({ command }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }, { cniVersion: "1.0.0" }));
    if (REF) assertCniError(r, 4, `unknown CNI_COMMAND: ${command}`);
    else assertCniError(r, 1, `config version does not allow ${command}`);
  });
}

test("spec: VERSION lists every supported version (berth: 0.1.0 to 1.1.0, echoing the asked version)", async () => {
  const r = await cni({ command: "VERSION" }, { cniVersion: "0.4.0" });
  assert.is(r.code, 0);
  const supported = r.json?.supportedVersions as string[];
  for (const v of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]) assert.ok(supported.includes(v), v);
  if (REF) {
    assert.is(r.json?.cniVersion, "1.0.0", "host-local answers with its newest version");
  } else {
    assert.ok(supported.includes("1.1.0"));
    assert.is(r.json?.cniVersion, "0.4.0", "the spec: VERSION echoes the cniVersion it was given");
  }
});

test("spec: a missing cniVersion means 0.1.0 (ip4 result)", async ({ dir }) => {
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
  delete conf.cniVersion;
  const r = await cni({ command: "ADD" }, conf);
  assert.is(r.code, 0, r.stdout);
  assert.equal(r.json, { cniVersion: "0.1.0", ip4: { ip: "10.1.2.2/24", gateway: "10.1.2.1" }, dns: {} });
});

for (const v of ["0.3.0", "0.3.1", "0.4.0"]) {
  test(`spec ${v}: ips carry "version"; dns is always present`, async ({ dir }) => {
    const r = await cni({ command: "ADD" }, netconf({ dataDir: dir, subnet: "10.1.2.0/24" }, { cniVersion: v }));
    assert.is(r.code, 0);
    assert.equal(r.json, {
      cniVersion: v,
      ips: [{ version: "4", address: "10.1.2.2/24", gateway: "10.1.2.1" }],
      dns: {},
    });
  });
}

test("spec 1.1.0: route mtu, advmss, priority, table and scope pass through (berth; host-local stops at 1.0.0)", async ({
  dir,
}) => {
  const routes = [{ dst: "192.0.2.0/24", gw: "10.1.2.1", mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }];
  const r = await cni(
    { command: "ADD" },
    netconf({ dataDir: dir, subnet: "10.1.2.0/24", routes }, { cniVersion: "1.1.0" }),
  );
  if (REF) {
    assertCniError(r, 1, "incompatible CNI versions");
    return;
  }
  assert.is(r.code, 0, r.stdout);
  assert.equal(r.json?.routes, [
    { dst: "192.0.2.0/24", gw: "10.1.2.1", mtu: 1400, advmss: 1360, priority: 10, table: 100 },
  ]);
  // The same routes under 1.0.0 carry only dst and gw.
  const old = await cni(
    { command: "ADD", containerId: "c2" },
    netconf({ dataDir: dir, subnet: "10.1.2.0/24", routes }, { cniVersion: "1.0.0" }),
  );
  assert.equal(old.json?.routes, [{ dst: "192.0.2.0/24", gw: "10.1.2.1" }]);
});

test("spec: DEL is idempotent; berth's DEL of a network never used leaves no directory (host-local makes one)", async ({
  dir,
}) => {
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
  const before = snapshot(dir);
  assert.is((await cni({ command: "DEL", containerId: "x" }, conf)).code, 0);
  if (!REF) assert.is(snapshot(dir), before);
  assert.is((await cni({ command: "ADD", containerId: "x" }, conf)).code, 0);
  assert.is((await cni({ command: "DEL", containerId: "x" }, conf)).code, 0);
  assert.is((await cni({ command: "DEL", containerId: "x" }, conf)).code, 0);
  assert.equal(addresses((await cni({ command: "ADD", containerId: "y", args: "IP=10.1.2.2" }, conf)).json), [
    "10.1.2.2/24",
  ]);
});

test.run();
