// berth-ipam's commands. The skel in shared/cni has already checked the environment, the
// network name and the version; each command here reads like the spec's description of it.
import type { CniHandlers, CniRequest } from "../shared/cni/dispatch.ts";
import { CniError, ErrorCode, internal, invalidConfig, notAvailable, unknownContainer } from "../shared/cni/errors.ts";
import { prevResultAddresses, type IpamResult, type IpConfig } from "../shared/cni/result.ts";
import { isJsonObject } from "../shared/json.ts";
import { allocate, type Want } from "./allocator.ts";
import { dataDirOf, loadIpamConfig, storeConfigOf, type IpamConfig } from "./config.ts";
import { formatIp, ipEq, parseIp } from "./ip.ts";
import { rangeSetContains, walkOrder, type RangeSet } from "./range-set.ts";
import { readResolvConf } from "./resolv-conf.ts";
import type { StoreLocation } from "./store/open.ts";
import type { Attachment, Store } from "./store/store.ts";
import { withExistingStore, withStore } from "./with-store.ts";

const attachment = (req: CniRequest): Attachment => ({ containerId: req.env.containerId, ifname: req.env.ifname });
/**
 * DEL, CHECK and GC need only the network, dataDir and the store section: they work with a broken
 * or changed ipam config otherwise.
 */
const locationOf = (req: CniRequest, conf?: IpamConfig): StoreLocation => ({
  dataDir: conf?.dataDir ?? dataDirOf(req.config),
  network: req.name,
  store: conf?.store ?? storeConfigOf(req.config),
});

// STATUS is a probe a runtime asks before it sends ADDs: say within a second of the exec (process
// start included) whether an ADD could be served now, rather than spend an ADD's whole budget.
const STATUS_BUDGET_MS = 900;

/**
 * One address per range set. A repeated ADD of the same attachment keeps the addresses it already
 * holds while the config still allows them (host-local refuses with "duplicate allocation"), and
 * never fails for one the config no longer allows (now excluded, or a gateway): that one is freed
 * and the set hands out another. Only an address the user requested can fail the ADD. It all
 * happens in one transaction: on any error nothing changes.
 */
async function allocateAll(store: Store, conf: IpamConfig, att: Attachment): Promise<IpConfig[]> {
  const held = await store.releaseById(att);
  const requested = [...conf.requested];
  const out: IpConfig[] = [];
  for (const [idx, set] of conf.rangeSets.entries()) {
    const i = requested.findIndex((ip) => rangeSetContains(set, ip));
    const required = i >= 0 ? requested.splice(i, 1)[0] : undefined;
    const want: Want = required ? { required } : { preferred: held.find((r) => rangeSetContains(set, r.ip))?.ip };
    try {
      out.push(await allocate(store, set, att, want));
    } catch (e) {
      // host-local's wording for allocation failures; anything else (a store error, I/O) passes as is.
      if (!(e instanceof CniError) || e.code !== ErrorCode.Internal) throw e;
      throw internal(`failed to allocate for range ${idx}: ${e.message}`);
    }
  }
  if (requested.length > 0) {
    throw internal(`failed to allocate all requested IPs: ${requested.map(formatIp).join(" ")}`);
  }
  return out;
}

async function add(req: CniRequest): Promise<IpamResult> {
  const conf = loadIpamConfig(req);
  const dns = conf.resolvConf ? readResolvConf(conf.resolvConf) : {};
  const ips = await withStore(locationOf(req, conf), (s) => allocateAll(s, conf, attachment(req)));
  return { ips, routes: conf.routes, dns };
}

/**
 * DEL needs only the attachment: it works with a broken or changed ipam config, and on unknowns.
 * A lost store holds nothing to free: DEL succeeds and changes nothing.
 */
async function del(req: CniRequest): Promise<void> {
  await withExistingStore(locationOf(req), (s) => s.releaseById(attachment(req)), [], {
    whenLost: "nothing-stored",
  });
}

/** CHECK: the attachment holds addresses, and exactly the ones prevResult says it was given. */
async function check(req: CniRequest): Promise<void> {
  const att = attachment(req);
  const held = await withExistingStore(locationOf(req), (s) => s.getById(att), []);
  if (held.length === 0)
    throw unknownContainer(`berth-ipam: failed to find address added by container ${att.containerId}`);
  if (req.config.prevResult === undefined) return;
  const prev = prevResultAddresses(req.config.prevResult).map((a) => parseIp(a));
  for (const ip of prev) {
    if (!ip || !held.some((r) => ipEq(r.ip, ip))) {
      throw invalidConfig(
        `berth-ipam: address ${ip ? formatIp(ip) : "(invalid)"} in prevResult is not reserved for ${att.containerId}/${att.ifname}`,
      );
    }
  }
  for (const r of held) {
    if (!prev.some((ip) => ip && ipEq(ip, r.ip))) {
      throw invalidConfig(
        `berth-ipam: address ${formatIp(r.ip)} reserved for ${att.containerId}/${att.ifname} is missing from prevResult`,
      );
    }
  }
}

/**
 * A list of attachments to keep, as GC gets it in cni.dev/valid-attachments (SPEC.md GC; a nil
 * list is null) and `berth-ipam gc --keep` reads it from a file; `where` names it in messages.
 */
export function attachmentList(list: unknown, where: string): Attachment[] {
  if (list === null) return [];
  if (!Array.isArray(list)) throw invalidConfig(`GC requires ${where} (a list of {containerID, ifname})`);
  return list.map((o, i) => {
    if (!isJsonObject(o) || typeof o.containerID !== "string" || typeof o.ifname !== "string") {
      throw invalidConfig(`${where}[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { containerId: o.containerID, ifname: o.ifname };
  });
}

/** GC keeps an attachment that is valid, and a legacy ID-only record of a valid container. */
export const isKept = (valid: readonly Attachment[], a: Attachment): boolean =>
  valid.some((v) => v.containerId === a.containerId && (v.ifname === a.ifname || a.ifname === ""));

async function gc(req: CniRequest): Promise<void> {
  const valid = attachmentList(req.config["cni.dev/valid-attachments"], "cni.dev/valid-attachments");
  await withExistingStore(
    locationOf(req),
    async (s) => {
      for (const a of await s.listAttachments()) if (!isKept(valid, a)) await s.releaseById(a);
    },
    undefined,
  );
}

/**
 * STATUS: an ADD could be served now, i.e. every range set still has a free address. On a cluster
 * store that is also "etcd has quorum and answers" (a linearizable read, which a member without
 * quorum cannot serve): not being able to reach it is code 50 (SPEC.md STATUS), within about 1 s.
 */
async function status(req: CniRequest): Promise<void> {
  const conf = loadIpamConfig(req);
  const cluster = conf.store.type !== "local";
  let exhausted: RangeSet | undefined;
  try {
    exhausted = await withExistingStore(
      locationOf(req, conf),
      async (s) => {
        for (const set of conf.rangeSets) if (!(await s.nextFree(set))) return set;
        return undefined;
      },
      // Nothing stored yet: only a set that is all holes (gateways, exclude) has nothing to give.
      conf.rangeSets.find((set) => walkOrder(set, undefined).length === 0),
      // A lost store serves no ADD until it is recovered: code 50 with the lost store's message.
      { ...(cluster ? { budgetMs: STATUS_BUDGET_MS, readOnly: true } : {}), whenLost: "unavailable" },
    );
  } catch (e) {
    if (cluster && e instanceof CniError && e.code === ErrorCode.TryAgainLater) {
      throw notAvailable(`berth-ipam cannot serve ADD now: ${e.message}`);
    }
    throw e;
  }
  if (exhausted) throw notAvailable(`no IP addresses available in range set: ${exhausted.key}`);
}

export const commands: CniHandlers = { add, del, check, gc, status };
