// Optimistic transactions over the node cache: fn reads keys from the cache and buffers its
// writes; the commit is one etcd txn,
//   If(every key fn touched still has the mod_revision fn saw, 0 for "absent")
//   Then(fn's puts and deletes) Else(a range of every key fn touched),
// so a common ADD or DEL is one request. When the compare fails, the failure branch's fresh
// values go into the cache and fn runs again (an operator, another node or a lost cache moved
// something); fn therefore has no effect outside the store.
//
// etcd refuses a txn of more than --max-txn-ops (128 by default) compares or operations in a branch.
// Only a GC of many attachments comes near: its commit is split at the store's step boundaries
// (each step one whole reservation or release), each part guarded by the revisions the previous
// part left, so every part is consistent on its own and a rerun of fn picks up what is left.
import type { NodeCache } from "./cache.ts";
import type { Compare, EtcdClient, KeyValue, RangeRequest, TxnOp } from "./transport.ts";

export const MAX_TXN_OPS = 128;

export type Tx = {
  /** The value fn sees for key (its own writes first); the key joins the txn's guard. */
  get(key: string): string | undefined;
  /** The same value without guarding the key (a look that decides nothing by itself). */
  peek(key: string): string | undefined;
  put(key: string, value: string): void;
  del(key: string): void;
  /** fn's writes so far (null: deleted). */
  written(): ReadonlyMap<string, string | null>;
  /** A complete, fresh (linearizable) read of ranges; the cache learns them; not guarded. */
  load(ranges: RangeRequest[]): Promise<KeyValue[][]>;
  /** Runs after a successful commit (local bookkeeping such as the round-robin cursor). */
  afterCommit(fn: () => void): void;
  /** Ends one self-contained change (a reservation, a release): a place the commit may be split. */
  step(): void;
  /** This attempt's scratch space for the store (what it chose to claim, what it loaded). */
  readonly scratch: Map<string, unknown>;
};

export type TxStats = { attempts: number; conflicts: number };

type Step = { touched: Set<string>; writes: Map<string, string | null> };

export class ConflictError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = "ConflictError";
  }
}

export type RunOptions = {
  cache: NodeCache;
  client: EtcdClient;
  /** The cache's owner column for a key (the node of a block), from its value. */
  ownerOf(key: string, value: string): string | undefined;
  maxAttempts: number;
  /** Errors fn may throw that say something about the world, not about fn's input: never revalidated. */
  isInfrastructure(e: unknown): boolean;
  stats: TxStats;
};

export async function runOptimistic<T>(o: RunOptions, fn: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    o.stats.attempts++;
    const base = new Map<string, { value: string; rev: bigint } | undefined>();
    const writes = new Map<string, string | null>();
    const steps: Step[] = [];
    let cur: Step = { touched: new Set(), writes: new Map() };
    const after: (() => void)[] = [];
    const read = (key: string) => {
      if (!base.has(key)) {
        const row = o.cache.get(key);
        base.set(key, row ? { value: row.value, rev: row.rev } : undefined);
      }
      cur.touched.add(key);
    };
    const tx: Tx = {
      get(key) {
        read(key);
        if (writes.has(key)) return writes.get(key) ?? undefined;
        return base.get(key)?.value;
      },
      peek(key) {
        if (writes.has(key)) return writes.get(key) ?? undefined;
        if (base.has(key)) return base.get(key)?.value;
        return o.cache.get(key)?.value;
      },
      written: () => writes,
      put(key, value) {
        read(key);
        writes.set(key, value);
        cur.writes.set(key, value);
      },
      del(key) {
        read(key);
        writes.set(key, null);
        cur.writes.set(key, null);
      },
      async load(ranges) {
        const res = await o.client.txn({ compare: [], success: ranges.map((r) => ({ range: r })), failure: [] });
        return ranges.map((r, i) => {
          const kvs = res.responses[i]?.kvs ?? [];
          o.cache.replaceRange(r.key, r.rangeEnd ?? `${r.key}\0`, kvs, (kv) => o.ownerOf(kv.key, kv.value));
          return kvs;
        });
      },
      afterCommit(f) {
        after.push(f);
      },
      step() {
        if (cur.touched.size || cur.writes.size) steps.push(cur);
        cur = { touched: new Set(), writes: new Map() };
      },
      scratch: new Map(),
    };

    let result: { value: T } | { error: unknown };
    try {
      result = { value: await fn(tx) };
    } catch (e) {
      if (o.isInfrastructure(e)) throw e;
      result = { error: e };
    }
    tx.step();
    // A failure that fn derived from the cache stands only if the cache was current: the commit
    // then only checks the guards. So does a transaction that wrote nothing (CHECK, DEL of nothing).
    const checkOnly = "error" in result || writes.size === 0;
    const ok = await commit(o, base, checkOnly ? steps.map((s) => ({ touched: s.touched, writes: new Map() })) : steps);
    if (ok) {
      if ("error" in result) throw result.error;
      for (const f of after) f();
      return result.value;
    }
    o.stats.conflicts++;
    if (attempt >= o.maxAttempts) {
      throw new ConflictError(`etcd store: ${attempt} attempts lost a compare-and-swap race; try again`);
    }
  }
}

/** Splits the steps into txns within etcd's limits; true when all of them committed. */
async function commit(
  o: RunOptions,
  base: Map<string, { value: string; rev: bigint } | undefined>,
  steps: Step[],
): Promise<boolean> {
  if (steps.every((s) => s.touched.size === 0)) return true;
  const known = new Map<string, bigint>(); // revisions left by parts already committed
  let i = 0;
  while (i < steps.length) {
    const touched = new Set<string>();
    const writes = new Map<string, string | null>();
    let j = i;
    for (; j < steps.length; j++) {
      const s = steps[j] as Step;
      const t = new Set([...touched, ...s.touched]);
      const w = new Set([...writes.keys(), ...s.writes.keys()]);
      if (j > i && (t.size > MAX_TXN_OPS || w.size > MAX_TXN_OPS)) break;
      for (const k of s.touched) touched.add(k);
      for (const [k, v] of s.writes) writes.set(k, v);
    }
    if (touched.size > MAX_TXN_OPS || writes.size > MAX_TXN_OPS) {
      throw new Error(`one change touches ${touched.size} keys, more than etcd's ${MAX_TXN_OPS} per txn`);
    }
    const order = [...touched];
    const compare: Compare[] = order.map((key) => ({
      key,
      target: "MOD",
      result: "EQUAL",
      value: known.get(key) ?? base.get(key)?.rev ?? 0n,
    }));
    const success: TxnOp[] = [...writes].map(([key, value]) =>
      value === null ? { del: { key } } : { put: { key, value } },
    );
    const failure: TxnOp[] = order.map((key) => ({ range: { key } }));
    const res = await o.client.txn({ compare, success, failure });
    if (!res.succeeded) {
      for (const [n, key] of order.entries()) {
        const kv = res.responses[n]?.kvs[0];
        if (kv) o.cache.set(key, kv.value, kv.modRevision, o.ownerOf(key, kv.value));
        else o.cache.delete(key);
      }
      return false;
    }
    for (const [key, value] of writes) {
      if (value === null) {
        o.cache.delete(key);
        known.set(key, 0n);
      } else {
        // Every put of one txn carries the txn's revision (etcd mvcc: one main revision per txn).
        o.cache.set(key, value, res.revision, o.ownerOf(key, value));
        known.set(key, res.revision);
      }
    }
    i = j;
  }
  return true;
}
