// The operator CLI on a network whose store is etcd, black box: the built berth-ipam run by a
// person with --conf FILE (the etcd store's config comes from the file), on pools filled by real
// ADDs from several simulated nodes (each its own `store.node` and dataDir) on a real 3-member etcd.
// list, show, usage, release, gc, verify (clean, broken on purpose one invariant at a time, then
// --repair), `node remove` with fencing of a zombie, `migrate` from the local store, changes made
// while a storm of ADD/DEL runs, and the failures: exit 1 with one line naming the endpoint, never
// a password.
import { clusterSuite } from "../helpers/etcd-suite.ts";
import * as assert from "uvu/assert";
import { copyFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE_FILE } from "../../cni/store/etcd/cache.ts";
import { keys, layout } from "../../cni/store/etcd/schema.ts";
import { execBinary, IPAM_PLUGIN, type ExecResult } from "../helpers/exec.ts";
import { needPluginUnderTest } from "../helpers/peers.ts";
import { enableAuth, needEtcd, startCluster, type Cluster } from "../helpers/etcd-cluster.ts";
import { cacheDisagreements, checkPool, storeConfig } from "../helpers/etcd-pool.ts";
import { etcdConf, localConf, ips, run, simNode, type SimNode } from "../helpers/etcd-nodes.ts";

const { test, define } = clusterSuite("etcd operator CLI", "cli", [...needEtcd(), needPluginUnderTest()]);

let nets = 0;
const newNet = () => `clinet${++nets}`;
let files = 0;

/** The config as a file, the way an operator hands it to the CLI. */
function confFile(root: string, conf: unknown, ext = ".conf"): string {
  const f = join(root, `conf-${++files}${ext}`);
  writeFileSync(f, JSON.stringify(conf));
  return f;
}

const berth = (...args: string[]): Promise<ExecResult> => execBinary(IPAM_PLUGIN, { args, timeoutMs: 60_000 });

async function ok(...args: string[]): Promise<string> {
  const r = await berth(...args);
  assert.is(r.code, 0, `berth-ipam ${args.join(" ")}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  assert.is(r.stderr, "", "nothing on stderr");
  return r.stdout;
}

async function okJson<T = Record<string, unknown>[]>(...args: string[]): Promise<T> {
  return JSON.parse(await ok(...args, "--json")) as T;
}

async function fails(code: 1 | 2, ...args: string[]): Promise<ExecResult> {
  const r = await berth(...args);
  assert.is(r.code, code, `berth-ipam ${args.join(" ")}: exit ${r.code}, wanted ${code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, /^berth-ipam: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  return r;
}

async function add(conf: unknown, id: string, args?: string): Promise<string[]> {
  const r = await run(conf, { command: "ADD", containerId: id, args });
  assert.is(r.code, 0, `ADD ${id}: ${r.stdout}`);
  return ips(r);
}

async function assertSound(c: Cluster, nodes: SimNode[], networks: string[], prefix = "/berth"): Promise<void> {
  const conf = storeConfig(c, { prefix });
  const p = await checkPool(c, conf);
  assert.equal(p.duplicates, [], "no address held twice");
  assert.equal(p.problems, [], "verify finds nothing");
  for (const n of nodes)
    for (const net of networks)
      assert.equal(await cacheDisagreements(c, join(n.dir, net), conf), [], `${n.name}'s cache`);
}

/** "containerID address" of every reservation of the network in etcd, sorted. */
async function held(c: Cluster, net: string): Promise<string[]> {
  return (await checkPool(c)).reservations
    .filter((r) => r.network === net)
    .map((r) => `${r.containerID} ${r.address}`)
    .sort();
}

const LIST_KEYS = ["network", "address", "containerID", "ifname", "reservedAt", "node"];
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

define("list, show and usage: the whole pool of every node, text and JSON", async ({ cluster, root }) => {
  const net = newNet();
  const ranges = [[{ subnet: "10.230.0.0/24" }], [{ subnet: "fd10:230::/120" }]];
  const nodes = ["n-a", "n-b", "n-c"].map((n) => simNode(root, n));
  const store = { blockSize: 28, blockSize6: 124 };
  const confs = nodes.map((n) => etcdConf(cluster, n, { name: net, ranges, store }));
  const got = new Map<string, { node: string; ips: string[] }>();
  await Promise.all(
    nodes.flatMap((n, i) =>
      Array.from({ length: 3 + i }, async (_, k) => {
        const id = `${n.name}-p${k}`;
        got.set(id, { node: n.name, ips: await add(confs[i], id) });
      }),
    ),
  );
  // Any node's config shows the whole pool: here the last node's, as a .conflist.
  const conflist = confFile(
    root,
    { cniVersion: "1.1.0", name: net, plugins: [{ ...confs[2], name: undefined, cniVersion: undefined }] },
    ".conflist",
  );
  const rows = await okJson("list", "--conf", conflist);
  assert.is(rows.length, 2 * got.size, "every node's reservations, both families");
  for (const r of rows) {
    assert.equal(Object.keys(r), LIST_KEYS);
    assert.is(r.network, net);
    assert.is(r.ifname, "eth0");
    assert.match(String(r.reservedAt), RFC3339);
    const want = got.get(String(r.containerID));
    assert.ok(want, `${r.containerID} was added`);
    assert.is(r.node, want?.node);
    assert.ok(want?.ips.includes(String(r.address)), `${r.address} is what ADD answered`);
  }
  const text = await ok("list", "--conf", conflist);
  const lines = text.trimEnd().split("\n");
  assert.match(lines[0] ?? "", /^NETWORK\s+ADDRESS\s+CONTAINER ID\s+IFNAME\s+RESERVED AT\s+NODE$/);
  assert.is(lines.length, 1 + rows.length);
  const first = rows[0]!;
  assert.ok(
    lines.some(
      (l) =>
        l.split(/\s+/).join(" ") ===
        `${net} ${first.address} ${first.containerID} eth0 ${first.reservedAt} ${first.node}`,
    ),
    text,
  );
  // Filters: a node, a container, an address.
  const ofB = await okJson("list", "--conf", conflist, "--node", "n-b");
  assert.equal(new Set(ofB.map((r) => r.node)), new Set(["n-b"]));
  assert.is(ofB.length, 2 * 4);
  const one = await okJson("list", "--conf", conflist, "--container-id", "n-a-p1");
  assert.equal(one.map((r) => r.address).sort(), [...(got.get("n-a-p1")?.ips ?? [])].sort());
  const v4 = got.get("n-c-p4")?.ips[0] ?? "";
  const byAddr = await okJson("list", "--conf", conflist, "--address", v4);
  assert.equal(
    byAddr.map((r) => [r.containerID, r.node]),
    [["n-c-p4", "n-c"]],
  );
  // show: the holder and its node, from a node that does not hold it.
  const shown = await okJson("show", v4, "--conf", confFile(root, confs[0]));
  assert.is(shown.length, 1);
  assert.is(shown[0]?.state, "reserved");
  assert.is(shown[0]?.containerID, "n-c-p4");
  assert.is(shown[0]?.node, "n-c");
  assert.is(shown[0]?.rangeSet, "10.230.0.1-10.230.0.254");
  const showText = await ok("show", v4, "--conf", confFile(root, confs[0]));
  assert.match(showText, /^state\s+reserved$/m);
  assert.match(showText, /^node\s+n-c$/m);
  assert.match((await okJson("show", "10.230.0.1", "--conf", conflist))[0]?.state as string, /^gateway$/);
  assert.is((await okJson("show", "10.230.0.250", "--conf", conflist))[0]?.state, "free");
  assert.is((await okJson("show", "10.99.0.1", "--conf", conflist))[0]?.state, "outside");
  // usage: per range set the pool, then each node's blocks.
  const u = await okJson<Record<string, unknown>[]>("usage", "--conf", conflist);
  for (const r of u)
    assert.equal(Object.keys(r), ["network", "rangeSet", "size", "reserved", "free", "node", "blocks"]);
  const v4Rows = u.filter((r) => r.rangeSet === "10.230.0.1-10.230.0.254");
  const pool = v4Rows.find((r) => r.node === null);
  assert.equal(pool, {
    network: net,
    rangeSet: "10.230.0.1-10.230.0.254",
    size: 253, // .1 is the gateway
    reserved: got.size,
    free: 253 - got.size,
    node: null,
    blocks: 3,
  });
  for (const [i, n] of nodes.entries()) {
    const r = v4Rows.find((x) => x.node === n.name);
    // One /28 each (16 addresses, less the gateway in the first block), 3, 4 and 5 reserved.
    assert.is(r?.blocks, 1, `${n.name}: ${JSON.stringify(r)}`);
    assert.is(r?.reserved, 3 + i);
    assert.is(Number(r?.free), Number(r?.size) - (3 + i));
  }
  const v6Pool = u.find((r) => r.rangeSet === "fd10:230::1-fd10:230::ff" && r.node === null);
  assert.is(v6Pool?.reserved, got.size);
  const usageText = await ok("usage", "--conf", conflist);
  assert.match(usageText, /^NETWORK\s+RANGE SET\s+NODE\s+BLOCKS\s+SIZE\s+RESERVED\s+FREE\s+EXCLUDED$/m);
  assert.match(
    usageText,
    new RegExp(`^${net}\\s+10\\.230\\.0\\.1-10\\.230\\.0\\.254\\s+\\(all\\)\\s+3\\s+253\\s+12\\s+241\\s+1$`, "m"),
  );
  assert.match(
    usageText,
    new RegExp(`^${net}\\s+10\\.230\\.0\\.1-10\\.230\\.0\\.254\\s+n-b\\s+1\\s+\\d+\\s+4\\s+\\d+\\s+-$`, "m"),
  );
  // On a local-store config, --node is a usage error.
  const local = confFile(root, {
    cniVersion: "1.1.0",
    name: "plain",
    type: "bridge",
    ipam: { type: "berth-ipam", dataDir: root, subnet: "10.1.0.0/24" },
  });
  await fails(2, "list", "--conf", local, "--node", "n-a");
  await assertSound(cluster, nodes, [net]);
});

define(
  "release and gc act on attachments: by address, by container on any node, gc only the config's node",
  async ({ cluster, root }) => {
    const net = newNet();
    const ranges = [[{ subnet: "10.231.0.0/24" }], [{ subnet: "fd10:231::/120" }]];
    const a = simNode(root, "rel-a");
    const b = simNode(root, "rel-b");
    const confA = etcdConf(cluster, a, { name: net, ranges, store: { blockSize: 28, blockSize6: 124 } });
    const confB = etcdConf(cluster, b, { name: net, ranges, store: { blockSize: 28, blockSize6: 124 } });
    const fileA = confFile(root, confA);
    const fileB = confFile(root, confB);
    const had = new Map<string, string[]>();
    for (const id of ["a1", "a2", "a3", "a4"]) had.set(id, await add(confA, id));
    for (const id of ["b1", "b2"]) had.set(id, await add(confB, id));
    const before = await held(cluster, net);
    // Dry runs change nothing, and print what would go.
    const dry = await okJson("release", "--conf", fileA, "--container-id", "b1", "--dry-run");
    assert.equal(
      dry.map((r) => [r.containerID, r.node]),
      [
        ["b1", "rel-b"],
        ["b1", "rel-b"],
      ],
    );
    assert.match(
      await ok("release", "--conf", fileA, "--container-id", "b1", "--dry-run"),
      /^would release 2 addresses \(dry run, nothing changed\):/,
    );
    assert.equal(await held(cluster, net), before, "a dry run changes nothing");
    // From node a's config, release node b's container: it is an attachment of the pool.
    const freed = await okJson("release", "--conf", fileA, "--container-id", "b1");
    assert.equal(freed.map((r) => String(r.address)).sort(), [...(had.get("b1") ?? [])].sort());
    assert.equal(Object.keys(freed[0] ?? {}), LIST_KEYS);
    // One address of a dual-stack attachment: the other stays, and DEL still frees it.
    const [a1v4, a1v6] = had.get("a1") ?? [];
    const text = await ok("release", a1v4 ?? "", "--conf", fileB);
    assert.match(text, /^released 1 address:\n/);
    assert.match(text, /rel-a$/m);
    assert.equal(
      (await held(cluster, net)).filter((l) => l.startsWith("a1 ")),
      [`a1 ${a1v6}`],
    );
    await fails(1, "release", a1v4 ?? "", "--conf", fileB);
    const unknown = await fails(1, "release", "--conf", fileA, "--container-id", "nobody");
    assert.match(unknown.stderr, /no reservation for container nobody/);
    // gc --keep from node a's config: node a's attachments only; node b's b2 is not in the list and stays.
    const keep = join(root, `keep-${net}.json`);
    writeFileSync(keep, JSON.stringify([{ containerID: "a2", ifname: "eth0" }]));
    const wouldGc = await okJson("gc", "--conf", fileA, "--keep", keep, "--dry-run");
    assert.equal([...new Set(wouldGc.map((r) => r.containerID))].sort(), ["a1", "a3", "a4"]);
    assert.equal(await okJson("gc", "--conf", fileA, "--keep", keep), wouldGc);
    assert.equal(
      (await held(cluster, net)).map((l) => l.split(" ")[0]),
      ["a2", "a2", "b2", "b2"],
    );
    // The freed addresses can be handed out again: ask for one of each.
    const a3v4 = had.get("a3")?.[0] ?? "";
    const b1v4 = had.get("b1")?.[0] ?? "";
    assert.equal((await add(confA, "a5", `IP=${a3v4}`))[0], a3v4);
    assert.equal((await add(confB, "b3", `IP=${b1v4}`))[0], b1v4);
    await assertSound(cluster, [a, b], [net]);
  },
);

define(
  "verify: clean, then each invariant broken on purpose, then --repair in guarded txns",
  async ({ cluster, root }) => {
    const net = newNet();
    const ranges = [[{ subnet: "10.232.0.0/24" }]];
    const n = simNode(root, "ver-a");
    // A prefix of its own: damage left by a failure here must not show in the other tests' checks.
    const prefix = "/verify-cli";
    const conf = etcdConf(cluster, n, { name: net, ranges, store: { prefix } });
    const file = confFile(root, conf);
    const [p1] = await add(conf, "p1");
    const [p2] = await add(conf, "p2");
    await add(conf, "p3");
    assert.is(await ok("verify", "--conf", file), `${net}: ok (3 reservations)\n`);
    const clean = await okJson("verify", "--conf", file);
    assert.equal(clean, [{ network: net, state: "ok", reservations: 3, problems: [], repaired: [] }]);
    const l = layout(prefix);
    const ipKey = (ip: string) => keys.ip(l, net, ip);
    const attKey = (id: string) => keys.attachment(l, "ver-a", net, id, "eth0");
    // The node's one /26: where its hash put it.
    const base = Number(p1?.split(".")[3]) & ~63;
    const blockKey = keys.block(l, net, `10.232.0.${base}-26`);
    const stray = `10.232.0.${base + 40}`;
    const get = async (key: string) => (await cluster.etcdctl(["get", key, "--print-value-only"])).trim();
    const put = (key: string, value: string) => cluster.etcdctl(["put", key, value]);
    const bitOf = async (ip: string): Promise<boolean> => {
      const b = JSON.parse(await get(blockKey)) as { map: string };
      const off = Number(ip.split(".")[3]) - base;
      return (Buffer.from(b.map, "base64")[off >> 3]! & (0x80 >> (off & 7))) !== 0;
    };
    const setBit = async (ip: string, on: boolean) => {
      const b = JSON.parse(await get(blockKey)) as { map: string };
      const m = Buffer.from(b.map, "base64");
      const off = Number(ip.split(".")[3]) - base;
      m[off >> 3] = on ? m[off >> 3]! | (0x80 >> (off & 7)) : m[off >> 3]! & ~(0x80 >> (off & 7));
      await put(blockKey, JSON.stringify({ ...b, map: m.toString("base64") }));
    };
    const broken = async (what: RegExp) => {
      const r = await fails(1, "verify", "--conf", file);
      assert.match(r.stderr, new RegExp(`^berth-ipam: verify: 1 problem in ${net}\\n$`));
      assert.match(r.stdout, what);
      assert.match(r.stdout, /\(--repair fixes it\)/);
      const j = JSON.parse((await berth("verify", "--conf", file, "--json")).stdout) as {
        problems: { repairable: boolean }[];
      }[];
      assert.equal(
        j[0]?.problems.map((p) => p.repairable),
        [true],
      );
    };
    const repaired = async (what: RegExp) => {
      const out = await ok("verify", "--conf", file, "--repair");
      assert.match(out, what);
      assert.match(out, new RegExp(`^${net}: ok \\(\\d+ reservations?\\)$`, "m"));
      assert.is(await ok("verify", "--conf", file).then((t) => t.endsWith("\n")), true);
    };

    // 1. An address key without its attachment: the attachment is recreated (the address stays held).
    const att1 = await get(attKey("p1"));
    await cluster.etcdctl(["del", attKey("p1")]);
    await broken(new RegExp(`${ipKey(p1!)}: its attachment .* is missing`));
    await repaired(/repaired: recreated attachment/);
    assert.equal(
      JSON.parse(await get(attKey("p1"))).ips.map((e: { ip: string }) => e.ip),
      JSON.parse(att1).ips.map((e: { ip: string }) => e.ip),
    );

    // 2. An attachment without its address key: the address key is recreated for it.
    const ip2 = await get(ipKey(p2!));
    await cluster.etcdctl(["del", ipKey(p2!)]);
    const r2 = await fails(1, "verify", "--conf", file);
    assert.match(r2.stdout, new RegExp(`${attKey("p2")}: address ${p2} has no key`));
    await repaired(/repaired: recreated .*ips\/.* for ver-a\/p2\/eth0/);
    assert.equal(JSON.parse(await get(ipKey(p2!))), JSON.parse(ip2));

    // 3. A block bit without address key or attachment: the bit is cleared.
    await setBit(stray, true);
    await broken(new RegExp(`bit for ${stray.replaceAll(".", "\\.")} is set but .* is missing`));
    await repaired(new RegExp(`repaired: cleared the bit of ${stray.replaceAll(".", "\\.")}`));
    assert.not.ok(await bitOf(stray));

    // 4. An address key (with its attachment) whose block bit is clear: the bit is set.
    await setBit(p1!, false);
    await broken(new RegExp(`${ipKey(p1!)}: its bit in block .* is clear`));
    await repaired(new RegExp(`repaired: set the bit of ${p1!.replaceAll(".", "\\.")}`));
    assert.ok(await bitOf(p1!));

    // Two indexes naming different holders need a person: reported, not repairable, left alone.
    const before = await get(ipKey(p2!));
    const p3Before = await get(attKey("p3"));
    await put(ipKey(p2!), JSON.stringify({ ...JSON.parse(before), containerID: "p3" }));
    const twoHolders = await fails(1, "verify", "--conf", file, "--repair");
    assert.match(twoHolders.stdout, /belongs to ver-a\/p3\/eth0/);
    assert.match(twoHolders.stdout, /does not list it$/m, "p3's attachment does not list it: not repairable");
    assert.not.match(twoHolders.stdout, /repaired:|--repair fixes it/);
    assert.is(await get(attKey("p3")), p3Before, "p3's attachment was left alone");
    await put(ipKey(p2!), before);
    assert.match(await ok("verify", "--conf", file), /ok \(3 reservations\)/);
    // After the repairs the node goes on as usual: its next ADD and a DEL work and the pool is sound.
    const [p4] = await add(conf, "p4");
    assert.not.ok([p1, p2].includes(p4), "no repaired address handed out again");
    assert.is((await run(conf, { command: "DEL", containerId: "p1" })).code, 0);
    await assertSound(cluster, [n], [net], prefix);
  },
);

define(
  "node remove: frees a dead node's blocks and attachments; its zombie with a stale cache gets nobody's address",
  async ({ cluster, root }) => {
    const net = newNet();
    const ranges = [[{ subnet: "10.233.0.0/26" }]]; // one block: whoever has it has the pool
    const lost = simNode(root, "lost");
    const live = simNode(root, "live");
    const lostConf = etcdConf(cluster, lost, { name: net, ranges });
    const liveConf = etcdConf(cluster, live, { name: net, ranges });
    const liveFile = confFile(root, liveConf);
    const had: string[] = [];
    for (const i of [1, 2, 3]) had.push(...(await add(lostConf, `l${i}`)));
    copyFileSync(join(lost.dir, net, CACHE_FILE), join(root, `stale-${net}`));
    assert.is((await run(liveConf, { command: "ADD", containerId: "v0" })).json?.code, 999, "the only block is lost's");
    // On a local-store network, or without --conf, node remove refuses.
    const local = confFile(root, {
      cniVersion: "1.1.0",
      name: "plainnet",
      type: "bridge",
      ipam: { type: "berth-ipam", dataDir: root, subnet: "10.1.0.0/24" },
    });
    const refused = await fails(1, "node", "remove", "lost", "--conf", local);
    assert.match(refused.stderr, /node remove works on the etcd store; network plainnet uses the local store/);
    await fails(2, "node", "remove", "lost", "--data-dir", root);
    const recover = await fails(1, "recover", "--conf", liveFile, "--from-cni-cache", root);
    assert.match(recover.stderr, /recover works on the local store; network .* uses etcd/);
    await fails(2, "node", "evict", "lost", "--conf", liveFile);
    // The dry run lists what would go and changes nothing.
    const dry = await okJson<Record<string, unknown>>("node", "remove", "lost", "--conf", liveFile, "--dry-run");
    assert.equal(dry.blocks, [`${net}/10.233.0.0-26`]);
    assert.equal((dry.released as { address: string }[]).map((r) => r.address).sort(), [...had].sort());
    assert.is((await held(cluster, net)).length, 3);
    const text = await ok("node", "remove", "lost", "--conf", liveFile);
    assert.match(
      text,
      new RegExp(
        `^removed node lost under /berth: freed 1 block and 3 addresses of 3 attachments\\nblocks fenced:\\n  ${net}/10\\.233\\.0\\.0-26\\n`,
      ),
    );
    assert.is((await held(cluster, net)).length, 0);
    assert.is(
      await ok("node", "remove", "lost", "--conf", liveFile),
      "node lost holds nothing under /berth\n",
      "idempotent",
    );
    // The freed addresses go to the live node at once.
    const taken: string[] = [];
    for (const i of [1, 2, 3]) taken.push(...(await add(liveConf, `v${i}`)));
    assert.equal(taken.sort(), [...had].sort());
    // The zombie: lost's process comes back with its stale cache. Its compare fails; it must not
    // hand out any address that live now holds.
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(lost.dir, net, `${CACHE_FILE}${suffix}`), { force: true });
    copyFileSync(join(root, `stale-${net}`), join(lost.dir, net, CACHE_FILE));
    const zombie = await run(lostConf, { command: "ADD", containerId: "l4" });
    if (zombie.code === 0)
      assert.not.ok(
        ips(zombie).some((ip) => taken.includes(ip)),
        `the zombie got a live address: ${zombie.stdout}`,
      );
    else assert.is(zombie.json?.code, 999, zombie.stdout);
    assert.not.ok(
      (await held(cluster, net)).some((l) => l.startsWith("l")),
      "the zombie holds nothing",
    );
    await assertSound(cluster, [lost, live], [net]);
  },
);

define("node remove of a node still adding, the zombie claiming again: no address twice", async ({ cluster, root }) => {
  const net = newNet();
  const ranges = [[{ subnet: "10.234.0.0/24" }]];
  const zombie = simNode(root, "zombie");
  const other = simNode(root, "other");
  const zConf = etcdConf(cluster, zombie, { name: net, ranges, store: { blockSize: 27 } });
  const oConf = etcdConf(cluster, other, { name: net, ranges, store: { blockSize: 27 } });
  const file = confFile(root, oConf);
  for (const i of [0, 1, 2, 3]) await add(zConf, `z${i}`);
  // The zombie keeps adding while it is removed; the other node adds too.
  const zAdds = Array.from({ length: 12 }, (_, i) => run(zConf, { command: "ADD", containerId: `zz${i}` }));
  const oAdds = Array.from({ length: 12 }, (_, i) => run(oConf, { command: "ADD", containerId: `o${i}` }));
  const removal = ok("node", "remove", "zombie", "--conf", file);
  const [outs, oOuts, text] = await Promise.all([Promise.all(zAdds), Promise.all(oAdds), removal]);
  assert.match(text, /^removed node zombie under \/berth: freed/);
  for (const o of oOuts) assert.is(o.code, 0, o.stdout);
  for (const o of outs) assert.ok(o.code === 0 || o.json?.code !== undefined, o.stdout);
  const p = await checkPool(cluster);
  assert.equal(p.duplicates, [], "no address held twice");
  assert.equal(p.problems, []);
  const addrs = p.reservations.filter((r) => r.network === net).map((r) => r.address);
  assert.is(new Set(addrs).size, addrs.length);
  await assertSound(cluster, [other], [net]);
});

define(
  "migrate: local reservations into etcd, all or nothing, idempotent; then no pod gets a migrated address",
  async ({ cluster, root }) => {
    const net = newNet();
    const m = simNode(root, "migrant");
    const others = [simNode(root, "nb-1"), simNode(root, "nb-2")];
    const ranges = [[{ subnet: "10.235.0.0/24" }]];
    const local = localConf(m, net, ranges);
    const old: string[] = [];
    for (const i of [1, 2, 3, 4, 5]) old.push(...(await add(local, `p${i}`)));
    const localList = await okJson("list", "--data-dir", m.dir, "--network", net);
    const mConf = etcdConf(cluster, m, { name: net, ranges });
    const file = confFile(root, mConf);
    // On the local config itself, migrate refuses; the dry run copies nothing.
    const refused = await fails(1, "migrate", "--conf", confFile(root, local));
    assert.match(refused.stderr, /migrate works on the etcd store; network .* uses the local store/);
    const dry = await okJson<Record<string, unknown>>("migrate", "--conf", file, "--dry-run");
    assert.is((dry.copied as unknown[]).length, 5);
    assert.is(dry.dryRun, true);
    assert.equal(await held(cluster, net), []);
    const text = await ok("migrate", "--conf", file);
    assert.match(text, new RegExp(`^copied 5 reservations of network ${net} into etcd as node migrant:\\nNETWORK`));
    assert.equal((await held(cluster, net)).map((l) => l.split(" ")[1]).sort(), [...old].sort());
    const since = (rows: Record<string, unknown>[]) => rows.map((r) => `${r.address} ${r.reservedAt}`).sort();
    assert.equal(
      since(await okJson("list", "--conf", file)),
      since(localList),
      "each reservation keeps the time the local store recorded",
    );
    const twice = await okJson<Record<string, unknown>>("migrate", "--conf", file);
    assert.equal(twice.copied, []);
    assert.is((twice.present as unknown[]).length, 5, "a second run copies nothing");
    assert.match(await ok("migrate", "--conf", file), /^nothing to copy/);
    // Switched to etcd: many ADDs on the migrating node and on two others; none gets a migrated address.
    const confs = [mConf, ...others.map((n) => etcdConf(cluster, n, { name: net, ranges }))];
    const outs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => run(confs[i % 3], { command: "ADD", containerId: `q${i}` })),
    );
    for (const o of outs) {
      assert.is(o.code, 0, o.stdout);
      for (const ip of ips(o)) assert.not.ok(old.includes(ip), `${ip} is a migrated pod's`);
    }
    // DEL of a migrated attachment through the etcd config frees it.
    assert.is((await run(mConf, { command: "DEL", containerId: "p1" })).code, 0);
    assert.not.ok((await held(cluster, net)).some((l) => l.startsWith("p1 ")));
    await assertSound(cluster, [m, ...others], [net]);
  },
);

define("migrate refuses any conflict and then copies nothing (not even the free ones)", async ({ cluster, root }) => {
  const net = newNet();
  const ranges = [[{ subnet: "10.236.0.0/24" }]];
  const holder = simNode(root, "holder");
  const m = simNode(root, "late");
  // Locally, late holds two addresses; in etcd, holder has already taken the first of them.
  const local = {
    cniVersion: "1.1.0",
    name: net,
    type: "bridge",
    ipam: { type: "berth-ipam", dataDir: m.dir, ranges },
  };
  const [l1] = await add(local, "c1");
  const [l2] = await add(local, "c2");
  const [taken] = await add(etcdConf(cluster, holder, { name: net, ranges }), "h1", `IP=${l1}`);
  assert.is(taken, l1);
  const file = confFile(root, etcdConf(cluster, m, { name: net, ranges }));
  const before = await held(cluster, net);
  const r = await fails(1, "migrate", "--conf", file);
  assert.match(r.stderr, /1 address of network .* held otherwise in etcd; nothing copied/);
  assert.match(r.stdout, new RegExp(`^${taken!.replaceAll(".", "\\.")}\\s+c1\\s+eth0\\s+holder/h1/eth0$`, "m"));
  const j = await berth("migrate", "--conf", file, "--json");
  assert.is(j.code, 1);
  assert.equal((JSON.parse(j.stdout) as { conflicts: unknown[] }).conflicts, [
    { address: taken, containerID: "c1", ifname: "eth0", holder: "holder/h1/eth0" },
  ]);
  assert.equal(await held(cluster, net), before, `${l2} was not copied either: nothing changed`);
  await assertSound(cluster, [holder], [net]);
});

define(
  "changes while a storm of ADD/DEL runs on other nodes: release, gc, repair, node remove stay consistent",
  async ({ cluster, root }) => {
    const net = newNet();
    const ranges = [[{ subnet: "10.237.0.0/22" }], [{ subnet: "fd10:237::/64" }]];
    const stormers = ["st-a", "st-b"].map((n) => simNode(root, n));
    const victim = simNode(root, "victim");
    const vConf = etcdConf(cluster, victim, { name: net, ranges });
    const file = confFile(root, vConf);
    for (let i = 0; i < 8; i++) await add(vConf, `v${i}`);
    let stop = false;
    const ledger = new Map<string, string[]>();
    const storm = stormers.map(async (n) => {
      const conf = etcdConf(cluster, n, { name: net, ranges });
      for (let i = 0; !stop; i++) {
        const id = `${n.name}-${i}`;
        const a = await run(conf, { command: "ADD", containerId: id });
        assert.is(a.code, 0, a.stdout);
        ledger.set(id, ips(a));
        if (i % 2 === 0) {
          assert.is((await run(conf, { command: "DEL", containerId: id })).code, 0);
          ledger.delete(id);
        }
      }
    });
    try {
      await ok("release", "--conf", file, "--container-id", "v0");
      const [v1] = (await okJson("list", "--conf", file, "--container-id", "v1")).map((r) => String(r.address));
      await ok("release", v1 ?? "", "--conf", file);
      const keep = join(root, `keep-${net}.json`);
      writeFileSync(keep, JSON.stringify([2, 3, 4].map((i) => ({ containerID: `v${i}`, ifname: "eth0" }))));
      await ok("gc", "--conf", file, "--keep", keep);
      await ok("verify", "--conf", file, "--repair");
      await ok("node", "remove", "victim", "--conf", file);
    } finally {
      stop = true;
      await Promise.all(storm);
    }
    const p = await checkPool(cluster);
    assert.equal(p.duplicates, []);
    assert.equal(p.problems, [], "verify finds nothing");
    const have = p.reservations.filter((r) => r.network === net);
    assert.not.ok(
      have.some((r) => r.node === "victim"),
      "nothing of the removed node is left",
    );
    for (const [id, want] of ledger) {
      assert.equal(
        have
          .filter((r) => r.containerID === id)
          .map((r) => r.address)
          .sort(),
        [...want].sort(),
        `${id} answered and is held`,
      );
    }
    assert.ok(ledger.size > 0, "the storm ran");
    await assertSound(cluster, stormers, [net]);
  },
);

define(
  "auth: a password user limited to the prefix; failures are one line naming the endpoint, never the password",
  async ({ root }) => {
    const c = await startCluster();
    try {
      const auth = await enableAuth(c, "berth-op", "/berth");
      const n = simNode(root, "authn");
      const net = newNet();
      const ranges = [[{ subnet: "10.238.0.0/24" }]];
      const store = { auth: { username: auth.username, passwordFile: auth.passwordFile } };
      const conf = etcdConf(c, n, { name: net, ranges, store });
      await add(conf, "s1");
      const file = confFile(root, conf);
      const outs: ExecResult[] = [];
      const rows = await okJson("list", "--conf", file);
      assert.equal(
        rows.map((r) => r.containerID),
        ["s1"],
      );
      assert.match(await ok("verify", "--conf", file), /ok \(1 reservation\)/);
      // A prefix the role does not cover: denied, one line, the endpoint named.
      const outside = confFile(root, etcdConf(c, n, { name: net, ranges, store: { ...store, prefix: "/other" } }));
      const denied = await fails(1, "list", "--conf", outside);
      assert.match(denied.stderr, /etcd at http:\/\/127\.0\.0\.1:\d+: .*permission denied/);
      outs.push(denied);
      // A wrong password.
      const wrongPw = join(root, `wrong-pw-${net}`);
      writeFileSync(wrongPw, "not-the-password\n");
      const wrong = confFile(
        root,
        etcdConf(c, n, { name: net, ranges, store: { auth: { username: auth.username, passwordFile: wrongPw } } }),
      );
      for (const args of [["list"], ["usage"], ["node", "remove", "x"], ["release", "--container-id", "s1"]]) {
        const r = await fails(1, ...args, "--conf", wrong);
        assert.match(r.stderr, /authentication failed/);
        assert.match(r.stderr, /127\.0\.0\.1:\d+/, "names the endpoint");
        outs.push(r);
      }
      // etcd down: every member stopped.
      for (const i of [0, 1, 2]) await c.kill(i);
      const down = await fails(1, "list", "--conf", file);
      assert.match(down.stderr, /^berth-ipam: network .*: etcd unavailable .*http:\/\/127\.0\.0\.1:\d+/);
      outs.push(down);
      for (const o of outs) {
        for (const secret of [auth.password, "not-the-password", c.rootPassword ?? "-"]) {
          assert.not.ok(o.stderr.includes(secret), `no secret on stderr: ${o.stderr}`);
          assert.not.ok(o.stdout.includes(secret), "no secret on stdout");
        }
      }
    } finally {
      await c.stop();
    }
  },
);

define("TLS with client certificates: list and verify over https", async ({ root }) => {
  const c = await startCluster({ tls: true, clientCertAuth: true });
  try {
    const n = simNode(root, "tlsn");
    const net = newNet();
    const conf = etcdConf(c, n, { name: net, ranges: [[{ subnet: "10.239.0.0/24" }]] });
    await add(conf, "t1");
    const file = confFile(root, conf);
    assert.equal(
      (await okJson("list", "--conf", file)).map((r) => r.containerID),
      ["t1"],
    );
    assert.match(await ok("verify", "--conf", file), /ok \(1 reservation\)/);
    const noCert = confFile(
      root,
      etcdConf(c, n, { name: net, ranges: [[{ subnet: "10.239.0.0/24" }]], store: { tls: { ca: c.tls?.ca } } }),
    );
    const r = await fails(1, "list", "--conf", noCert);
    assert.match(r.stderr, /https:\/\/127\.0\.0\.1:\d+/);
  } finally {
    await c.stop();
  }
});

test.run();
