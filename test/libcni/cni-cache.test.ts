// The CNI result cache as the real libcni writes it (containernetworking/cni libcni/api.go,
// cacheAdd/cacheDel: <cacheDir>/results/<network>-<containerID>-<ifname>), read back by
// cni/store/cni-cache.ts: what a lost store is recovered from. The IPAM plugin under test is the
// network's only plugin here (a standalone .conf and a one-plugin .conflist), at the result
// versions that matter: 0.2.0 (ip4/ip6), 0.4.0 (ips with version), 1.0.0.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { formatIp } from "../../cni/ip.ts";
import { readCniCache } from "../../cni/store/cni-cache.ts";
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import { GO, libcniCall, libcniClient, needLibcniSource, type LibcniRequest } from "../helpers/libcni-client.ts";
import { gated, needExecutable, needPluginUnderTest } from "../helpers/peers.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

const test = suite("libcni's result cache, read back for recovery");
const { define: it } = gated(test, "libcni", [
  needPluginUnderTest(),
  needExecutable(GO, "golang-go"),
  needLibcniSource(),
]);

const TYPE = basename(IPAM_PLUGIN);

it("every attachment libcni cached is read back with the addresses the plugin gave; DEL's removal too", async () => {
  libcniClient();
  const dir = tempDir("libcni-cache");
  try {
    const cacheDir = join(dir, "cache");
    const ipam = (subnet: string) => ({ type: TYPE, dataDir: join(dir, "data"), ranges: [[{ subnet }]] });
    const confs = [
      { name: "net", cniVersion: "1.0.0", mode: "net", body: { type: TYPE, ipam: ipam("10.30.0.0/24") } },
      {
        name: "net-b",
        cniVersion: "0.4.0",
        mode: "list",
        body: {
          plugins: [
            {
              type: TYPE,
              ipam: {
                ...ipam("10.31.0.0/24"),
                ranges: [[{ subnet: "10.31.0.0/24" }], [{ subnet: "2001:db8:31::/64" }]],
              },
            },
          ],
        },
      },
      { name: "old", cniVersion: "0.2.0", mode: "net", body: { type: TYPE, ipam: ipam("10.32.0.0/24") } },
    ] as const;
    const given = new Map<string, string[]>();
    for (const c of confs) {
      const file = join(dir, `${c.name}.${c.mode === "list" ? "conflist" : "conf"}`);
      writeFileSync(file, JSON.stringify({ cniVersion: c.cniVersion, name: c.name, ...c.body }));
      for (const [containerID, ifname] of [
        ["ctr-1", "eth0"],
        ["ctr-2", "net1"],
        ["ctr-3", "eth0"],
      ] as const) {
        const req: LibcniRequest = {
          op: "add",
          mode: c.mode,
          conf: file,
          path: [dirname(IPAM_PLUGIN)],
          cacheDir,
          containerID,
          netns: "/var/run/netns/none",
          ifname,
        };
        const r = await libcniCall(req);
        assert.ok(r.ok, r.error);
        const res = r.result as { ips?: { address: string }[]; ip4?: { ip: string } };
        const addrs = res.ips ? res.ips.map((i) => i.address) : [res.ip4?.ip ?? ""];
        given.set(
          `${c.name} ${containerID}/${ifname}`,
          addrs.map((a) => a.split("/")[0] ?? ""),
        );
      }
      // The runtime's DEL removes the attachment from its cache: recovery must not bring it back.
      const del = await libcniCall({
        op: "del",
        mode: c.mode,
        conf: file,
        path: [dirname(IPAM_PLUGIN)],
        cacheDir,
        containerID: "ctr-3",
        netns: "/var/run/netns/none",
        ifname: "eth0",
      });
      assert.ok(del.ok, del.error);
      given.delete(`${c.name} ctr-3/eth0`);
    }
    for (const c of confs) {
      const scan = readCniCache(join(cacheDir, "results"), c.name);
      assert.equal(scan.skipped, [], `${c.name}: nothing skipped`);
      const read = new Map(
        scan.attachments.map((a) => [`${a.network} ${a.containerId}/${a.ifname}`, a.addresses.map(formatIp)]),
      );
      const expected = new Map([...given].filter(([k]) => k.startsWith(`${c.name} `)));
      assert.equal(read, expected, c.name);
    }
    assert.is(given.get("net-b ctr-1/eth0")?.length, 2, "both families of a dual-stack network");
  } finally {
    removeDir(dir);
  }
});

test.run();
