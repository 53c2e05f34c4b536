// `berth-ipam usage`: per network and range set, how many addresses it can hand out, how many
// are reserved and free, how many it skips (gateways, exclude) and where round-robin continues.
import { formatIp } from "../ip.ts";
import type { InspectableStore } from "../store/inspect.ts";
import { json, table } from "./output.ts";
import { withStoreOf } from "./session.ts";
import { fromRangeSet, holeCount, recordedSets, sizeOf, type SetView } from "./sets.ts";
import { etcdCommands, ipamConfigOf, onEtcd, type Network } from "./target.ts";

export type SetUsage = {
  network: string;
  rangeSet: string;
  size: bigint;
  reserved: number;
  free: bigint;
  /** Gateways and excluded addresses inside the set; undefined without the config. */
  excluded: bigint | undefined;
  cursor: string | undefined;
};

async function usageOf(net: Network, set: SetView, s: InspectableStore | undefined): Promise<SetUsage> {
  let reserved = 0;
  let inHoles = 0;
  let cursor: string | undefined;
  if (s) {
    for (const h of set.spans) reserved += await s.countReserved(set.family, h.lo, h.hi);
    for (const h of set.holes) inHoles += await s.countReserved(set.family, h.lo, h.hi);
    const c = (await s.cursors()).find((x) => x.rangeSet === set.key);
    cursor = c ? formatIp(c.ip) : undefined;
  }
  const size = sizeOf(set);
  return {
    network: net.network,
    rangeSet: set.key,
    size,
    reserved,
    // A reservation on an address the config now skips takes nothing from what the set can give.
    free: size - BigInt(reserved - inHoles),
    excluded: set.fromConfig ? holeCount(set) : undefined,
    cursor,
  };
}

async function networkUsage(net: Network, s: InspectableStore | undefined): Promise<SetUsage[]> {
  const sets = async () =>
    net.request ? ipamConfigOf(net.request).rangeSets.map(fromRangeSet) : s ? await recordedSets(s) : [];
  const all = async () => {
    const out: SetUsage[] = [];
    for (const set of await sets()) out.push(await usageOf(net, set, s));
    return out;
  };
  return s ? s.read(all) : all();
}

export async function usage(nets: readonly Network[], asJson: boolean): Promise<string> {
  const [only] = nets;
  if (only && onEtcd(only)) return (await etcdCommands()).usageEtcd(only, asJson);
  const rows: SetUsage[] = [];
  for (const net of nets) {
    rows.push(
      ...((await withStoreOf(net, (s) => networkUsage(net, s), undefined)) ?? (await networkUsage(net, undefined))),
    );
  }
  if (asJson) {
    return json(
      rows.map((u) => ({ network: u.network, rangeSet: u.rangeSet, size: u.size, reserved: u.reserved, free: u.free })),
    );
  }
  return table(
    [
      { header: "NETWORK" },
      { header: "RANGE SET" },
      { header: "SIZE", right: true },
      { header: "RESERVED", right: true },
      { header: "FREE", right: true },
      { header: "EXCLUDED", right: true },
      { header: "CURSOR" },
    ],
    rows.map((u) => [
      u.network,
      u.rangeSet,
      String(u.size),
      String(u.reserved),
      String(u.free),
      u.excluded === undefined ? "-" : String(u.excluded),
      u.cursor ?? "-",
    ]),
  );
}
