// `berth-ipam show ADDRESS`: who holds it, or that it is free, excluded, a gateway or outside
// every range, and in which range set; for each selected network.
import { formatIp, ipEq, type Ip } from "../ip.ts";
import type { InspectableStore, StoredReservation } from "../store/inspect.ts";
import { fields, json, timeText } from "./output.ts";
import { withStoreOf } from "./session.ts";
import { fromRangeSet, inHoles, recordedSets, spans, type SetView } from "./sets.ts";
import { etcdCommands, ipamConfigOf, onEtcd, type Network } from "./target.ts";

export type AddressState = "reserved" | "free" | "excluded" | "gateway" | "outside";

export type Shown = {
  network: string;
  address: string;
  state: AddressState;
  /** The range set it belongs to; null when outside every one. */
  rangeSet: string | null;
  containerID?: string;
  ifname?: string;
  reservedAt?: string | null;
  /** On the etcd store: the node whose attachment holds it. */
  node?: string;
  /** Whether gateways and excluded addresses were known (from --conf). */
  configKnown: boolean;
  /** A reservation the config no longer allows. */
  note?: string;
};

async function showIn(net: Network, ip: Ip, s: InspectableStore | undefined): Promise<Shown> {
  const read = async () => {
    const holder = s ? (await s.reservations({ ip }))[0] : undefined;
    const sets: SetView[] = net.request
      ? ipamConfigOf(net.request).rangeSets.map(fromRangeSet)
      : s
        ? await recordedSets(s)
        : [];
    return { holder, sets };
  };
  const { holder, sets } = s ? await s.read(read) : await read();
  return describe(net, ip, holder, sets);
}

/** The address's state from its holder (if any) and the network's range sets. */
export function describe(
  net: Network,
  ip: Ip,
  holder: StoredReservation | undefined,
  sets: readonly SetView[],
  node?: string,
): Shown {
  const set = sets.find((v) => spans(v, ip)) ?? (holder ? sets.find((v) => v.key === holder.rangeSet) : undefined);
  const base = {
    network: net.network,
    address: formatIp(ip),
    rangeSet: set?.key ?? null,
    configKnown: net.request !== undefined,
  };
  if (holder) {
    const shown: Shown = {
      ...base,
      state: "reserved",
      containerID: holder.containerId,
      ifname: holder.ifname,
      reservedAt: holder.reservedAt?.toISOString() ?? null,
      ...(node === undefined ? {} : { node }),
    };
    if (net.request && !set) shown.note = "outside every range set of the config";
    else if (net.request && set && inHoles(set, ip)) shown.note = "excluded or a gateway in the config now";
    return shown;
  }
  if (sets.some((v) => v.gateways.some((g) => ipEq(g, ip)))) return { ...base, state: "gateway" };
  if (!set) return { ...base, state: "outside" };
  return { ...base, state: inHoles(set, ip) ? "excluded" : "free" };
}

const STATE_TEXT: Record<AddressState, string> = {
  reserved: "reserved",
  free: "free",
  excluded: "excluded (never handed out)",
  gateway: "a gateway (never handed out)",
  outside: "outside every range set",
};

function text(x: Shown): string {
  const pairs: [string, string][] = [
    ["network", x.network],
    ["address", x.address],
    ["range set", x.rangeSet ?? "-"],
    ["state", STATE_TEXT[x.state]],
  ];
  if (x.state === "reserved") {
    pairs.push(["container ID", x.containerID ?? ""], ["ifname", x.ifname || "-"]);
    if (x.node !== undefined) pairs.push(["node", x.node]);
    pairs.push(["reserved at", timeText(x.reservedAt ? new Date(x.reservedAt) : undefined)]);
    if (x.note) pairs.push(["note", x.note]);
  }
  if (!x.configKnown && x.state !== "reserved")
    pairs.push(["note", "range sets as the store recorded them; gateways and exclude need --conf"]);
  return fields(pairs);
}

export async function show(nets: readonly Network[], ip: Ip, asJson: boolean): Promise<string> {
  const out: Shown[] = [];
  for (const net of nets) {
    if (onEtcd(net)) {
      out.push(await (await etcdCommands()).showEtcd(net, ip));
      continue;
    }
    out.push((await withStoreOf(net, (s) => showIn(net, ip, s), undefined)) ?? (await showIn(net, ip, undefined)));
  }
  return asJson ? json(out) : out.map(text).join("\n");
}
