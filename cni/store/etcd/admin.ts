// What the operator CLI needs from the etcd store, as plain functions: list reservations per pool
// and per node, usage, verify the invariants (every address key has its attachment and its block
// bit, and the reverse), remove a dead node (fence its blocks, free its addresses), and migrate a
// node's local (SQLite) reservations into etcd. Each change is a revision-guarded txn, so they are
// safe to run while nodes are adding pods.
import { formatIp, parseIp, type Ip } from "../../ip.ts";
import type { RangeSet } from "../../range-set.ts";
import { openSqliteStore } from "../sqlite.ts";
import type { Reservation } from "../store.ts";
import {
  blockContains,
  blockName,
  blockSize,
  mapCount,
  mapHas,
  mapMembers,
  parseBlockName,
  usableIn,
  type BlockId,
} from "./blocks.ts";
import { memoryCache } from "./cache.ts";
import type { EtcdStoreConfig } from "./config.ts";
import {
  CorruptValue,
  decodeAttachment,
  decodeBlock,
  decodeIp,
  decodePool,
  encodeBlock,
  keys,
  layout,
  parseAttachmentKey,
  under,
  type AttachmentValue,
  type BlockValue,
  type IpValue,
  type Layout,
  type PoolValue,
} from "./schema.ts";
import { openEtcdStore } from "./store.ts";
import { createClient, type EtcdClient, type KeyValue } from "./transport.ts";

/** A client for an operator command: the same transport, a budget of minutes, not seconds. */
export function adminClient(c: EtcdStoreConfig, budgetMs = 300_000, tokenFile?: string): EtcdClient {
  return createClient({
    endpoints: c.endpoints,
    tls: c.tls,
    auth: c.auth,
    tokenFile,
    requestTimeoutMs: 5000,
    deadline: Date.now() + budgetMs,
  });
}

const PAGE = 2000;

/** Every key under a prefix as of one revision, page by page. */
export async function readAll(
  client: EtcdClient,
  prefix: string,
  revision?: bigint,
): Promise<{ kvs: KeyValue[]; revision: bigint }> {
  const r = under(prefix);
  const out: KeyValue[] = [];
  let from = r.key;
  let rev = revision;
  for (;;) {
    const page = await client.range({ key: from, rangeEnd: r.rangeEnd, limit: PAGE, revision: rev });
    rev ??= page.revision;
    out.push(...page.kvs);
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || !last) break;
    from = `${last.key}\0`;
  }
  return { kvs: out, revision: rev ?? 0n };
}

type Snapshot = {
  revision: bigint;
  pools: Map<string, PoolValue>;
  blocks: Map<string, { network: string; key: string; value: BlockValue & { id: BlockId }; rev: bigint }>;
  ips: Map<string, { network: string; address: string; key: string; value: IpValue }>;
  attachments: Map<
    string,
    { node: string; network: string; containerId: string; ifname: string; key: string; value: AttachmentValue }
  >;
  /** Keys that did not parse. */
  corrupt: { key: string; why: string }[];
};

const segment = (base: string, key: string): string[] => key.slice(base.length).split("/");

/** The whole pool under the prefix at one revision. */
export async function snapshot(client: EtcdClient, l: Layout): Promise<Snapshot> {
  const pools = await readAll(client, keys.pools(l));
  const rev = pools.revision;
  const [blocks, ips, atts] = await Promise.all([
    readAll(client, keys.allBlocks(l), rev),
    readAll(client, keys.allIps(l), rev),
    readAll(client, keys.allAttachments(l), rev),
  ]);
  const s: Snapshot = {
    revision: rev,
    pools: new Map(),
    blocks: new Map(),
    ips: new Map(),
    attachments: new Map(),
    corrupt: [],
  };
  const guard = (key: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      s.corrupt.push({ key, why: e instanceof CorruptValue ? e.message : String(e) });
    }
  };
  for (const kv of pools.kvs) {
    guard(kv.key, () => s.pools.set(kv.key.slice(keys.pools(l).length), decodePool(kv.key, kv.value)));
  }
  for (const kv of blocks.kvs) {
    guard(kv.key, () => {
      const [network = "", name = ""] = segment(keys.allBlocks(l), kv.key);
      const value = decodeBlock(kv.key, kv.value);
      if (blockName(value.id) !== name) throw new CorruptValue(kv.key, `cidr ${value.cidr} under the name ${name}`);
      s.blocks.set(kv.key, { network, key: kv.key, value, rev: kv.modRevision });
    });
  }
  for (const kv of ips.kvs) {
    guard(kv.key, () => {
      const [network = "", address = ""] = segment(keys.allIps(l), kv.key);
      s.ips.set(kv.key, { network, address, key: kv.key, value: decodeIp(kv.key, kv.value) });
    });
  }
  for (const kv of atts.kvs) {
    guard(kv.key, () => {
      const k = parseAttachmentKey(l, kv.key);
      if (!k) throw new CorruptValue(kv.key, "not node/network/containerID/ifname");
      s.attachments.set(kv.key, { ...k, key: kv.key, value: decodeAttachment(kv.key, kv.value) });
    });
  }
  return s;
}

export type ListedReservation = {
  network: string;
  address: string;
  containerID: string;
  ifname: string;
  node: string;
  rangeSet: string;
  reservedAt: string;
};

/** Every reservation in the pool (optionally one network's, one node's), ordered by network and address. */
export async function listReservations(
  client: EtcdClient,
  prefix: string,
  filter: { network?: string; node?: string } = {},
): Promise<ListedReservation[]> {
  const l = layout(prefix);
  const base = filter.network ? keys.ips(l, filter.network) : keys.allIps(l);
  const { kvs } = await readAll(client, base);
  const out: ListedReservation[] = [];
  for (const kv of kvs) {
    const [network = "", address = ""] = segment(keys.allIps(l), kv.key);
    const v = decodeIp(kv.key, kv.value);
    if (filter.node && v.node !== filter.node) continue;
    out.push({
      network,
      address,
      containerID: v.containerID,
      ifname: v.ifname,
      node: v.node,
      rangeSet: v.rangeSet,
      reservedAt: v.reservedAt,
    });
  }
  const order = (a: ListedReservation) => parseIp(a.address);
  return out.sort((a, b) => {
    if (a.network !== b.network) return a.network < b.network ? -1 : 1;
    const x = order(a);
    const y = order(b);
    if (!x || !y) return a.address < b.address ? -1 : 1;
    return x.family !== y.family ? x.family - y.family : x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
  });
}

export type NodeUsage = { node: string; blocks: number; reserved: number; free: number };
export type PoolUsage = {
  network: string;
  blockSize: number | undefined;
  blockSize6: number | undefined;
  /** Claimed blocks (a block freed by node removal counts under node ""). */
  blocks: number;
  reserved: number;
  /** Free addresses inside claimed blocks. */
  free: number;
  nodes: NodeUsage[];
};

/**
 * Blocks, reserved and free addresses per network and per node. With the network's range sets,
 * "free" counts only addresses those sets may hand out; without them, every unreserved address of
 * the node's blocks.
 */
export async function usage(
  client: EtcdClient,
  prefix: string,
  rangeSets: Record<string, readonly RangeSet[]> = {},
): Promise<PoolUsage[]> {
  const s = await snapshot(client, layout(prefix));
  const byNet = new Map<string, PoolUsage>();
  const get = (network: string): PoolUsage => {
    let u = byNet.get(network);
    if (!u) {
      const p = s.pools.get(network);
      u = { network, blockSize: p?.blockSize, blockSize6: p?.blockSize6, blocks: 0, reserved: 0, free: 0, nodes: [] };
      byNet.set(network, u);
    }
    return u;
  };
  for (const b of s.blocks.values()) {
    const u = get(b.network);
    let n = u.nodes.find((x) => x.node === b.value.node);
    if (!n) {
      n = { node: b.value.node, blocks: 0, reserved: 0, free: 0 };
      u.nodes.push(n);
    }
    const reserved = mapCount(b.value.map);
    const sets = rangeSets[b.network];
    let capacity: number;
    if (sets) {
      capacity = 0;
      for (const set of sets) for (const part of usableIn(b.value.id, set)) capacity += Number(part.hi - part.lo + 1n);
      // Reserved addresses the config no longer allows are not free either.
      capacity = Math.max(capacity, 0);
    } else capacity = Number(blockSize(b.value.id));
    const free = Math.max(0, capacity - reservedUsable(b.value, sets));
    n.blocks++;
    n.reserved += reserved;
    n.free += free;
    u.blocks++;
    u.reserved += reserved;
    u.free += free;
  }
  for (const u of byNet.values()) u.nodes.sort((a, b) => (a.node < b.node ? -1 : 1));
  return [...byNet.values()].sort((a, b) => (a.network < b.network ? -1 : 1));
}

function reservedUsable(b: BlockValue & { id: BlockId }, sets: readonly RangeSet[] | undefined): number {
  if (!sets) return mapCount(b.map);
  let n = 0;
  for (const off of mapMembers(b.map)) {
    const v = b.id.base + BigInt(off);
    if (sets.some((set) => usableIn(b.id, set).some((p) => v >= p.lo && v <= p.hi))) n++;
  }
  return n;
}

export type Problem = { key: string; problem: string };

/**
 * The store's invariants: every address key has its attachment (listing it) and its block bit;
 * every attachment entry has its address key (pointing back) and block bit; every block bit has its
 * address key; blocks have the pool's size and do not overlap; nothing fails to parse. Empty when
 * the store is sound.
 */
export async function verify(client: EtcdClient, prefix: string): Promise<Problem[]> {
  const l = layout(prefix);
  const s = await snapshot(client, l);
  const out: Problem[] = s.corrupt.map((c) => ({ key: c.key, problem: c.why }));
  const blockOfIp = (network: string, ip: Ip) => {
    for (const b of s.blocks.values()) if (b.network === network && blockContains(b.value.id, ip)) return b;
    return undefined;
  };
  for (const x of s.ips.values()) {
    const ip = parseIp(x.address);
    if (!ip || formatIp(ip) !== x.address) {
      out.push({ key: x.key, problem: "not an address key" });
      continue;
    }
    const ak = keys.attachment(l, x.value.node, x.network, x.value.containerID, x.value.ifname);
    const att = s.attachments.get(ak);
    if (!att) out.push({ key: x.key, problem: `its attachment ${ak} is missing` });
    else if (!att.value.ips.some((e) => e.ip === x.address)) {
      out.push({ key: x.key, problem: `its attachment ${ak} does not list it` });
    }
    const b = blockOfIp(x.network, ip);
    if (!b) out.push({ key: x.key, problem: "no block holds it" });
    else if (!mapHas(b.value.map, Number(ip.value - b.value.id.base))) {
      out.push({ key: x.key, problem: `its bit in block ${b.key} is clear` });
    }
  }
  for (const a of s.attachments.values()) {
    if (a.value.ips.length === 0) out.push({ key: a.key, problem: "an attachment without addresses" });
    for (const e of a.value.ips) {
      const ipk = keys.ip(l, a.network, e.ip);
      const x = s.ips.get(ipk);
      if (!x) out.push({ key: a.key, problem: `address ${e.ip} has no key ${ipk}` });
      else if (x.value.node !== a.node || x.value.containerID !== a.containerId || x.value.ifname !== a.ifname) {
        out.push({
          key: a.key,
          problem: `address ${e.ip} belongs to ${x.value.node}/${x.value.containerID}/${x.value.ifname}`,
        });
      }
      const ip = parseIp(e.ip);
      const named = parseBlockName(e.block);
      if (!ip || !named || !blockContains(named, ip))
        out.push({ key: a.key, problem: `address ${e.ip} is not in block ${e.block}` });
    }
  }
  const byNet = new Map<string, (typeof s.blocks extends Map<string, infer V> ? V : never)[]>();
  for (const b of s.blocks.values()) {
    const list = byNet.get(b.network) ?? [];
    list.push(b);
    byNet.set(b.network, list);
    const pool = s.pools.get(b.network);
    const want = pool ? (b.value.id.family === 4 ? pool.blockSize : pool.blockSize6) : undefined;
    if (want === undefined) out.push({ key: b.key, problem: `network ${b.network} has blocks but no pool record` });
    else if (b.value.id.prefix !== want)
      out.push({ key: b.key, problem: `a /${b.value.id.prefix} in a pool of /${want}` });
    for (const off of mapMembers(b.value.map)) {
      const address = formatIp({ family: b.value.id.family, value: b.value.id.base + BigInt(off) });
      if (!s.ips.has(keys.ip(l, b.network, address))) {
        out.push({ key: b.key, problem: `bit for ${address} is set but ${keys.ip(l, b.network, address)} is missing` });
      }
    }
  }
  for (const list of byNet.values()) {
    const sorted = list.sort(
      (a, b) => a.value.id.family - b.value.id.family || (a.value.id.base < b.value.id.base ? -1 : 1),
    );
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1];
      const cur = sorted[i];
      if (
        prev &&
        cur &&
        prev.value.id.family === cur.value.id.family &&
        blockContains(prev.value.id, { family: cur.value.id.family, value: cur.value.id.base })
      ) {
        out.push({ key: cur.key, problem: `overlaps ${prev.key}` });
      }
    }
  }
  return out;
}

export type NodeRemoval = {
  blocksFenced: number;
  attachmentsReleased: number;
  addressesReleased: number;
  rounds: number;
};

/**
 * Removes a dead node from every pool under the prefix: first each of its blocks is fenced (its
 * owner cleared, its epoch raised, guarded by the block's mod_revision), so a zombie of the node
 * whose ADD was built on the old block fails its compare; then its attachments are released like
 * its own DELs would have, freeing address keys and block bits. Blocks stay free for any node to
 * claim at once (the node is gone: no grace period). Runs until nothing of the node is left, a
 * few rounds at most if the node was still writing.
 */
export async function removeNode(client: EtcdClient, conf: EtcdStoreConfig, node: string): Promise<NodeRemoval> {
  const l = layout(conf.prefix);
  const out: NodeRemoval = { blocksFenced: 0, attachmentsReleased: 0, addressesReleased: 0, rounds: 0 };
  for (let round = 0; round < 5; round++) {
    out.rounds++;
    const s = await snapshot(client, l);
    const owned = [...s.blocks.values()].filter((b) => b.value.node === node);
    const networks = new Set([...s.attachments.values()].filter((a) => a.node === node).map((a) => a.network));
    if (owned.length === 0 && networks.size === 0) return out;
    out.blocksFenced += await fence(client, owned);
    for (const network of networks) {
      const store = openEtcdStore({
        config: { ...conf, node },
        network,
        dataDir: "",
        budgetMs: 300_000,
        requestTimeoutMs: 5000,
        cache: memoryCache(),
        client,
      });
      const released = await store.transaction(async () => {
        let n = 0;
        let ips = 0;
        for (const a of await store.listAttachments()) {
          ips += (await store.releaseById(a)).length;
          n++;
        }
        return { n, ips };
      });
      out.attachmentsReleased += released.n;
      out.addressesReleased += released.ips;
    }
  }
  return out;
}

/** Clears the owner and raises the epoch of each block, each guarded by the revision it was read at. */
async function fence(client: EtcdClient, blocks: { key: string; value: BlockValue; rev: bigint }[]): Promise<number> {
  let done = 0;
  let todo = blocks;
  for (let attempt = 0; todo.length > 0 && attempt < 20; attempt++) {
    const again: typeof blocks = [];
    for (const b of todo) {
      const fenced: BlockValue = { cidr: b.value.cidr, node: "", epoch: b.value.epoch + 1, map: b.value.map };
      // One txn per block: a block the node changed meanwhile is re-read and fenced again.
      const res = await client.txn({
        compare: [{ key: b.key, target: "MOD", result: "EQUAL", value: b.rev }],
        success: [{ put: { key: b.key, value: encodeBlock(fenced) } }],
        failure: [{ range: { key: b.key } }],
      });
      if (res.succeeded) {
        done++;
        continue;
      }
      const kv = res.responses[0]?.kvs[0];
      if (!kv) continue; // gone: nothing to fence
      const value = decodeBlock(kv.key, kv.value);
      if (value.node === b.value.node) again.push({ key: b.key, value, rev: kv.modRevision });
    }
    todo = again;
  }
  return done;
}

export type Migration = {
  copied: number;
  /** Already in etcd for the same attachment (a migration run twice). */
  present: number;
  /** Held in etcd by someone else: left out, and reported. */
  conflicts: { address: string; containerID: string; ifname: string; holder: string }[];
};

/**
 * Copies this node's local (SQLite) reservations of a network into etcd, so that switching the
 * network's store to etcd never hands out an address a running container holds. Idempotent: a
 * reservation already in etcd for the same attachment is counted, not copied twice. The local
 * store is left as it was.
 */
export async function migrateLocal(
  conf: EtcdStoreConfig,
  network: string,
  dataDir: string,
  localDir: string,
): Promise<Migration> {
  const local = openSqliteStore(localDir);
  const reservations: Reservation[] = [];
  if (local) {
    try {
      await local.transaction(async () => {
        for (const a of await local.listAttachments()) reservations.push(...(await local.getById(a)));
      });
    } finally {
      local.close();
    }
  }
  const out: Migration = { copied: 0, present: 0, conflicts: [] };
  if (reservations.length === 0) return out;
  const store = openEtcdStore({ config: conf, network, dataDir, budgetMs: 300_000, requestTimeoutMs: 5000 });
  const client = adminClient(conf);
  try {
    await store.transaction(async () => {
      out.copied = 0;
      out.present = 0;
      out.conflicts = [];
      const pending: Reservation[] = [];
      for (const r of reservations) {
        const held = await store.getById(r);
        if (held.some((h) => h.ip.family === r.ip.family && h.ip.value === r.ip.value)) out.present++;
        else pending.push(r);
      }
      for (const r of pending) {
        if (await store.reserve(r)) out.copied++;
        else out.conflicts.push({ address: formatIp(r.ip), containerID: r.containerId, ifname: r.ifname, holder: "" });
      }
    });
    for (const c of out.conflicts) {
      const l = layout(conf.prefix);
      const k = keys.ip(l, network, c.address);
      const kv = (await client.range({ key: k })).kvs[0];
      if (kv) {
        const v = decodeIp(k, kv.value);
        c.holder = `${v.node}/${v.containerID}/${v.ifname}`;
      } else c.holder = "(block bit without address key)";
    }
  } finally {
    store.close();
    client.close();
  }
  return out;
}

/** Which blocks a node owns now (for tests and `usage`). */
export async function blocksOf(client: EtcdClient, prefix: string, node: string): Promise<string[]> {
  const s = await snapshot(client, layout(prefix));
  return [...s.blocks.values()]
    .filter((b) => b.value.node === node)
    .map((b) => `${b.network}/${blockName(b.value.id)}`);
}
