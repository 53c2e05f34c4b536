// The operator commands on a network whose store is etcd (`ipam.store.type: "etcd"` in the --conf
// file, which also says where etcd is and which node the config is for). Reads see the whole pool,
// every node's part of it, at one revision; every change is a revision-guarded txn, so a node
// adding or deleting pods at the same time either goes first (and the change is re-read) or sees
// its own compare fail and refreshes. Loaded only for such a network: it brings the etcd client.
import { join } from "node:path";
import { isKept } from "../commands.ts";
import { formatIp, ipEq, parseIp, type Ip } from "../ip.ts";
import type { RangeSet } from "../range-set.ts";
import {
  adminClient,
  listReservations,
  migrate,
  previewNodeRemoval,
  problemsOf,
  releaseAddress,
  releaseAttachments,
  removeNode,
  repair,
  snapshot,
  type ListedReservation,
  type MigrationConflict,
  type Snapshot,
} from "../store/etcd/admin.ts";
import { mapMembers, usableIn } from "../store/etcd/blocks.ts";
import { CorruptValue, decodeIp, keys, layout } from "../store/etcd/schema.ts";
import { EtcdError, type EtcdClient } from "../store/etcd/transport.ts";
import { StoreError } from "../store/errors.ts";
import type { ReservationFilter } from "../store/inspect.ts";
import type { Attachment } from "../store/store.ts";
import { CliError, failure } from "./errors.ts";
import { heldJson, heldTable, type Held } from "./list.ts";
import { json, table } from "./output.ts";
import type { Target } from "./release.ts";
import { fromRangeSet, holeCount, sizeOf, spans, inHoles } from "./sets.ts";
import { describe, type Shown } from "./show.ts";
import { ipamConfigOf, type EtcdNetwork } from "./target.ts";
import type { NetworkReport } from "./verify.ts";

/**
 * How long one operator command waits for etcd before it gives up (exit 1 naming the endpoint):
 * long enough for a leader election, short enough for a person at a terminal.
 */
const BUDGET_MS = 10_000;

/** etcd's failures as one line for the person: the network, the endpoint, etcd's words. */
function asFailure(net: EtcdNetwork, e: unknown): unknown {
  if (e instanceof CliError) return e;
  if (e instanceof EtcdError || e instanceof StoreError || e instanceof CorruptValue)
    return failure(`network ${net.network}: ${e.message}`);
  return e;
}

async function withAdmin<T>(net: EtcdNetwork, fn: (c: EtcdClient) => Promise<T>): Promise<T> {
  const client = adminClient(net.store, BUDGET_MS);
  try {
    return await fn(client);
  } catch (e) {
    throw asFailure(net, e);
  } finally {
    client.close();
  }
}

const dateOf = (text: string): Date | undefined => {
  const d = new Date(text);
  return text === "" || Number.isNaN(d.getTime()) ? undefined : d;
};

function heldOf(x: ListedReservation): Held[] {
  const ip = parseIp(x.address);
  if (!ip) return [];
  const r = {
    ip,
    containerId: x.containerID,
    ifname: x.ifname,
    rangeSet: x.rangeSet,
    reservedAt: dateOf(x.reservedAt),
  };
  return [{ network: x.network, node: x.node, r }];
}

/** As the local store filters: an ifname matches legacy ID-only records ("") too, as DEL does. */
const matches = (f: ReservationFilter, h: Held): boolean =>
  (f.containerId === undefined || h.r.containerId === f.containerId) &&
  (f.ifname === undefined || h.r.ifname === f.ifname || h.r.ifname === "") &&
  (f.ip === undefined || ipEq(h.r.ip, f.ip));

/** The network's attachments in a snapshot, every node's, with what they hold as list shows it. */
function attachmentsIn(s: Snapshot, network: string) {
  return [...s.attachments.values()]
    .filter((a) => a.network === network)
    .map((a) => ({
      node: a.node,
      attachment: { containerId: a.containerId, ifname: a.ifname } satisfies Attachment,
      held: a.value.ips.flatMap((e) =>
        heldOf({
          network,
          address: e.ip,
          containerID: a.containerId,
          ifname: a.ifname,
          node: a.node,
          rangeSet: e.rangeSet,
          reservedAt: e.reservedAt,
        }),
      ),
    }));
}

export async function listEtcd(
  net: EtcdNetwork,
  filter: ReservationFilter & { node?: string },
  asJson: boolean,
): Promise<string> {
  const rows = await withAdmin(net, (c) =>
    listReservations(c, net.store.prefix, { network: net.network, node: filter.node }),
  );
  const held = rows.flatMap(heldOf).filter((h) => matches(filter, h));
  return asJson ? json(held.map(heldJson)) : heldTable(held);
}

export async function showEtcd(net: EtcdNetwork, ip: Ip): Promise<Shown> {
  const sets = ipamConfigOf(net.request).rangeSets.map(fromRangeSet);
  // One read: the address's own key says who holds it.
  const key = keys.ip(layout(net.store.prefix), net.network, formatIp(ip));
  const v = await withAdmin(net, async (c) => {
    const kv = (await c.range({ key })).kvs[0];
    return kv ? decodeIp(key, kv.value) : undefined;
  });
  const holder = v
    ? { ip, containerId: v.containerID, ifname: v.ifname, rangeSet: v.rangeSet, reservedAt: dateOf(v.reservedAt) }
    : undefined;
  return describe(net, ip, holder, sets, v?.node);
}

/**
 * One range set's usage: the whole pool (node null: size is what the set can hand out, free
 * includes what no block holds yet), or one node's blocks (size: their addresses the set may hand
 * out; node "": blocks no node owns, freed by node removal).
 */
export type EtcdSetUsage = {
  network: string;
  rangeSet: string;
  node: string | null;
  blocks: number;
  size: bigint;
  reserved: number;
  free: bigint;
  /** Gateways and excluded addresses in the set (pool rows only). */
  excluded: bigint;
};

function setUsage(s: Snapshot, network: string, set: RangeSet): EtcdSetUsage[] {
  const view = fromRangeSet(set);
  let reserved = 0;
  let inHolesCount = 0;
  for (const x of s.ips.values()) {
    if (x.network !== network) continue;
    const ip = parseIp(x.address);
    if (!ip || !spans(view, ip)) continue;
    reserved++;
    if (inHoles(view, ip)) inHolesCount++;
  }
  const size = sizeOf(view);
  const pool: EtcdSetUsage = {
    network,
    rangeSet: set.key,
    node: null,
    blocks: 0,
    size,
    reserved,
    free: size - BigInt(reserved - inHolesCount),
    excluded: holeCount(view),
  };
  const perNode = new Map<string, EtcdSetUsage>();
  for (const b of s.blocks.values()) {
    if (b.network !== network) continue;
    const parts = usableIn(b.value.id, set);
    if (parts.length === 0) continue;
    pool.blocks++;
    const n = perNode.get(b.value.node) ?? {
      network,
      rangeSet: set.key,
      node: b.value.node,
      blocks: 0,
      size: 0n,
      reserved: 0,
      free: 0n,
      excluded: 0n,
    };
    n.blocks++;
    let capacity = 0n;
    for (const p of parts) capacity += p.hi - p.lo + 1n;
    let used = 0;
    for (const off of mapMembers(b.value.map)) {
      const v = b.value.id.base + BigInt(off);
      if (parts.some((p) => v >= p.lo && v <= p.hi)) used++;
    }
    n.size += capacity;
    n.reserved += used;
    n.free += capacity - BigInt(used);
    perNode.set(b.value.node, n);
  }
  const nodes = [...perNode.values()].sort((a, b) => ((a.node ?? "") < (b.node ?? "") ? -1 : 1));
  return [pool, ...nodes];
}

export async function usageEtcd(net: EtcdNetwork, asJson: boolean): Promise<string> {
  const sets = ipamConfigOf(net.request).rangeSets;
  const s = await withAdmin(net, (c) => snapshot(c, layout(net.store.prefix)));
  const rows = sets.flatMap((set) => setUsage(s, net.network, set));
  if (asJson) {
    return json(
      rows.map((u) => ({
        network: u.network,
        rangeSet: u.rangeSet,
        size: u.size,
        reserved: u.reserved,
        free: u.free,
        node: u.node,
        blocks: u.blocks,
      })),
    );
  }
  return table(
    [
      { header: "NETWORK" },
      { header: "RANGE SET" },
      { header: "NODE" },
      { header: "BLOCKS", right: true },
      { header: "SIZE", right: true },
      { header: "RESERVED", right: true },
      { header: "FREE", right: true },
      { header: "EXCLUDED", right: true },
    ],
    rows.map((u) => [
      u.network,
      u.rangeSet,
      u.node === null ? "(all)" : u.node || "(none)",
      String(u.blocks),
      String(u.size),
      String(u.reserved),
      String(u.free),
      u.node === null ? String(u.excluded) : "-",
    ]),
  );
}

/** What was freed, with the times and nodes the snapshot had for it. */
function freedAs(before: readonly Held[], freed: readonly { ip: Ip; containerId: string; ifname: string }[]): Held[] {
  return freed.flatMap((r) => {
    const h = before.find((b) => ipEq(b.r.ip, r.ip) && b.r.containerId === r.containerId && b.r.ifname === r.ifname);
    return h ? [h] : [];
  });
}

/** Releases attachments (several nodes' possibly), each in its own guarded txn; what was freed. */
async function releaseEach(
  net: EtcdNetwork,
  c: EtcdClient,
  chosen: ReturnType<typeof attachmentsIn>,
  dryRun: boolean,
): Promise<Held[]> {
  const before = chosen.flatMap((a) => a.held);
  if (dryRun) return before;
  const out: Held[] = [];
  for (const a of chosen) {
    out.push(...freedAs(before, await releaseAttachments(c, net.store, net.network, a.node, [a.attachment])));
  }
  return out;
}

export async function releaseEtcd(net: EtcdNetwork, target: Target, dryRun: boolean): Promise<Held[]> {
  return withAdmin(net, async (c) => {
    if ("address" in target) {
      const text = formatIp(target.address);
      if (dryRun) {
        const rows = await listReservations(c, net.store.prefix, { network: net.network });
        const held = rows.filter((r) => r.address === text).flatMap(heldOf);
        if (held.length === 0) throw failure(`${text} is not reserved in network ${net.network}`);
        return held;
      }
      const freed = await releaseAddress(c, net.store.prefix, net.network, target.address);
      if (!freed) throw failure(`${text} is not reserved in network ${net.network}`);
      return heldOf(freed);
    }
    const s = await snapshot(c, layout(net.store.prefix));
    const chosen = attachmentsIn(s, net.network).filter(
      (a) =>
        a.attachment.containerId === target.containerId &&
        (target.ifname === undefined || a.attachment.ifname === target.ifname || a.attachment.ifname === ""),
    );
    if (chosen.length === 0) {
      const which = target.ifname === undefined ? "" : ` with ifname ${target.ifname}`;
      throw failure(`no reservation for container ${target.containerId}${which} in network ${net.network}`);
    }
    return releaseEach(net, c, chosen, dryRun);
  });
}

/**
 * CNI GC by hand on etcd: like the runtime's GC, only the attachments of the config's node
 * (`store.node`). A kubelet's list of valid attachments speaks for its own node only: applied to
 * the whole pool, it would free every other node's pods. A node that is gone is `node remove`'s.
 */
export async function gcEtcd(net: EtcdNetwork, keep: readonly Attachment[], dryRun: boolean): Promise<Held[]> {
  return withAdmin(net, async (c) => {
    const s = await snapshot(c, layout(net.store.prefix));
    const chosen = attachmentsIn(s, net.network).filter(
      (a) => a.node === net.store.node && !isKept(keep, a.attachment),
    );
    return releaseEach(net, c, chosen, dryRun);
  });
}

export async function verifyEtcd(net: EtcdNetwork, fix: boolean): Promise<NetworkReport> {
  return withAdmin(net, async (c) => {
    const l = layout(net.store.prefix);
    const repaired = fix ? await repair(c, net.store.prefix, net.network) : [];
    const s = await snapshot(c, l);
    const problems = problemsOf(s, l).filter((p) => p.network === net.network);
    const reservations = [...s.ips.values()].filter((x) => x.network === net.network).length;
    return {
      network: net.network,
      state: "ok",
      reservations,
      problems: problems.map((p) => ({ problem: `${p.key}: ${p.problem}`, repairable: p.repair !== undefined })),
      repaired,
    };
  });
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `node remove NODE`: fences the node's blocks and frees its attachments in every pool under the prefix. */
export async function nodeRemove(net: EtcdNetwork, node: string, dryRun: boolean, asJson: boolean): Promise<string> {
  const done = await withAdmin(net, async (c) => {
    if (dryRun) {
      const p = await previewNodeRemoval(c, net.store.prefix, node);
      return { blocks: p.blocks, released: p.reservations };
    }
    const r = await removeNode(c, net.store, node);
    return { blocks: r.blocks, released: r.released };
  });
  const held = done.released.flatMap(heldOf);
  if (asJson)
    return json({ node, prefix: net.store.prefix, dryRun, blocks: done.blocks, released: held.map(heldJson) });
  const attachments = new Set(held.map((h) => `${h.network}\n${h.r.containerId}\n${h.r.ifname}`)).size;
  const what = `${plural(done.blocks.length, "block")} and ${plural(held.length, "address", "addresses")} of ${plural(attachments, "attachment")}`;
  if (done.blocks.length === 0 && held.length === 0) return `node ${node} holds nothing under ${net.store.prefix}\n`;
  const head = dryRun
    ? `would free ${what} of node ${node} under ${net.store.prefix} (dry run, nothing changed)`
    : `removed node ${node} under ${net.store.prefix}: freed ${what}`;
  const blocks = done.blocks.length
    ? `blocks${dryRun ? " to fence" : " fenced"}:\n${done.blocks.map((b) => `  ${b}\n`).join("")}`
    : "";
  return `${head}\n${blocks}${held.length ? heldTable(held) : ""}`;
}

export type MigrateOutcome = { out: string; failed?: string };

/**
 * `migrate`: copies the node's local (SQLite) reservations of the network, from
 * <from>/<network>/berth.db, into etcd as the config's node; all or nothing.
 */
export async function migrateEtcd(
  net: EtcdNetwork,
  from: string | undefined,
  dryRun: boolean,
  asJson: boolean,
): Promise<MigrateOutcome> {
  const dir = from ?? net.dataDir;
  let r: Awaited<ReturnType<typeof migrate>>;
  try {
    r = await migrate(net.store, net.network, net.dataDir, join(dir, net.network), { dryRun });
  } catch (e) {
    throw asFailure(net, e);
  }
  if (!r) throw failure(`no local store of network ${net.network} in ${dir}: nothing to migrate`);
  const copied = r.copied.flatMap(heldOf);
  const present = r.present.flatMap(heldOf);
  const refused = r.conflicts.length > 0;
  const failed = refused
    ? `migrate: ${plural(r.conflicts.length, "address", "addresses")} of network ${net.network} held otherwise in etcd; nothing copied`
    : undefined;
  if (asJson) {
    const out = json({
      network: net.network,
      node: net.store.node,
      dryRun,
      copied: refused ? [] : copied.map(heldJson),
      present: present.map(heldJson),
      conflicts: r.conflicts,
    });
    return { out, failed };
  }
  if (refused) return { out: conflictTable(r.conflicts), failed };
  const lines: string[] = [];
  const n = plural(copied.length, "reservation");
  if (copied.length === 0) lines.push(`nothing to copy: every local reservation of network ${net.network} is in etcd`);
  else if (dryRun)
    lines.push(
      `would copy ${n} of network ${net.network} into etcd as node ${net.store.node} (dry run, nothing changed):`,
    );
  else lines.push(`copied ${n} of network ${net.network} into etcd as node ${net.store.node}:`);
  let out = `${lines.join("\n")}\n`;
  if (copied.length) out += heldTable(copied);
  if (present.length && copied.length) out += `${plural(present.length, "reservation")} already in etcd\n`;
  return { out };
}

function conflictTable(cs: readonly MigrationConflict[]): string {
  return `conflicts (nothing copied):\n${table(
    [{ header: "ADDRESS" }, { header: "CONTAINER ID" }, { header: "IFNAME" }, { header: "HELD IN ETCD BY" }],
    cs.map((c) => [c.address, c.containerID, c.ifname || "-", c.holder]),
  )}`;
}
