// `berth-ipam release` and `berth-ipam gc --keep FILE`: free reservations the runtime will never
// DEL (a leaked attachment), in the store's write transaction, so a runtime adding pods at the same
// time waits for it or goes first, never interleaves. --dry-run shows the same list and changes
// nothing. An address or attachment the store does not have is a failure, never a silent no-op.
import { readFileSync } from "node:fs";
import { CniError } from "../../shared/cni/errors.ts";
import { errorMessage } from "../../shared/json.ts";
import { attachmentList, isKept } from "../commands.ts";
import { formatIp, type Ip } from "../ip.ts";
import type { InspectableStore, StoredReservation } from "../store/inspect.ts";
import type { Attachment } from "../store/store.ts";
import { failure } from "./errors.ts";
import { heldJson, heldTable, type Held } from "./list.ts";
import { json } from "./output.ts";
import { withStoreOf } from "./session.ts";
import { etcdCommands, onEtcd, type Network } from "./target.ts";

export type Target = { address: Ip } | { containerId: string; ifname?: string };

/** Distinct attachments of these reservations, in their order. */
function attachmentsOf(rs: readonly StoredReservation[]): Attachment[] {
  const seen = new Map<string, Attachment>();
  for (const r of rs) seen.set(`${r.containerId}\n${r.ifname}`, { containerId: r.containerId, ifname: r.ifname });
  return [...seen.values()];
}

/**
 * Runs the choice and the release in one transaction, or, for a dry run, only the choice on one
 * consistent read. choose returns the reservations to free; each attachment among them is released
 * whole (releaseById), each lone address by itself.
 */
async function freeing(
  net: Network,
  dryRun: boolean,
  choose: (s: InspectableStore) => Promise<{ attachments: Attachment[]; addresses: Ip[] }>,
): Promise<Held[]> {
  const held = (rs: readonly StoredReservation[]) => rs.map((r) => ({ network: net.network, r }));
  return withStoreOf(
    net,
    async (s) => {
      // What releaseById(a) takes: a's own records, and the legacy ID-only records of a's container.
      const preview = async () => {
        const c = await choose(s);
        const addresses = new Set(c.addresses.map(formatIp));
        const attachments = new Set(c.attachments.map((a) => `${a.containerId}\n${a.ifname}`));
        const containers = new Set(c.attachments.map((a) => a.containerId));
        return (await s.reservations()).filter(
          (r) =>
            addresses.has(formatIp(r.ip)) ||
            attachments.has(`${r.containerId}\n${r.ifname}`) ||
            (r.ifname === "" && containers.has(r.containerId)),
        );
      };
      if (dryRun) return held(await s.read(preview));
      return held(
        await s.transaction(async () => {
          const before = await preview(); // with their times, for the report
          const c = await choose(s);
          for (const a of c.attachments) await s.releaseById(a);
          for (const ip of c.addresses) await s.releaseAddress(ip);
          return before;
        }),
      );
    },
    [],
  );
}

export async function release(net: Network, target: Target, dryRun: boolean): Promise<Held[]> {
  if (onEtcd(net)) return (await etcdCommands()).releaseEtcd(net, target, dryRun);
  const freed = await freeing(net, dryRun, async (s) => {
    if ("address" in target) {
      if ((await s.reservations({ ip: target.address })).length === 0)
        throw failure(`${formatIp(target.address)} is not reserved in network ${net.network}`);
      return { attachments: [], addresses: [target.address] };
    }
    const rs = await s.reservations({ containerId: target.containerId, ifname: target.ifname });
    if (rs.length === 0) {
      const which = target.ifname === undefined ? "" : ` with ifname ${target.ifname}`;
      throw failure(`no reservation for container ${target.containerId}${which} in network ${net.network}`);
    }
    return { attachments: attachmentsOf(rs), addresses: [] };
  });
  if (freed.length === 0) throw failure(`network ${net.network} has no store in ${net.dataDir}`);
  return freed;
}

/** The attachments to keep: a JSON list of {containerID, ifname}, as cni.dev/valid-attachments. */
export function readKeepFile(file: string): Attachment[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw failure(`--keep ${file}: ${errorMessage(e)}`);
  }
  try {
    return attachmentList(parsed, `--keep ${file}`);
  } catch (e) {
    throw e instanceof CniError ? failure(e.message.replace(/^GC requires /, "")) : e;
  }
}

/** CNI GC for a person: every attachment of the network not kept is released. */
export async function gc(net: Network, keep: readonly Attachment[], dryRun: boolean): Promise<Held[]> {
  if (onEtcd(net)) return (await etcdCommands()).gcEtcd(net, keep, dryRun);
  return freeing(net, dryRun, async (s) => {
    const attachments = attachmentsOf(await s.reservations()).filter((a) => !isKept(keep, a));
    return { attachments, addresses: [] };
  });
}

export function report(freed: readonly Held[], dryRun: boolean, asJson: boolean): string {
  if (asJson) return json(freed.map(heldJson));
  const n = freed.length;
  const what = `${n} address${n === 1 ? "" : "es"}`;
  if (n === 0) return dryRun ? "nothing would be released\n" : "nothing released\n";
  return `${dryRun ? `would release ${what} (dry run, nothing changed)` : `released ${what}`}:\n${heldTable(freed)}`;
}
