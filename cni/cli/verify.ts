// `berth-ipam verify [--repair]`: the store's own integrity check and the invariants every store
// keeps: no address outside its range set, no attachment with two addresses in one set, every
// cursor inside its set, and (the SQLite store) no host-local record file left out of the store.
// --repair fixes, in the store's write transaction, what needs no guess, and says what it did.
import { formatIp } from "../ip.ts";
import { StoreError } from "../store/errors.ts";
import type { Cursor, InspectableStore, StoredReservation } from "../store/inspect.ts";
import { inspectStore, openInspectable, type StoreHealth } from "../store/open.ts";
import { json } from "./output.ts";
import { fromKey, spans, type SetView } from "./sets.ts";
import { etcdCommands, onEtcd, type Network } from "./target.ts";

export type Problem = { problem: string; repairable: boolean };

export type NetworkReport = {
  network: string;
  /** absent: no store yet (nothing to check); lost or corrupt: refused by every command. */
  state: StoreHealth["state"];
  reservations: number;
  problems: Problem[];
  repaired: string[];
};

const who = (r: StoredReservation) => `${r.containerId}/${r.ifname || "(any)"}`;

/** fromKey, once per key (a store holds few sets and many reservations). */
function keyParser(): (key: string) => SetView | undefined {
  const seen = new Map<string, SetView | undefined>();
  return (key) => {
    if (!seen.has(key)) seen.set(key, fromKey(key));
    return seen.get(key);
  };
}

/** A cursor the walk cannot use: its set's key is not one, or it points outside the set. */
const badCursor = (c: Cursor): boolean => {
  const set = fromKey(c.rangeSet);
  return !set || !spans(set, c.ip);
};

/** The invariants, from the reservations and cursors alone: the same for every store. */
export function invariantProblems(rs: readonly StoredReservation[], cursors: readonly Cursor[]): Problem[] {
  const out: Problem[] = [];
  const perSet = new Map<string, StoredReservation[]>();
  const setOf = keyParser();
  for (const r of rs) {
    if (r.rangeSet === "") continue; // taken over from host-local: recorded without a set
    const set = setOf(r.rangeSet);
    if (!set)
      out.push({
        problem: `${formatIp(r.ip)} (${who(r)}) names no valid range set: ${JSON.stringify(r.rangeSet)}`,
        repairable: false,
      });
    else if (!spans(set, r.ip))
      out.push({ problem: `${formatIp(r.ip)} (${who(r)}) is outside its range set ${r.rangeSet}`, repairable: false });
    const k = `${r.containerId}\n${r.ifname}\n${r.rangeSet}`;
    const group = perSet.get(k);
    if (group) group.push(r);
    else perSet.set(k, [r]);
  }
  for (const group of perSet.values()) {
    const [first] = group;
    if (!first || group.length < 2) continue;
    out.push({
      problem: `attachment ${who(first)} holds ${group.length} addresses in range set ${first.rangeSet}: ${group.map((r) => formatIp(r.ip)).join(", ")}`,
      repairable: false,
    });
  }
  for (const c of cursors.filter(badCursor)) {
    out.push({
      problem: `the cursor of range set ${c.rangeSet} is at ${formatIp(c.ip)}, outside the set`,
      repairable: true,
    });
  }
  return out;
}

async function check(s: InspectableStore): Promise<{ reservations: number; problems: Problem[] }> {
  return s.read(async () => {
    const rs = await s.reservations();
    return {
      reservations: rs.length,
      problems: [...(await s.checkStorage()), ...invariantProblems(rs, await s.cursors())],
    };
  });
}

async function repair(s: InspectableStore): Promise<string[]> {
  return s.transaction(async () => {
    const done = await s.repairStorage();
    for (const c of (await s.cursors()).filter(badCursor)) {
      await s.dropCursor(c.rangeSet);
      done.push(
        `reset the cursor of range set ${c.rangeSet} (was ${formatIp(c.ip)}): its walk restarts at the set's first address`,
      );
    }
    return done;
  });
}

/**
 * The store's health check. It opens the database without waiting for a lock; while the runtime
 * is busy with the store it may find it busy, and then the full check below (which waits, and
 * refuses a lost or corrupt store the same way) decides.
 */
function healthOf(net: Network): StoreHealth {
  try {
    return inspectStore(net);
  } catch (e) {
    if (e instanceof StoreError && e.kind === "busy") return { state: "ok", path: "", storeId: undefined };
    throw e;
  }
}

export async function verifyNetwork(net: Network, fix: boolean): Promise<NetworkReport> {
  if (onEtcd(net)) return (await etcdCommands()).verifyEtcd(net, fix);
  const health = healthOf(net);
  const report: NetworkReport = {
    network: net.network,
    state: health.state,
    reservations: 0,
    problems: [],
    repaired: [],
  };
  if (health.state === "lost") report.problems.push({ problem: health.message, repairable: false });
  if (health.state === "corrupt")
    report.problems.push({ problem: `store corrupt: ${health.path}: ${health.detail}`, repairable: false });
  if (health.state !== "ok") return report;
  let s: InspectableStore | undefined;
  try {
    s = openInspectable(net);
    if (!s) return { ...report, state: "absent" };
    let found = await check(s);
    if (fix && found.problems.some((p) => p.repairable)) {
      report.repaired = await repair(s);
      found = await check(s);
    }
    report.reservations = found.reservations;
    report.problems = found.problems;
  } catch (e) {
    if (!(e instanceof StoreError)) throw e;
    if (e.kind === "lost" || e.kind === "corrupt") report.state = e.kind;
    const problem = e.kind === "corrupt" ? `store corrupt: ${e.where}: ${e.detail}` : e.message;
    report.problems.push({ problem, repairable: false });
  } finally {
    s?.close();
  }
  return report;
}

function text(r: NetworkReport): string {
  const lines = r.repaired.map((d) => `${r.network}: repaired: ${d}`);
  if (r.state === "absent") lines.push(`${r.network}: no store yet (nothing reserved)`);
  else if (r.problems.length === 0)
    lines.push(`${r.network}: ok (${r.reservations} reservation${r.reservations === 1 ? "" : "s"})`);
  else {
    lines.push(`${r.network}: ${r.problems.length} problem${r.problems.length === 1 ? "" : "s"}`);
    for (const p of r.problems) lines.push(`  ${p.problem}${p.repairable ? " (--repair fixes it)" : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

export const verifyOutput = (reports: readonly NetworkReport[], asJson: boolean): string =>
  asJson ? json(reports) : reports.map(text).join("");
