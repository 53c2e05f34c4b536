// The etcd store behind the Store seam, in process, against a real 3-member etcd: request counts
// per ADD, DEL and block claim; racing claims; an address requested in another node's block; a
// lost cache; the grace period; a GC beyond etcd's 128 operations per txn; verify, node removal
// with fencing, migration from the local store, usage. Several simulated nodes are several stores
// with their own `node` and dataDir.
import { clusterSuite, type ClusterCtx } from "../helpers/etcd-suite.ts";
import * as assert from "uvu/assert";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { formatIp, parseIp, type Ip } from "../../cni/ip.ts";
import { canonicalizeRanges, rangeSet, type RangeSet } from "../../cni/range-set.ts";
import { createSqliteStore } from "../../cni/store/sqlite.ts";
import { adminClient, migrateLocal, removeNode, usage, verify } from "../../cni/store/etcd/admin.ts";
import { CACHE_FILE } from "../../cni/store/etcd/cache.ts";
import { decodeBlock, keys, layout } from "../../cni/store/etcd/schema.ts";
import { BLOCK_GRACE_MS, openEtcdStore, type EtcdStore } from "../../cni/store/etcd/store.ts";
import { needEtcd } from "../helpers/etcd-cluster.ts";
import { cacheDisagreements, checkPool, storeConfig } from "../helpers/etcd-pool.ts";

type Ctx = ClusterCtx;
const { test, define } = clusterSuite("etcd store", "store", needEtcd());

const setOf = (subnet: string): RangeSet => rangeSet(canonicalizeRanges([{ subnet }]));
let nets = 0;
/** A fresh network (its own pool) for each test, so tests do not see each other's blocks. */
const newNet = () => `net${++nets}`;

type Node = { name: string; dir: string };
const node = (ctx: Ctx, name: string): Node => ({ name, dir: mkdtempSync(join(ctx.root, `${name}-`)) });

function open(ctx: Ctx, n: Node, network: string, extra: Record<string, unknown> = {}, now?: () => number): EtcdStore {
  return openEtcdStore({
    config: storeConfig(ctx.cluster, { node: n.name, ...extra }),
    network,
    dataDir: n.dir,
    budgetMs: 5000,
    requestTimeoutMs: 2000,
    now,
  });
}

type Added = { ips: string[]; requests: number; conflicts: number };

/** What the ADD command does: release what the attachment held, then one address per set. */
async function add(
  ctx: Ctx,
  n: Node,
  network: string,
  sets: RangeSet[],
  id: string,
  opts: { want?: Ip; now?: () => number; extra?: Record<string, unknown> } = {},
): Promise<Added> {
  const s = open(ctx, n, network, opts.extra, opts.now);
  try {
    const att = { containerId: id, ifname: "eth0" };
    const ips = await s.transaction(async () => {
      const held = await s.releaseById(att);
      const out: string[] = [];
      for (const set of sets) {
        const keep = opts.want ?? held.find((r) => r.rangeSet === set.key)?.ip;
        let ip: Ip | undefined = keep;
        if (!ip || !(await s.reserve({ ip, ...att, rangeSet: set.key }))) {
          if (opts.want) throw new Error(`requested ${formatIp(opts.want)} is taken`);
          ip = await s.nextFree(set);
          if (!ip) throw new Error("exhausted");
          if (!(await s.reserve({ ip, ...att, rangeSet: set.key }))) throw new Error("lost the address");
        }
        out.push(formatIp(ip));
      }
      return out;
    });
    const st = s.stats();
    return { ips, requests: st.range + st.txn + st.auth, conflicts: st.conflicts };
  } finally {
    s.close();
  }
}

async function del(ctx: Ctx, n: Node, network: string, id: string): Promise<{ released: string[]; requests: number }> {
  const s = open(ctx, n, network);
  try {
    const r = await s.transaction(() => s.releaseById({ containerId: id, ifname: "eth0" }));
    const st = s.stats();
    return { released: r.map((x) => formatIp(x.ip)), requests: st.range + st.txn };
  } finally {
    s.close();
  }
}

async function assertSound(ctx: Ctx, nodes: Node[], networks: string[]): Promise<void> {
  const p = await checkPool(ctx.cluster);
  assert.equal(p.duplicates, [], "no address held twice");
  assert.equal(p.problems, [], "verify finds nothing");
  for (const n of nodes) {
    for (const net of networks)
      assert.equal(await cacheDisagreements(ctx.cluster, join(n.dir, net)), [], `${n.name}'s cache`);
  }
}

define("a common ADD and a DEL are one etcd request each; a dual-stack block claim is two", async (ctx) => {
  const net = newNet();
  const a = node(ctx, "worker-a");
  const sets = [setOf("10.20.0.0/16"), setOf("fd20::/64")];
  const first = await add(ctx, a, net, sets, "c0");
  assert.is(first.requests, 2, "read the pool's blocks, then claim a block of each family with the addresses");
  for (let i = 1; i < 10; i++) assert.is((await add(ctx, a, net, sets, `c${i}`)).requests, 1, `ADD ${i}`);
  const gone = await del(ctx, a, net, "c3");
  assert.is(gone.requests, 1);
  assert.is(gone.released.length, 2);
  assert.is((await del(ctx, a, net, "c3")).requests, 1, "a DEL of nothing is one request too, and succeeds");
  const again = await add(ctx, a, net, sets, "c5");
  assert.is(again.requests, 1, "a repeated ADD");
  await assertSound(ctx, [a], [net]);
});

define("a repeated ADD keeps its addresses, also after the node lost its cache", async (ctx) => {
  const net = newNet();
  const a = node(ctx, "worker-a");
  const sets = [setOf("10.21.0.0/16")];
  const first = await add(ctx, a, net, sets, "c1");
  await add(ctx, a, net, sets, "c2");
  assert.equal((await add(ctx, a, net, sets, "c1")).ips, first.ips);
  rmSync(join(a.dir, net, CACHE_FILE));
  const again = await add(ctx, a, net, sets, "c1");
  assert.equal(again.ips, first.ips, "etcd's attachment key revealed the earlier ADD");
  assert.ok(again.conflicts >= 1, "found through a failed compare, not a scan");
  const fresh = await add(ctx, a, net, sets, "c3");
  assert.ok(!fresh.ips.includes(first.ips[0] ?? ""), "the new attachment gets another address");
  await assertSound(ctx, [a], [net]);
});

define("nodes claiming blocks at once: no block twice, each claim within 3 requests", async (ctx) => {
  const net = newNet();
  // 8 blocks of /26 for 8 nodes: their hash points collide, so claims race for the same blocks.
  const sets = [setOf("10.22.0.0/23")];
  const nodes = Array.from({ length: 8 }, (_, i) => node(ctx, `racer-${i}`));
  const results = await Promise.all(nodes.map((n, i) => add(ctx, n, net, sets, `c${i}`)));
  const ips = results.flatMap((r) => r.ips);
  assert.is(new Set(ips).size, 8, "8 distinct addresses");
  const maxRequests = Math.max(...results.map((r) => r.requests));
  // Read the blocks, claim; a claim that lost the race for the new pool's record retries once.
  assert.ok(maxRequests <= 3, `claims took ${JSON.stringify(results.map((r) => r.requests))} requests`);
  const client = adminClient(storeConfig(ctx.cluster));
  try {
    const u = (await usage(client, "/berth")).find((x) => x.network === net)!;
    assert.is(u.blocks, 8);
    assert.equal(
      u.nodes.map((x) => x.blocks),
      Array(8).fill(1),
      "one block per node",
    );
  } finally {
    client.close();
  }
  const calm = await Promise.all(nodes.map((n, i) => add(ctx, n, net, sets, `d${i}`)));
  assert.ok(
    calm.every((r) => r.requests === 1),
    "afterwards each node allocates in its own block: no contention",
  );
  await assertSound(ctx, nodes, [net]);
});

define("an address requested in another node's block: taken there, and its owner notices", async (ctx) => {
  const net = newNet();
  const sets = [setOf("10.23.0.0/24")];
  const a = node(ctx, "owner");
  const b = node(ctx, "requester");
  const first = await add(ctx, a, net, sets, "a1");
  const ip = parseIp(first.ips[0]!)!;
  const wanted: Ip = { family: 4, value: ip.value + 1n };
  const got = await add(ctx, b, net, sets, "b1", { want: wanted });
  assert.equal(got.ips, [formatIp(wanted)]);
  const client = adminClient(storeConfig(ctx.cluster));
  try {
    const u = (await usage(client, "/berth")).find((x) => x.network === net)!;
    assert.equal(
      u.nodes.map((x) => x.node),
      ["owner"],
      "no block for the requester: the owner's block holds the bit",
    );
  } finally {
    client.close();
  }
  const next = await add(ctx, a, net, sets, "a2");
  assert.is(next.conflicts, 1, "the owner's cached block was stale: one lost compare, then the fresh block");
  assert.is.not(next.ips[0], formatIp(wanted));
  try {
    await add(ctx, a, net, sets, "a3", { want: wanted });
    assert.unreachable("handed out twice");
  } catch (e) {
    assert.match((e as Error).message, /taken/);
  }
  await assertSound(ctx, [a, b], [net]);
});

define("an emptied block stays its node's for the grace period, then another node may take it", async (ctx) => {
  const net = newNet();
  const sets = [setOf("10.24.0.0/26")]; // one block
  const a = node(ctx, "first");
  const b = node(ctx, "second");
  await add(ctx, a, net, sets, "a1");
  await del(ctx, a, net, "a1");
  try {
    await add(ctx, b, net, sets, "b1");
    assert.unreachable("took a block emptied a moment ago");
  } catch (e) {
    assert.match((e as Error).message, /exhausted/);
  }
  const later = () => Date.now() + BLOCK_GRACE_MS + 1000;
  const got = await add(ctx, b, net, sets, "b1", { now: later });
  assert.is(got.ips.length, 1);
  const client = adminClient(storeConfig(ctx.cluster));
  try {
    const kv = (await client.range({ key: keys.block(layout("/berth"), net, "10.24.0.0-26") })).kvs[0]!;
    const blk = decodeBlock(kv.key, kv.value);
    assert.is(blk.node, "second");
    assert.is(blk.epoch, 2, "changing hands raised the epoch");
  } finally {
    client.close();
  }
  const back = await add(ctx, a, net, sets, "a2").catch((e: Error) => e);
  assert.instance(back, Error, "the first node no longer allocates there");
  await assertSound(ctx, [a, b], [net]);
});

define("a release of more than etcd's 128 operations commits in consistent steps", async (ctx) => {
  const net = newNet();
  const sets = [setOf("10.25.0.0/22"), setOf("fd25::/64")];
  const a = node(ctx, "gc-node");
  for (let i = 0; i < 70; i++) await add(ctx, a, net, sets, `c${i}`);
  const s = open(ctx, a, net);
  try {
    const released = await s.transaction(async () => {
      let n = 0;
      for (const att of await s.listAttachments()) n += (await s.releaseById(att)).length;
      return n;
    });
    assert.is(released, 140);
    assert.ok(s.stats().txn >= 3, "one listing and at least two parts");
  } finally {
    s.close();
  }
  const p = await checkPool(ctx.cluster);
  assert.is(p.reservations.filter((r) => r.network === net).length, 0);
  await assertSound(ctx, [a], [net]);
});

define("verify finds each broken invariant", async (ctx) => {
  // A prefix of its own: the damage done here must not show in the other tests' checks.
  const prefix = "/verify-test";
  const net = newNet();
  const a = node(ctx, "verify-node");
  const first = await add(ctx, a, net, [setOf("10.26.0.0/24")], "c1", { extra: { prefix } });
  const l = layout(prefix);
  const client = adminClient(storeConfig(ctx.cluster, { prefix }));
  try {
    assert.equal(await verify(client, prefix), []);
    const inBlock = formatIp({ family: 4, value: parseIp(first.ips[0]!)!.value + 1n });
    const ipKey = keys.ip(l, net, inBlock);
    await ctx.cluster.etcdctl([
      "put",
      ipKey,
      JSON.stringify({ node: "x", containerID: "ghost", ifname: "eth0", rangeSet: "", reservedAt: "" }),
    ]);
    const found = (await verify(client, prefix)).map((p) => `${p.key}: ${p.problem}`);
    assert.ok(
      found.some((p) => p.includes(`${ipKey}: its attachment`) && p.includes("missing")),
      found.join("\n"),
    );
    assert.ok(
      found.some((p) => p.includes(`${ipKey}: its bit in block`)),
      found.join("\n"),
    );
    await ctx.cluster.etcdctl(["del", ipKey]);
    const att = keys.attachment(l, "verify-node", net, "c1", "eth0");
    await ctx.cluster.etcdctl(["del", att]);
    const after = (await verify(client, prefix)).map((p) => `${p.key}: ${p.problem}`);
    assert.ok(
      after.some((p) => p.includes(`its attachment ${att} is missing`)),
      after.join("\n"),
    );
    await ctx.cluster.etcdctl(["put", keys.block(l, net, "10.26.0.128-26"), "{not json"]);
    const broken = (await verify(client, prefix)).map((p) => p.problem);
    assert.ok(
      broken.some((p) => p.includes("not JSON")),
      broken.join("\n"),
    );
  } finally {
    client.close();
  }
});

define(
  "node removal frees a dead node's blocks and addresses; its zombie's stale ADD fails its compare",
  async (ctx) => {
    const net = newNet();
    const sets = [setOf("10.27.0.0/26"), setOf("fd27::/122")]; // one block each: whoever has it has all
    const dead = node(ctx, "dead");
    const other = node(ctx, "alive");
    const held = await add(ctx, dead, net, sets, "d1");
    await add(ctx, dead, net, sets, "d2");
    const stale = join(ctx.root, `stale-${net}.db`);
    copyFileSync(join(dead.dir, net, CACHE_FILE), stale);
    const conf = storeConfig(ctx.cluster);
    const client = adminClient(conf);
    let r: Awaited<ReturnType<typeof removeNode>>;
    try {
      r = await removeNode(client, conf, "dead");
    } finally {
      client.close();
    }
    assert.is(r.blocksFenced, 2);
    assert.is(r.attachmentsReleased, 2);
    assert.is(r.addressesReleased, 4);
    // The pool is free again at once: another node gets the dead node's first addresses.
    const taken = await add(ctx, other, net, sets, "o1");
    assert.equal(taken.ips, held.ips);
    // The zombie comes back with its old cache: its compare fails and it sees the block is not its own.
    copyFileSync(stale, join(dead.dir, net, CACHE_FILE));
    rmSync(`${join(dead.dir, net, CACHE_FILE)}-wal`, { force: true });
    rmSync(`${join(dead.dir, net, CACHE_FILE)}-shm`, { force: true });
    const zombie = await add(ctx, dead, net, sets, "d3").catch((e: Error) => e);
    assert.instance(zombie, Error, "no block is free for the zombie, and it cannot write into the old one");
    const p = await checkPool(ctx.cluster);
    const mine = p.reservations.filter((x) => x.network === net);
    assert.equal(
      mine.map((x) => x.containerID),
      ["o1", "o1"],
    );
    await assertSound(ctx, [dead, other], [net]);
  },
);

define("migration copies a node's local reservations into etcd, once", async (ctx) => {
  const net = newNet();
  const n = node(ctx, "migrant");
  const set = setOf("10.28.0.0/24");
  const local = createSqliteStore(join(n.dir, "local", net));
  await local.transaction(async () => {
    for (const [i, addr] of ["10.28.0.5", "10.28.0.200", "10.28.0.9"].entries()) {
      await local.reserve({ ip: parseIp(addr)!, containerId: `pod${i}`, ifname: "eth0", rangeSet: set.key });
    }
  });
  local.close();
  const conf = storeConfig(ctx.cluster, { node: "migrant" });
  const m = await migrateLocal(conf, net, n.dir, join(n.dir, "local", net));
  assert.equal(m, { copied: 3, present: 0, conflicts: [] });
  const twice = await migrateLocal(conf, net, n.dir, join(n.dir, "local", net));
  assert.equal(twice, { copied: 0, present: 3, conflicts: [] });
  const next = await add(ctx, n, net, [set], "new-pod");
  assert.not.ok(
    ["10.28.0.5", "10.28.0.200", "10.28.0.9"].includes(next.ips[0]!),
    "a migrated address is not handed out",
  );
  // Another node already holds one of them in etcd: reported, not overwritten.
  const m2 = node(ctx, "second-migrant");
  const local2 = createSqliteStore(join(m2.dir, "local", net));
  await local2.transaction(async () => {
    await local2.reserve({ ip: parseIp("10.28.0.5")!, containerId: "other", ifname: "eth0", rangeSet: set.key });
  });
  local2.close();
  const c = await migrateLocal(
    storeConfig(ctx.cluster, { node: "second-migrant" }),
    net,
    m2.dir,
    join(m2.dir, "local", net),
  );
  assert.equal(c.conflicts, [
    { address: "10.28.0.5", containerID: "other", ifname: "eth0", holder: "migrant/pod0/eth0" },
  ]);
  await assertSound(ctx, [n, m2], [net]);
});

test.run();
