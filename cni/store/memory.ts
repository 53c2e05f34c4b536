// An in-memory Store for unit tests of the allocator and commands (host-local's testing fake).
import { ipCmp, ipKey, type Ip } from "../ip.ts";
import { firstFreeInWalk } from "../range-set.ts";
import type { Attachment, Reservation, Store } from "./store.ts";

export type MemoryStore = Store & { reservations: Map<string, Reservation>; cursors: Map<string, Ip> };

const key = (ip: Ip) => Buffer.from(ipKey(ip)).toString("hex");
const owns = (r: Reservation, a: Attachment) =>
  r.containerId === a.containerId && (r.ifname === a.ifname || r.ifname === "");

export function memoryStore(initial: Reservation[] = []): MemoryStore {
  const reservations = new Map(initial.map((r) => [key(r.ip), r]));
  const cursors = new Map<string, Ip>();
  return {
    reservations,
    cursors,
    async transaction(fn) {
      const saved = { r: new Map(reservations), c: new Map(cursors) };
      try {
        return await fn();
      } catch (e) {
        reservations.clear();
        for (const [k, v] of saved.r) reservations.set(k, v);
        cursors.clear();
        for (const [k, v] of saved.c) cursors.set(k, v);
        throw e;
      }
    },
    async reserve(r) {
      if (reservations.has(key(r.ip))) return false;
      reservations.set(key(r.ip), r);
      cursors.set(r.rangeSet, r.ip);
      return true;
    },
    async releaseById(a) {
      const gone = [...reservations.values()].filter((r) => owns(r, a));
      for (const r of gone) reservations.delete(key(r.ip));
      return gone;
    },
    async getById(a) {
      return [...reservations.values()].filter((r) => r.containerId === a.containerId && r.ifname === a.ifname);
    },
    async nextFree(set) {
      return firstFreeInWalk(set, cursors.get(set.key), (lo, hi) => {
        for (let value = lo; value <= hi; value++) {
          if (!reservations.has(key({ family: set.family, value }))) return value;
        }
        return undefined;
      });
    },
    async listAttachments() {
      const seen = new Map<string, Attachment>();
      for (const r of [...reservations.values()].sort((a, b) => ipCmp(a.ip, b.ip))) {
        seen.set(`${r.containerId}\n${r.ifname}`, { containerId: r.containerId, ifname: r.ifname });
      }
      return [...seen.values()];
    },
  };
}
