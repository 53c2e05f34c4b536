// `berth-ipam recover --from-cni-cache DIR [--keep FILE] [--dry-run]`: rebuilds a network's
// reservations from what the node's runtimes already know, libcni's result cache (one file per
// attachment that a runtime ADDed and has not DELeted), optionally only the attachments a keep
// list names. A lost store is rebuilt, an intact one gets what it lacks; either way in one
// transaction that refuses the whole list if an address would get two holders.
import { formatIp } from "../ip.ts";
import { readCniCache } from "../store/cni-cache.ts";
import { RestoreConflictError, StoreError } from "../store/errors.ts";
import { planRecovery } from "../store/recover.ts";
import { restoreStore, type RestoreOutcome } from "../store/open.ts";
import type { Attachment, Reservation } from "../store/store.ts";
import { failure } from "./errors.ts";
import { heldJson, heldTable, type Held } from "./list.ts";
import { json } from "./output.ts";
import { ipamConfigOf, type Network } from "./target.ts";

export type RecoverOptions = {
  cacheDir: string;
  keep?: readonly Attachment[];
  dryRun: boolean;
  /** Replace a store whose database is damaged (it is set aside), instead of refusing. */
  rebuildCorrupt: boolean;
};

export type Recovered = {
  network: string;
  outcome: RestoreOutcome;
  /** Cache files, or their addresses, left out, and why. */
  skipped: { file: string; address?: string; reason: string }[];
  /** Without --conf the addresses are restored with no range set, as host-local records are taken over. */
  withRangeSets: boolean;
};

export async function recover(net: Network, opts: RecoverOptions): Promise<Recovered> {
  let scan: ReturnType<typeof readCniCache>;
  try {
    scan = readCniCache(opts.cacheDir, net.network);
  } catch (e) {
    throw failure(e instanceof Error ? e.message : String(e));
  }
  const rangeSets = net.request ? ipamConfigOf(net.request).rangeSets : undefined;
  const plan = planRecovery(scan.attachments, { rangeSets, keep: opts.keep });
  let outcome: RestoreOutcome;
  try {
    outcome = await restoreStore(net, plan.restore, { dryRun: opts.dryRun, rebuildCorrupt: opts.rebuildCorrupt });
  } catch (e) {
    if (e instanceof RestoreConflictError) throw failure(e.message);
    if (e instanceof StoreError) throw failure(`network ${net.network}: ${e.message}`);
    throw e;
  }
  return {
    network: net.network,
    outcome,
    skipped: [
      ...scan.skipped.map((s) => ({ file: s.file, reason: s.reason })),
      ...plan.skipped.map((s) => ({
        file: s.file,
        ...(s.address ? { address: formatIp(s.address) } : {}),
        reason: s.reason,
      })),
    ],
    withRangeSets: rangeSets !== undefined,
  };
}

const held = (network: string, rs: readonly Reservation[]): Held[] =>
  rs.map((r) => ({ network, r: { ...r, reservedAt: undefined } }));

export function recoverReport(x: Recovered, dryRun: boolean, asJson: boolean): string {
  const o = x.outcome;
  if (asJson) {
    return json({
      network: x.network,
      dryRun,
      mode: o.mode,
      restored: held(x.network, o.restored).map(heldJson),
      alreadyHeld: held(x.network, o.alreadyHeld).map(heldJson),
      skipped: x.skipped,
      setAside: o.setAside,
    });
  }
  const n = o.restored.length;
  const what = `${n} reservation${n === 1 ? "" : "s"}`;
  const how = o.mode === "merged" ? "into the network's store" : "into a new store for the network";
  const lines = [dryRun ? `would restore ${what} ${how} (dry run, nothing changed):` : `restored ${what} ${how}:`];
  const out = [`${lines.join("\n")}\n`, n > 0 ? heldTable(held(x.network, o.restored)) : ""];
  if (o.alreadyHeld.length > 0) out.push(`already held, left as they are: ${o.alreadyHeld.length}\n`);
  for (const f of o.setAside) out.push(`set aside: ${f}\n`);
  for (const s of x.skipped) out.push(`skipped ${s.file}${s.address ? ` (${s.address})` : ""}: ${s.reason}\n`);
  if (!x.withRangeSets && n > 0)
    out.push(
      "note: without --conf each address is restored with no range set (give --conf to file it under its set)\n",
    );
  return out.join("");
}
