// The cluster-wide store: one pool per network shared by every node, on etcd v3 (schema.ts for the
// keys). Each node allocates from blocks it owns (blocks.ts); every change is one etcd txn built
// by txn.ts from the node's cache, so a common ADD or DEL is one request and no state is ever
// half-written: an address, its block bit and its attachment change together or not at all.
import { join } from "node:path";
import { errorMessage } from "../../../shared/json.ts";
import { formatIp, parseIp, type Family, type Ip } from "../../ip.ts";
import type { RangeSet } from "../../range-set.ts";
import { StoreError } from "../errors.ts";
import type { Attachment, Reservation, Store } from "../store.ts";
import {
  blockCidr,
  blockContains,
  blockLast,
  blockName,
  blockOf,
  emptyMap,
  findBlock,
  firstFreeIn,
  mapEmpty,
  mapHas,
  mapWith,
  nodeHash,
  usableIn,
  type BlockId,
} from "./blocks.ts";
import { openCache, type CacheError, type NodeCache } from "./cache.ts";
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
  encodePool,
  familyPrefix,
  keys,
  layout,
  parseAttachmentKey,
  under,
  type AttachmentValue,
  type BlockValue,
  type Layout,
  type PoolValue,
} from "./schema.ts";
import { createClient, EtcdError, type Counters, type EtcdClient } from "./transport.ts";
import { ConflictError, runOptimistic, type Tx, type TxStats } from "./txn.ts";

/** How long a block emptied by DELs stays its node's before another node may take it over. */
export const BLOCK_GRACE_MS = 15 * 60 * 1000;
const MAX_ATTEMPTS = 8;
/** How long processes on the node wait for each other (the local store waits as long). */
const LOCK_TIMEOUT_MS = 20_000;
/**
 * After a command found etcd out of reach, the commands that were already queued behind it on the
 * node answer "try again later" at once instead of each spending its whole budget: an outage with
 * 30 ADDs queued on a node costs them one budget, not thirty. A command that asks for the lock
 * after the outage was found (the runtime's retry) tries etcd again, so the node recovers as soon
 * as etcd does.
 */

export type EtcdStoreOptions = {
  config: EtcdStoreConfig;
  network: string;
  dataDir: string;
  /**
   * The command's budget for etcd (5 s; STATUS answers within 1 s), counted from the moment it holds
   * the node's lock: on a node starting a hundred pods at once, waiting for the others is not etcd
   * being slow, and must not fail an ADD that etcd would serve.
   */
  budgetMs: number;
  /** "read" for STATUS: no wait for the node's lock; what it learns is cached only if no writer is busy. */
  mode?: "write" | "read";
  /** At most this long for one HTTP request. */
  requestTimeoutMs: number;
  /** The clock (ms since the epoch); tests move it to pass a grace period. */
  now?: () => number;
  /** Operator commands acting for another node bring their own (memory) cache and client. */
  cache?: NodeCache;
  client?: EtcdClient;
};

export type EtcdStore = Store & {
  close(): void;
  /** What this store did so far: requests by kind, txn attempts and lost compare-and-swaps. */
  stats(): Counters & TxStats;
};

/** The auth token's cache file: one per endpoints and user, beside the networks in dataDir. */
export function tokenFileOf(dataDir: string, c: EtcdStoreConfig): string | undefined {
  if (!c.auth) return undefined;
  const id = nodeHash(`${c.endpoints.join(",")}\n${c.auth.username}`).toString(16);
  return join(dataDir, `.berth-etcd-token-${id}`);
}

type Block = BlockValue & { id: BlockId; key: string };

export function openEtcdStore(o: EtcdStoreOptions): EtcdStore {
  const c = o.config;
  const l: Layout = layout(c.prefix);
  const net = o.network;
  const me = c.node;
  const now = o.now ?? Date.now;
  const start = Date.now();
  const deadline = start + o.budgetMs;
  const networkDir = join(o.dataDir, net);
  let cache: NodeCache;
  try {
    cache = o.cache ?? openCache(networkDir, LOCK_TIMEOUT_MS, `${l.root}\n${me}`);
  } catch (e) {
    throw fromCache(e as CacheError, networkDir);
  }
  const remembered = Number(cache.meta("endpoint"));
  const client: EtcdClient =
    o.client ??
    createClient({
      endpoints: c.endpoints,
      tls: c.tls,
      auth: c.auth,
      tokenFile: tokenFileOf(o.dataDir, c),
      requestTimeoutMs: o.requestTimeoutMs,
      deadline,
      firstEndpoint: Number.isInteger(remembered) ? remembered : Number(nodeHash(me) % BigInt(c.endpoints.length)),
    });
  const txStats: TxStats = { attempts: 0, conflicts: 0 };
  let tx: Tx | undefined;
  const active = (): Tx => {
    if (!tx) throw new Error("etcd store used outside a transaction");
    return tx;
  };

  const ownerOf = (key: string, value: string): string | undefined => {
    if (!key.startsWith(keys.allBlocks(l))) return undefined;
    try {
      return decodeBlock(key, value).node;
    } catch {
      return undefined;
    }
  };

  const pool = (t: Tx): PoolValue | undefined => {
    const k = keys.pool(l, net);
    const v = t.get(k);
    return v === undefined ? undefined : decodePool(k, v);
  };
  /** The pool's block size once the pool exists (its first claim fixed it), else the config's. */
  const prefixOf = (t: Tx, f: Family): number => {
    const p = pool(t);
    return p ? familyPrefix(p, f) : f === 4 ? c.blockSize : c.blockSize6;
  };
  const block = (t: Tx, key: string, guard = true): Block | undefined => {
    const v = guard ? t.get(key) : t.peek(key);
    return v === undefined ? undefined : { ...decodeBlock(key, v), key };
  };
  const attachmentAt = (t: Tx, key: string): AttachmentValue | undefined => {
    const v = t.get(key);
    return v === undefined ? undefined : decodeAttachment(key, v);
  };
  const blockKey = (id: BlockId) => keys.block(l, net, blockName(id));
  const attKey = (containerId: string, ifname: string) => keys.attachment(l, me, net, containerId, ifname);
  const claims = (t: Tx): Set<string> => {
    let s = t.scratch.get("claims") as Set<string> | undefined;
    if (!s) {
      s = new Set();
      t.scratch.set("claims", s);
    }
    return s;
  };

  /** This node's blocks of the family, as the cache and this attempt's own writes have them. */
  function ownBlocks(t: Tx, f: Family): Block[] {
    const r = under(keys.blocks(l, net));
    const found = new Map<string, Block>();
    for (const row of cache.owned(r.key, r.rangeEnd, me)) {
      const b = block(t, row.key, false);
      if (b && b.node === me && b.id.family === f) found.set(row.key, b);
    }
    for (const [k, v] of t.written()) {
      if (!k.startsWith(r.key)) continue;
      found.delete(k);
      if (v === null) continue;
      const b = block(t, k, false);
      if (b && b.node === me && b.id.family === f) found.set(k, b);
    }
    return [...found.values()].sort((a, b) => (a.id.base < b.id.base ? -1 : a.id.base > b.id.base ? 1 : 0));
  }

  /** Round-robin over the node's blocks: after the set's cursor, wrapping around. */
  function pickOwn(t: Tx, set: RangeSet): { ip: Ip; key: string } | undefined {
    const blocks = ownBlocks(t, set.family).filter((b) => usableIn(b.id, set).length > 0);
    if (blocks.length === 0) return undefined;
    const cursorText = cache.cursor(set.key);
    const cursor = cursorText ? parseIp(cursorText) : undefined;
    const after = cursor && cursor.family === set.family ? cursor.value : undefined;
    let first = after === undefined ? 0 : blocks.findIndex((b) => blockLast(b.id) >= after);
    if (first < 0) first = 0;
    for (let i = 0; i <= blocks.length; i++) {
      const b = blocks[(first + i) % blocks.length] as Block;
      const from = i === 0 && after !== undefined && blockContains(b.id, { family: set.family, value: after });
      const v = firstFreeIn(b.id, b.map, set, from ? after : undefined);
      if (v !== undefined) return { ip: { family: set.family, value: v }, key: b.key };
    }
    return undefined;
  }

  /**
   * Every block of the network and the pool's record, fresh from etcd: once per transaction. A
   * rerun after a lost race needs no second look: the failure branch refreshed the block it lost.
   */
  let loaded = false;
  async function loadBlocks(t: Tx): Promise<void> {
    if (loaded) return;
    await t.load([under(keys.blocks(l, net)), { key: keys.pool(l, net) }]);
    loaded = true;
  }

  const takeable = (b: Block | undefined, at: number): boolean =>
    !b ||
    b.node === "" ||
    (b.node !== me && mapEmpty(b.map) && b.emptiedAt !== undefined && at - b.emptiedAt >= BLOCK_GRACE_MS);

  const store: EtcdStore = {
    async transaction(fn) {
      const askedAt = Date.now();
      try {
        cache.begin(o.mode);
      } catch (e) {
        throw fromCache(e as CacheError, networkDir);
      }
      const before = { ...client.counters, ...txStats };
      loaded = false;
      client.setDeadline(Date.now() + o.budgetMs);
      let outage: string | undefined;
      let ok = false;
      try {
        const recent = outageWhileQueued(cache.meta("outage"), askedAt);
        if (recent) throw new StoreError("unavailable", recent.endpoint, recent.message);
        const out = await runOptimistic(
          {
            cache,
            client,
            ownerOf,
            maxAttempts: MAX_ATTEMPTS,
            isInfrastructure: (e) => e instanceof EtcdError || e instanceof StoreError || e instanceof CorruptValue,
            stats: txStats,
          },
          async (t) => {
            tx = t;
            try {
              return await fn();
            } finally {
              tx = undefined;
            }
          },
        );
        ok = true;
        return out;
      } catch (e) {
        // Only a full budget spent on every member speaks for the node (STATUS gives up after 1 s).
        if (
          e instanceof EtcdError &&
          e.kind === "unavailable" &&
          o.mode !== "read" &&
          e.attempts >= c.endpoints.length
        ) {
          outage = JSON.stringify({ at: Date.now(), message: e.message, endpoint: e.endpoint });
        }
        throw toStoreError(e, c.endpoints);
      } finally {
        // Whatever etcd told us is true even when the command failed: keep it.
        if (outage) cache.setMeta("outage", outage);
        else if (ok && cache.meta("outage")) cache.setMeta("outage", "");
        cache.setMeta("endpoint", String(client.currentEndpoint()));
        const after: Record<string, number> = { ...client.counters, ...txStats };
        for (const [k, v] of Object.entries(after)) cache.count(k, v - (before[k as keyof typeof before] ?? 0));
        cache.count("transactions", 1);
        try {
          cache.commit();
        } catch {
          cache.rollback();
        }
      }
    },

    async reserve(r) {
      const t = active();
      const prefix = prefixOf(t, r.ip.family);
      const id = blockOf(r.ip, prefix);
      const bk = blockKey(id);
      const ipText = formatIp(r.ip);
      const ipk = keys.ip(l, net, ipText);
      if (t.get(ipk) !== undefined) {
        t.step();
        return false;
      }
      const cur = block(t, bk);
      const off = Number(r.ip.value - id.base);
      if (cur && mapHas(cur.map, off)) {
        t.step();
        return false;
      }
      let next: BlockValue;
      if (!cur) {
        // A reservation in a block nobody has claims it for this node (and fixes the pool's sizes).
        if (!pool(t)) t.put(keys.pool(l, net), encodePool({ blockSize: c.blockSize, blockSize6: c.blockSize6 }));
        next = { cidr: blockCidr(id), node: me, epoch: 1, map: mapWith(emptyMap(id), off, true) };
      } else if (cur.node === "" || (cur.node !== me && claims(t).has(bk))) {
        next = { cidr: cur.cidr, node: me, epoch: cur.epoch + 1, map: mapWith(cur.map, off, true) };
      } else {
        // Its owner's block (ours, or another node's for a requested address): only the bit changes.
        next = { cidr: cur.cidr, node: cur.node, epoch: cur.epoch, map: mapWith(cur.map, off, true) };
      }
      t.put(bk, encodeBlock(next));
      const reservedAt = new Date(now()).toISOString();
      t.put(
        ipk,
        encodeIp({ node: me, containerID: r.containerId, ifname: r.ifname, rangeSet: r.rangeSet, reservedAt }),
      );
      const ak = attKey(r.containerId, r.ifname);
      const att = attachmentAt(t, ak) ?? { ips: [] };
      const ips = att.ips.filter((e) => e.ip !== ipText);
      ips.push({ ip: ipText, block: blockName(id), rangeSet: r.rangeSet, reservedAt });
      t.put(ak, encodeAttachment({ ips }));
      t.afterCommit(() => cache.setCursor(r.rangeSet, ipText));
      t.step();
      return true;
    },

    async releaseById(a) {
      const t = active();
      const out: Reservation[] = [];
      for (const ifname of a.ifname === "" ? [""] : [a.ifname, ""]) {
        const ak = attKey(a.containerId, ifname);
        const att = attachmentAt(t, ak);
        if (!att) continue;
        for (const e of att.ips) {
          const ip = parseIp(e.ip);
          if (!ip) throw new CorruptValue(ak, `bad address ${e.ip}`);
          const ipk = keys.ip(l, net, e.ip);
          const held = t.get(ipk);
          const holder = held === undefined ? undefined : decodeIp(ipk, held);
          const ours =
            !holder || (holder.containerID === a.containerId && holder.ifname === ifname && holder.node === me);
          if (ours) {
            if (holder) t.del(ipk);
            const b = block(t, keys.block(l, net, e.block));
            if (b && blockContains(b.id, ip)) {
              const map = mapWith(b.map, Number(ip.value - b.id.base), false);
              const next: BlockValue = { cidr: b.cidr, node: b.node, epoch: b.epoch, map };
              if (mapEmpty(map)) next.emptiedAt = now();
              t.put(b.key, encodeBlock(next));
            }
          }
          out.push({ ip, containerId: a.containerId, ifname, rangeSet: e.rangeSet });
        }
        t.del(ak);
      }
      t.step();
      return out;
    },

    async getById(a) {
      const t = active();
      const att = attachmentAt(t, attKey(a.containerId, a.ifname));
      t.step();
      return (att?.ips ?? []).flatMap((e) => {
        const ip = parseIp(e.ip);
        return ip ? [{ ip, containerId: a.containerId, ifname: a.ifname, rangeSet: e.rangeSet }] : [];
      });
    },

    async nextFree(set) {
      const t = active();
      let pick = pickOwn(t, set);
      if (!pick) {
        // Nothing free in the blocks the cache knows: look at the pool as it is now.
        await loadBlocks(t);
        pick = pickOwn(t, set);
      }
      if (pick) {
        t.get(pick.key);
        return pick.ip;
      }
      const prefix = prefixOf(t, set.family);
      const at = now();
      const found = findBlock(set, prefix, me, (id) => {
        const b = block(t, blockKey(id), false);
        return takeable(b, at) && firstFreeIn(id, b?.map ?? emptyMap(id), set) !== undefined;
      });
      if (!found) return undefined;
      const key = blockKey(found);
      const b = block(t, key);
      claims(t).add(key);
      const v = firstFreeIn(found, b?.map ?? emptyMap(found), set);
      return v === undefined ? undefined : { family: set.family, value: v };
    },

    async listAttachments() {
      const t = active();
      const [kvs = []] = await t.load([under(keys.attachments(l, me, net))]);
      return kvs.flatMap((kv) => {
        const k = parseAttachmentKey(l, kv.key);
        return k ? [{ containerId: k.containerId, ifname: k.ifname } satisfies Attachment] : [];
      });
    },

    close() {
      if (!o.client) client.close();
      if (!o.cache) cache.close();
    },

    stats: () => ({ ...client.counters, ...txStats }),
  };
  return store;
}

/** The outage another command on this node ran into while this one waited for the lock; else undefined. */
function outageWhileQueued(
  saved: string | undefined,
  askedAt: number,
): { message: string; endpoint: string } | undefined {
  if (!saved) return undefined;
  try {
    const o = JSON.parse(saved) as { at?: unknown; message?: unknown; endpoint?: unknown };
    if (typeof o.at !== "number" || typeof o.message !== "string" || typeof o.endpoint !== "string") return undefined;
    if (o.at < askedAt) return undefined;
    const ago = Date.now() - o.at;
    return { message: `${o.message} (found ${ago} ms ago by another command on this node)`, endpoint: o.endpoint };
  } catch {
    return undefined;
  }
}

function fromCache(e: CacheError, where: string): StoreError {
  return new StoreError(e.busy ? "busy" : "io", where, e.message);
}

/** The store's failures in the store seam's terms; no secret is part of any of them. */
function toStoreError(e: unknown, endpoints: readonly string[]): unknown {
  if (e instanceof StoreError) return e;
  if (e instanceof EtcdError) {
    const where = e.endpoint || endpoints.join(",");
    // A refused login or a role without the prefix is no passing fault, but nothing else about
    // the node is wrong either: the runtime may retry once an operator has fixed the credentials.
    return new StoreError(e.kind === "rejected" ? "io" : "unavailable", where, e.message);
  }
  if (e instanceof CorruptValue) return new StoreError("corrupt", e.key, e.message);
  if (e instanceof ConflictError) return new StoreError("conflict", endpoints.join(","), e.message);
  if (e instanceof Error && "busy" in e) return fromCache(e as CacheError, "node cache");
  return e instanceof Error && e.message.startsWith("one change touches")
    ? new StoreError("io", endpoints.join(","), errorMessage(e))
    : e;
}
