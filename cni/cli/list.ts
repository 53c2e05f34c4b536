// `berth-ipam list`: every reservation (network, address, container ID, ifname, when), filtered
// by container ID, ifname or address.
import { formatIp } from "../ip.ts";
import type { ReservationFilter, StoredReservation } from "../store/inspect.ts";
import { json, table, timeText } from "./output.ts";
import { withStoreOf } from "./session.ts";
import { usageError } from "./errors.ts";
import { etcdCommands, onEtcd, type Network } from "./target.ts";

/** A reservation and its network; on the etcd store also the node whose attachment holds it. */
export type Held = { network: string; r: StoredReservation; node?: string };

/**
 * The contract of `list --json` (and of what release, gc and recover print): exactly these keys,
 * and on the etcd store (a pool of many nodes) `node` after them.
 */
export const heldJson = (h: Held) => ({
  network: h.network,
  address: formatIp(h.r.ip),
  containerID: h.r.containerId,
  ifname: h.r.ifname,
  reservedAt: h.r.reservedAt ? h.r.reservedAt.toISOString() : null,
  ...(h.node === undefined ? {} : { node: h.node }),
});

/** The list columns; a NODE column last when the rows come from the etcd store. */
export function heldTable(rows: readonly Held[]): string {
  const withNode = rows.some((h) => h.node !== undefined);
  const columns = [
    { header: "NETWORK" },
    { header: "ADDRESS" },
    { header: "CONTAINER ID" },
    { header: "IFNAME" },
    { header: "RESERVED AT" },
    ...(withNode ? [{ header: "NODE" }] : []),
  ];
  return table(
    columns,
    rows.map((h) => {
      const cells = [h.network, formatIp(h.r.ip), h.r.containerId, h.r.ifname || "-", timeText(h.r.reservedAt)];
      if (withNode) cells.push(h.node || "-");
      return cells;
    }),
  );
}

export async function held(nets: readonly Network[], filter: ReservationFilter): Promise<Held[]> {
  const out: Held[] = [];
  for (const net of nets) {
    const rs = await withStoreOf(net, (s) => s.read(() => s.reservations(filter)), []);
    for (const r of rs) out.push({ network: net.network, r });
  }
  return out;
}

export async function list(
  nets: readonly Network[],
  filter: ReservationFilter & { node?: string },
  asJson: boolean,
): Promise<string> {
  const [only] = nets;
  if (only && onEtcd(only)) return (await etcdCommands()).listEtcd(only, filter, asJson);
  if (filter.node !== undefined) throw usageError("--node goes with a network on the etcd store (--conf)");
  const rows = await held(nets, filter);
  return asJson ? json(rows.map(heldJson)) : heldTable(rows);
}
