// `berth-ipam list`: every reservation (network, address, container ID, ifname, when), filtered
// by container ID, ifname or address.
import { formatIp } from "../ip.ts";
import type { ReservationFilter, StoredReservation } from "../store/inspect.ts";
import { json, table, timeText } from "./output.ts";
import { withStoreOf } from "./session.ts";
import type { Network } from "./target.ts";

export type Held = { network: string; r: StoredReservation };

/** The contract of `list --json` (and of what release, gc and recover print): exactly these keys. */
export const heldJson = (h: Held) => ({
  network: h.network,
  address: formatIp(h.r.ip),
  containerID: h.r.containerId,
  ifname: h.r.ifname,
  reservedAt: h.r.reservedAt ? h.r.reservedAt.toISOString() : null,
});

export const heldTable = (rows: readonly Held[]): string =>
  table(
    [
      { header: "NETWORK" },
      { header: "ADDRESS" },
      { header: "CONTAINER ID" },
      { header: "IFNAME" },
      { header: "RESERVED AT" },
    ],
    rows.map((h) => [h.network, formatIp(h.r.ip), h.r.containerId, h.r.ifname || "-", timeText(h.r.reservedAt)]),
  );

export async function held(nets: readonly Network[], filter: ReservationFilter): Promise<Held[]> {
  const out: Held[] = [];
  for (const net of nets) {
    const rs = await withStoreOf(net, (s) => s.read(() => s.reservations(filter)), []);
    for (const r of rs) out.push({ network: net.network, r });
  }
  return out;
}

export async function list(nets: readonly Network[], filter: ReservationFilter, asJson: boolean): Promise<string> {
  const rows = await held(nets, filter);
  return asJson ? json(rows.map(heldJson)) : heldTable(rows);
}
