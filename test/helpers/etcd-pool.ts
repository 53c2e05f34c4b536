// Checks on a pool in etcd that the etcd tests run after every scenario: no address twice, the
// store's own invariants (admin.verify), and each node cache agreeing with etcd (a cached entry
// may be older than etcd's, never newer or different at the same revision).
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { existsSync } from "node:fs";
import {
  adminClient,
  listReservations,
  snapshot,
  verify,
  type ListedReservation,
  type Problem,
} from "../../cni/store/etcd/admin.ts";
import { layout } from "../../cni/store/etcd/schema.ts";
import { CACHE_FILE } from "../../cni/store/etcd/cache.ts";
import { parseEtcdStoreConfig, type EtcdStoreConfig } from "../../cni/store/etcd/config.ts";
import type { Cluster } from "./etcd-cluster.ts";

/** A store config for the cluster; once auth is on, as root (the tests' checks read every prefix). */
export function storeConfig(c: Cluster, extra: Record<string, unknown> = {}): EtcdStoreConfig {
  const tls = c.tls ? { tls: { ca: c.tls.ca, cert: c.tls.clientCert, key: c.tls.clientKey } } : {};
  const auth = c.rootPasswordFile ? { auth: { username: "root", passwordFile: c.rootPasswordFile } } : {};
  return parseEtcdStoreConfig({ type: "etcd", endpoints: c.endpoints, ...tls, ...auth, ...extra }, () => "test-host");
}

export type CacheDisagreement = { key: string; why: string };

/** Entries of a node cache that etcd contradicts: newer than etcd's, or different at the same revision. */
export async function cacheDisagreements(
  c: Cluster,
  cacheDir: string,
  conf = storeConfig(c),
): Promise<CacheDisagreement[]> {
  const file = join(cacheDir, CACHE_FILE);
  if (!existsSync(file)) return [];
  const db = new DatabaseSync(file, { readOnly: true });
  let rows: { key: string; value: string; mod_revision: string }[];
  try {
    rows = db.prepare("SELECT key, value, mod_revision FROM kv").all() as typeof rows;
  } finally {
    db.close();
  }
  const client = adminClient(conf, 60_000);
  const out: CacheDisagreement[] = [];
  try {
    for (const r of rows) {
      const res = await client.range({ key: r.key });
      const kv = res.kvs[0];
      const rev = BigInt(r.mod_revision);
      if (rev > res.revision) out.push({ key: r.key, why: `cached revision ${rev} is past etcd's ${res.revision}` });
      else if (kv && kv.modRevision === rev && kv.value !== r.value)
        out.push({ key: r.key, why: "different value at the same revision" });
      else if (kv && kv.modRevision < rev)
        out.push({ key: r.key, why: `cached revision ${rev} is newer than etcd's ${kv.modRevision}` });
    }
  } finally {
    client.close();
  }
  return out;
}

export type PoolCheck = { reservations: ListedReservation[]; duplicates: string[]; problems: Problem[] };

/**
 * Everything reserved; the addresses that more than one attachment key lists (an address key is
 * unique by construction, so duplicates are looked for where they could hide); verify's findings.
 */
export async function checkPool(c: Cluster, conf = storeConfig(c)): Promise<PoolCheck> {
  const client = adminClient(conf, 60_000);
  try {
    const reservations = await listReservations(client, conf.prefix);
    const s = await snapshot(client, layout(conf.prefix));
    const holders = new Map<string, string[]>();
    for (const a of s.attachments.values()) {
      for (const e of a.value.ips) {
        const k = `${a.network}/${e.ip}`;
        holders.set(k, [...(holders.get(k) ?? []), a.key]);
      }
    }
    const duplicates = [...holders].filter(([, h]) => h.length > 1).map(([k, h]) => `${k}: ${h.join(", ")}`);
    return { reservations, duplicates, problems: await verify(client, conf.prefix) };
  } finally {
    client.close();
  }
}
