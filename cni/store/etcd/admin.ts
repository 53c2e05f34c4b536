// What the operator CLI needs from the etcd store, as plain functions: list reservations per pool
// and per node, usage, verify the invariants (every address key has its attachment and its block
// bit, and the reverse), remove a dead node (fence its blocks, free its addresses), and migrate a
// node's local (SQLite) reservations into etcd. Each change is a revision-guarded txn, so they are
// safe to run while nodes are adding pods.
import { formatIp, parseIp, type Ip } from "../../ip.ts";
import type { RangeSet } from "../../range-set.ts";
import { openSqliteStore } from "../sqlite.ts";
import type { StoredReservation } from "../inspect.ts";
import type { Attachment, Reservation } from "../store.ts";
import {
  blockContains,
  blockName,
  blockOf,
  blockSize,
  mapCount,
  mapHas,
  mapEmpty,
  mapMembers,
  mapWith,
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
  encodeAttachment,
  encodeBlock,
  encodeIp,
  familyPrefix,
  keys,
  layout,
  parseAttachmentKey,
  under,
  type AttachmentIp,
  type AttachmentValue,
  type BlockValue,
  type IpValue,
  type Layout,
  type PoolValue,
} from "./schema.ts";
import { openEtcdStore } from "./store.ts";
import {
  createClient,
  type Compare,
  type EtcdClient,
  type KeyValue,
  type TxnOp,
  type TxnRequest,
} from "./transport.ts";

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

export type Snapshot = {
  revision: bigint;
  pools: Map<string, PoolValue>;
  blocks: Map<string, { network: string; key: string; value: BlockValue & { id: BlockId }; rev: bigint }>;
  ips: Map<string, { network: string; address: string; key: string; value: IpValue; rev: bigint }>;
  attachments: Map<
    string,
    {
      node: string;
      network: string;
      containerId: string;
      ifname: string;
      key: string;
      value: AttachmentValue;
      rev: bigint;
    }
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
      s.ips.set(kv.key, { network, address, key: kv.key, value: decodeIp(kv.key, kv.value), rev: kv.modRevision });
    });
  }
  for (const kv of atts.kvs) {
    guard(kv.key, () => {
      const k = parseAttachmentKey(l, kv.key);
      if (!k) throw new CorruptValue(kv.key, "not node/network/containerID/ifname");
      s.attachments.set(kv.key, { ...k, key: kv.key, value: decodeAttachment(kv.key, kv.value), rev: kv.modRevision });
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

const listedOf = (network: string, address: string, v: IpValue): ListedReservation => ({
  network,
  address,
  containerID: v.containerID,
  ifname: v.ifname,
  node: v.node,
  rangeSet: v.rangeSet,
  reservedAt: v.reservedAt,
});

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
    out.push(listedOf(network, address, v));
  }
  return sortReservations(out);
}

/** By network, then by address (IPv4 first). */
function sortReservations(out: ListedReservation[]): ListedReservation[] {
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

/**
 * One safe fix for a problem: a txn guarded by the mod_revision of every key it reads or writes
 * as the check saw them, so it changes nothing if anyone (a node's ADD or DEL) moved one since.
 */
export type Repair = { what: string; txn: TxnRequest };

export type Problem = {
  key: string;
  problem: string;
  /** The network the key belongs to ("" when the key names none). */
  network?: string;
  /** Present when the problem can be fixed without a guess. */
  repair?: Repair;
};

type IpRow = Snapshot["ips"] extends Map<string, infer V> ? V : never;

const entryOf = (r: IpRow, block: BlockId): AttachmentIp => ({
  ip: r.address,
  block: blockName(block),
  rangeSet: r.value.rangeSet,
  reservedAt: r.value.reservedAt,
});

/** The network a key under the layout belongs to, "" if it names none. */
function networkOfKey(l: Layout, key: string): string {
  const rest = key.slice(l.root.length).split("/");
  if (rest[0] === "attachments") return rest[2] ?? "";
  if (rest[0] === "blocks" || rest[0] === "ips" || rest[0] === "pools") return rest[1] ?? "";
  return "";
}

const guard = (key: string, rev: bigint): Compare => ({ key, target: "MOD", result: "EQUAL", value: rev });
const guarded = (compare: Compare[], success: TxnOp[]): TxnRequest => ({ compare, success, failure: [] });
const withBit = (b: BlockValue & { id: BlockId }, ip: Ip, on: boolean): BlockValue => {
  const map = mapWith(b.map, Number(ip.value - b.id.base), on);
  const next: BlockValue = { cidr: b.cidr, node: b.node, epoch: b.epoch, map };
  if (!on && mapEmpty(map)) next.emptiedAt = Date.now();
  return next;
};

/**
 * The store's invariants: every address key has its attachment (listing it) and its block bit;
 * every attachment entry has its address key (pointing back) and block bit; every block bit has its
 * address key; blocks have the pool's size and do not overlap; nothing fails to parse. Empty when
 * the store is sound.
 *
 * What is repairable errs on the side of keeping an address held: an address key or a block bit
 * that an attachment (or an address key) vouches for is restored, never dropped, because the
 * container may be running with it; only what no index vouches for (a bit nobody holds, an
 * attachment listing nothing) is cleared. Two indexes that name different holders need a person.
 */
export function problemsOf(s: Snapshot, l: Layout): Problem[] {
  const out: Problem[] = s.corrupt.map((c) => ({ key: c.key, problem: c.why }));
  const blockOfIp = (network: string, ip: Ip) => {
    for (const b of s.blocks.values()) if (b.network === network && blockContains(b.value.id, ip)) return b;
    return undefined;
  };
  // Which attachments list each address: a bit or an address key they vouch for is kept.
  const listed = new Map<string, string[]>();
  for (const a of s.attachments.values()) {
    for (const e of a.value.ips) {
      const k = keys.ip(l, a.network, e.ip);
      listed.set(k, [...(listed.get(k) ?? []), a.key]);
    }
  }
  // Address keys whose attachment is missing, by that attachment: one repair recreates it whole.
  const orphans = new Map<string, IpRow[]>();
  for (const ipRow of s.ips.values()) {
    const ip = parseIp(ipRow.address);
    if (!ip || formatIp(ip) !== ipRow.address) {
      out.push({ key: ipRow.key, problem: "not an address key" });
      continue;
    }
    const v = ipRow.value;
    const ak = keys.attachment(l, v.node, ipRow.network, v.containerID, v.ifname);
    const att = s.attachments.get(ak);
    const b = blockOfIp(ipRow.network, ip);
    if (!att) {
      orphans.set(ak, [...(orphans.get(ak) ?? []), ipRow]);
      out.push({ key: ipRow.key, problem: `its attachment ${ak} is missing` });
    } else if (!att.value.ips.some((e) => e.ip === ipRow.address)) {
      const ips = b ? [...att.value.ips, entryOf(ipRow, b.value.id)] : [];
      // Another attachment listing it names another holder: that needs a person, not a guess.
      const unclaimed = (listed.get(ipRow.key) ?? []).length === 0;
      out.push({
        key: ipRow.key,
        problem: `its attachment ${ak} does not list it`,
        repair:
          b && unclaimed
            ? {
                what: `added ${ipRow.address} to attachment ${ak}`,
                txn: guarded(
                  [guard(ipRow.key, ipRow.rev), guard(ak, att.rev)],
                  [{ put: { key: ak, value: encodeAttachment({ ips }) } }],
                ),
              }
            : undefined,
      });
    }
    if (!b) out.push({ key: ipRow.key, problem: "no block holds it" });
    else if (!mapHas(b.value.map, Number(ip.value - b.value.id.base))) {
      out.push({
        key: ipRow.key,
        problem: `its bit in block ${b.key} is clear`,
        repair: {
          what: `set the bit of ${ipRow.address} in block ${b.key}`,
          txn: guarded(
            [guard(ipRow.key, ipRow.rev), guard(b.key, b.rev)],
            [{ put: { key: b.key, value: encodeBlock(withBit(b.value, ip, true)) } }],
          ),
        },
      });
    }
  }
  // The first problem of each orphan carries the repair that recreates the attachment.
  for (const [ak, rows] of orphans) {
    const first = out.find((p) => p.key === rows[0]?.key && p.problem.startsWith("its attachment"));
    const entries = rows.flatMap((r) => {
      const ip = parseIp(r.address);
      const b = ip ? blockOfIp(r.network, ip) : undefined;
      return b ? [entryOf(r, b.value.id)] : [];
    });
    if (!first || entries.length !== rows.length) continue;
    if (rows.some((r) => (listed.get(r.key) ?? []).length > 0)) continue; // another holder: a person decides
    first.repair = {
      what: `recreated attachment ${ak} with ${entries.map((e) => e.ip).join(", ")} (release it if the container is gone)`,
      txn: guarded(
        [...rows.map((r) => guard(r.key, r.rev)), guard(ak, 0n)],
        [{ put: { key: ak, value: encodeAttachment({ ips: entries }) } }],
      ),
    };
  }
  for (const a of s.attachments.values()) {
    if (a.value.ips.length === 0) {
      out.push({
        key: a.key,
        problem: "an attachment without addresses",
        repair: {
          what: `deleted ${a.key} (it held nothing)`,
          txn: guarded([guard(a.key, a.rev)], [{ del: { key: a.key } }]),
        },
      });
    }
    for (const e of a.value.ips) {
      const ipk = keys.ip(l, a.network, e.ip);
      const held = s.ips.get(ipk);
      const ip = parseIp(e.ip);
      const named = parseBlockName(e.block);
      const inBlock = ip && named && blockContains(named, ip);
      if (!inBlock) out.push({ key: a.key, problem: `address ${e.ip} is not in block ${e.block}` });
      if (!held) {
        const b = ip ? blockOfIp(a.network, ip) : undefined;
        const solo = (listed.get(ipk) ?? []).length === 1;
        const ops: TxnOp[] = [
          {
            put: {
              key: ipk,
              value: encodeIp({
                node: a.node,
                containerID: a.containerId,
                ifname: a.ifname,
                rangeSet: e.rangeSet,
                reservedAt: e.reservedAt,
              }),
            },
          },
        ];
        const compare = [guard(ipk, 0n), guard(a.key, a.rev)];
        if (b && ip && !mapHas(b.value.map, Number(ip.value - b.value.id.base))) {
          ops.push({ put: { key: b.key, value: encodeBlock(withBit(b.value, ip, true)) } });
        }
        if (b) compare.push(guard(b.key, b.rev));
        out.push({
          key: a.key,
          problem: `address ${e.ip} has no key ${ipk}`,
          // Only one attachment may claim it, and only inside a block that holds it.
          repair:
            b && ip && inBlock && solo
              ? { what: `recreated ${ipk} for ${a.node}/${a.containerId}/${a.ifname}`, txn: guarded(compare, ops) }
              : undefined,
        });
      } else if (
        held.value.node !== a.node ||
        held.value.containerID !== a.containerId ||
        held.value.ifname !== a.ifname
      ) {
        out.push({
          key: a.key,
          problem: `address ${e.ip} belongs to ${held.value.node}/${held.value.containerID}/${held.value.ifname}`,
        });
      }
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
      const ip: Ip = { family: b.value.id.family, value: b.value.id.base + BigInt(off) };
      const address = formatIp(ip);
      const ipk = keys.ip(l, b.network, address);
      if (s.ips.has(ipk)) continue;
      const vouched = (listed.get(ipk) ?? []).length > 0;
      out.push({
        key: b.key,
        problem: `bit for ${address} is set but ${ipk} is missing`,
        // An attachment listing it gets its address key back (above); a bit nobody holds is cleared.
        repair: vouched
          ? undefined
          : {
              what: `cleared the bit of ${address} in block ${b.key} (no address key, no attachment)`,
              txn: guarded(
                [guard(b.key, b.rev), guard(ipk, 0n)],
                [{ put: { key: b.key, value: encodeBlock(withBit(b.value, ip, false)) } }],
              ),
            },
      });
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
  for (const p of out) p.network = networkOfKey(l, p.key);
  return out;
}

/** verify's findings for the whole prefix (or one network's keys). */
export async function verify(client: EtcdClient, prefix: string, network?: string): Promise<Problem[]> {
  const l = layout(prefix);
  const found = problemsOf(await snapshot(client, l), l);
  return network === undefined ? found : found.filter((p) => p.network === network);
}

/**
 * Applies every repair verify offers, each its own guarded txn; a repair whose keys moved since
 * the check is skipped and the check runs again, until a round fixes nothing more. Returns what
 * was done, in order.
 */
export async function repair(client: EtcdClient, prefix: string, network?: string): Promise<string[]> {
  const done: string[] = [];
  for (let round = 0; round < 10; round++) {
    const fixes = (await verify(client, prefix, network)).flatMap((p) => (p.repair ? [p.repair] : []));
    let n = 0;
    for (const f of fixes) {
      if ((await client.txn(f.txn)).succeeded) {
        done.push(f.what);
        n++;
      }
    }
    if (n === 0) break;
  }
  return done;
}

export type NodeRemoval = {
  blocksFenced: number;
  attachmentsReleased: number;
  addressesReleased: number;
  rounds: number;
  /** The blocks fenced, as network/name. */
  blocks: string[];
  /** The reservations freed, as list shows them. */
  released: ListedReservation[];
};

/** What a node holds under the prefix: its blocks and its attachments' addresses. */
function heldBy(s: Snapshot, node: string): { blocks: string[]; reservations: ListedReservation[] } {
  const blocks = [...s.blocks.values()]
    .filter((b) => b.value.node === node)
    .map((b) => `${b.network}/${blockName(b.value.id)}`)
    .sort();
  const reservations = [...s.attachments.values()]
    .filter((a) => a.node === node)
    .flatMap((a) =>
      a.value.ips.map((e) => ({
        network: a.network,
        address: e.ip,
        containerID: a.containerId,
        ifname: a.ifname,
        node,
        rangeSet: e.rangeSet,
        reservedAt: e.reservedAt,
      })),
    );
  return { blocks, reservations: sortReservations(reservations) };
}

/** What removeNode would fence and free now, changing nothing. */
export async function previewNodeRemoval(
  client: EtcdClient,
  prefix: string,
  node: string,
): Promise<{ blocks: string[]; reservations: ListedReservation[] }> {
  return heldBy(await snapshot(client, layout(prefix)), node);
}

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
  const out: NodeRemoval = {
    blocksFenced: 0,
    attachmentsReleased: 0,
    addressesReleased: 0,
    rounds: 0,
    blocks: [],
    released: [],
  };
  for (let round = 0; round < 5; round++) {
    out.rounds++;
    const s = await snapshot(client, l);
    const owned = [...s.blocks.values()].filter((b) => b.value.node === node);
    const seen = heldBy(s, node).reservations;
    const networks = new Set([...s.attachments.values()].filter((a) => a.node === node).map((a) => a.network));
    if (owned.length === 0 && networks.size === 0) break;
    const fenced = await fence(client, owned);
    out.blocksFenced += fenced.length;
    out.blocks.push(...fenced);
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
        const freed: Reservation[] = [];
        for (const a of await store.listAttachments()) {
          freed.push(...(await store.releaseById(a)));
          n++;
        }
        return { n, freed };
      });
      out.attachmentsReleased += released.n;
      out.addressesReleased += released.freed.length;
      for (const r of released.freed) {
        const address = formatIp(r.ip);
        const was = seen.find(
          (x) =>
            x.network === network && x.address === address && x.containerID === r.containerId && x.ifname === r.ifname,
        );
        out.released.push({
          network,
          address,
          containerID: r.containerId,
          ifname: r.ifname,
          node,
          rangeSet: r.rangeSet,
          reservedAt: was?.reservedAt ?? "",
        });
      }
    }
  }
  out.blocks.sort();
  out.released = sortReservations(out.released);
  return out;
}

/** Clears the owner and raises the epoch of each block, each guarded by the revision it was read at. */
async function fence(
  client: EtcdClient,
  blocks: { network: string; key: string; value: BlockValue & { id: BlockId }; rev: bigint }[],
): Promise<string[]> {
  const done: string[] = [];
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
        done.push(`${b.network}/${blockName(b.value.id)}`);
        continue;
      }
      const kv = res.responses[0]?.kvs[0];
      if (!kv) continue; // gone: nothing to fence
      const value = decodeBlock(kv.key, kv.value);
      if (value.node === b.value.node) again.push({ network: b.network, key: b.key, value, rev: kv.modRevision });
    }
    todo = again;
  }
  return done;
}

export type MigrationConflict = { address: string; containerID: string; ifname: string; holder: string };

export type Migration = {
  copied: number;
  /** Already in etcd for the same attachment (a migration run twice). */
  present: number;
  /** Held in etcd by someone else: nothing was copied, and these are reported. */
  conflicts: MigrationConflict[];
};

export type MigrationReport = {
  /** Copied into etcd (or, for a dry run or a refused migration, that would have been). */
  copied: ListedReservation[];
  present: ListedReservation[];
  conflicts: MigrationConflict[];
};

/** Ends a migration's transaction without writing: a dry run, or a conflict found. */
class NothingWritten extends Error {}

/**
 * Copies this node's local (SQLite) reservations of a network into etcd, so that switching the
 * network's store to etcd never hands out an address a running container holds. All or nothing:
 * if any address is held in etcd by another attachment (or this attachment holds another address
 * of the set there), nothing is copied and the conflicts are reported. Idempotent: a reservation
 * already in etcd for the same attachment is counted, not copied twice. The local store is left
 * as it was. undefined when there is no local store at localDir.
 */
export async function migrate(
  conf: EtcdStoreConfig,
  network: string,
  dataDir: string,
  localDir: string,
  opts: { dryRun?: boolean } = {},
): Promise<MigrationReport | undefined> {
  const local = openSqliteStore(localDir);
  if (!local) return undefined;
  let reservations: StoredReservation[];
  try {
    reservations = await local.read(() => local.reservations());
  } finally {
    local.close();
  }
  const listed = (r: StoredReservation): ListedReservation => ({
    network,
    address: formatIp(r.ip),
    containerID: r.containerId,
    ifname: r.ifname,
    node: conf.node,
    rangeSet: r.rangeSet,
    reservedAt: r.reservedAt?.toISOString() ?? "",
  });
  const out: MigrationReport = { copied: [], present: [], conflicts: [] };
  if (reservations.length === 0) return out;
  // A copied reservation keeps the time the local store recorded: reserve stamps the store's clock,
  // which reads this while a migrated reservation is being made (and the real time otherwise).
  let copying: number | undefined;
  const store = openEtcdStore({
    config: conf,
    network,
    dataDir,
    budgetMs: 300_000,
    requestTimeoutMs: 5000,
    now: () => copying ?? Date.now(),
  });
  const client = adminClient(conf);
  const reserveAsOf = async (r: StoredReservation): Promise<boolean> => {
    copying = r.reservedAt?.getTime();
    try {
      return await store.reserve(r);
    } finally {
      copying = undefined;
    }
  };
  try {
    try {
      await store.transaction(async () => {
        out.copied = [];
        out.present = [];
        out.conflicts = [];
        for (const r of reservations) {
          const held = await store.getById(r);
          if (held.some((h) => h.ip.family === r.ip.family && h.ip.value === r.ip.value)) {
            out.present.push(listed(r));
            continue;
          }
          const other = held.find((h) => h.rangeSet === r.rangeSet);
          if (other) {
            out.conflicts.push({
              address: formatIp(r.ip),
              containerID: r.containerId,
              ifname: r.ifname,
              holder: `this attachment holds ${formatIp(other.ip)} in etcd`,
            });
          } else if (await reserveAsOf(r)) out.copied.push(listed(r));
          else
            out.conflicts.push({ address: formatIp(r.ip), containerID: r.containerId, ifname: r.ifname, holder: "" });
        }
        // Thrown, the transaction's commit only checks what it read was current: nothing is written.
        if (out.conflicts.length > 0 || opts.dryRun) throw new NothingWritten();
      });
    } catch (e) {
      if (!(e instanceof NothingWritten)) throw e;
    }
    const l = layout(conf.prefix);
    for (const c of out.conflicts) {
      if (c.holder !== "") continue;
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

/** migrate, counted (the local store absent: nothing to copy). */
export async function migrateLocal(
  conf: EtcdStoreConfig,
  network: string,
  dataDir: string,
  localDir: string,
): Promise<Migration> {
  const r = await migrate(conf, network, dataDir, localDir);
  if (!r) return { copied: 0, present: 0, conflicts: [] };
  return { copied: r.conflicts.length ? 0 : r.copied.length, present: r.present.length, conflicts: r.conflicts };
}

/** Which blocks a node owns now (for tests and `usage`). */
export async function blocksOf(client: EtcdClient, prefix: string, node: string): Promise<string[]> {
  const s = await snapshot(client, layout(prefix));
  return [...s.blocks.values()]
    .filter((b) => b.value.node === node)
    .map((b) => `${b.network}/${blockName(b.value.id)}`);
}

/**
 * Releases attachments of one node on one network as that node's own DELs would, each in its own
 * revision-guarded transaction (an operator acting for the node: a memory cache, so the node's
 * processes, whose caches are now stale, see their compare fail and refresh). Returns what was freed.
 */
export async function releaseAttachments(
  client: EtcdClient,
  conf: EtcdStoreConfig,
  network: string,
  node: string,
  attachments: readonly Attachment[],
): Promise<Reservation[]> {
  const store = openEtcdStore({
    config: { ...conf, node },
    network,
    dataDir: "",
    budgetMs: 60_000,
    requestTimeoutMs: 5000,
    cache: memoryCache(),
    client,
  });
  const out: Reservation[] = [];
  for (const a of attachments) out.push(...(await store.transaction(() => store.releaseById(a))));
  return out;
}

/**
 * Frees one address whoever holds it, in one txn guarded by the revisions of its address key, its
 * attachment and its block: the address key goes, the attachment stops listing it (and goes when
 * it listed nothing else), the block bit is cleared. Retried when a node changed one of them
 * meanwhile; undefined when the address is not reserved.
 */
export async function releaseAddress(
  client: EtcdClient,
  prefix: string,
  network: string,
  ip: Ip,
): Promise<ListedReservation | undefined> {
  const l = layout(prefix);
  const address = formatIp(ip);
  const ipk = keys.ip(l, network, address);
  for (let attempt = 0; attempt < 20; attempt++) {
    const held = (await client.range({ key: ipk })).kvs[0];
    if (!held) return undefined;
    const v = decodeIp(ipk, held.value);
    const ak = keys.attachment(l, v.node, network, v.containerID, v.ifname);
    const [att, pool] = await Promise.all([client.range({ key: ak }), client.range({ key: keys.pool(l, network) })]);
    const compare: Compare[] = [guard(ipk, held.modRevision)];
    const success: TxnOp[] = [{ del: { key: ipk } }];
    const attKv = att.kvs[0];
    compare.push(guard(ak, attKv?.modRevision ?? 0n));
    if (attKv) {
      const rest = decodeAttachment(ak, attKv.value).ips.filter((e) => e.ip !== address);
      success.push(rest.length ? { put: { key: ak, value: encodeAttachment({ ips: rest }) } } : { del: { key: ak } });
    }
    const poolKv = pool.kvs[0];
    const size = poolKv ? familyPrefix(decodePool(poolKv.key, poolKv.value), ip.family) : undefined;
    const bk = size === undefined ? undefined : keys.block(l, network, blockName(blockOf(ip, size)));
    const blockKv = bk ? (await client.range({ key: bk })).kvs[0] : undefined;
    if (bk) compare.push(guard(bk, blockKv?.modRevision ?? 0n));
    if (blockKv) {
      const b = decodeBlock(blockKv.key, blockKv.value);
      success.push({ put: { key: blockKv.key, value: encodeBlock(withBit(b, ip, false)) } });
    }
    if ((await client.txn({ compare, success, failure: [] })).succeeded) {
      return listedOf(network, address, v);
    }
  }
  throw new Error(`release of ${address}: 20 attempts lost a compare-and-swap race; try again`);
}
