// What berth keeps in etcd, under <prefix>/v1/ (JSON values):
//   pools/<network>                               {"blockSize":26,"blockSize6":122}: fixed by the first claim
//   blocks/<network>/<base>-<len>                 {"cidr","node","epoch","map","emptiedAt"?}: "" node = free
//   ips/<network>/<address>                       {"node","containerID","ifname","rangeSet","reservedAt"}
//   attachments/<node>/<network>/<id>/<ifname>    {"ips":[{"ip","block","rangeSet","reservedAt"}]}
// The block's bitmap, the address keys and the attachment keys always change together in one txn,
// so each is the index of the others (verify checks it). Attachments start with the node so one
// node's GC is one range read; addresses are keyed by network because two networks may reuse a
// subnet on different L2 domains, as they may with the local store.
import type { Family } from "../../ip.ts";
import { decodeMap, emptyMap, encodeMap, parseBlockName, type BlockId } from "./blocks.ts";
import { isJsonObject } from "../../../shared/json.ts";
import { prefixEnd } from "./transport.ts";

export type Layout = { root: string };

export const layout = (prefix: string): Layout => ({ root: `${prefix.replace(/\/+$/, "")}/v1/` });

export const keys = {
  pool: (l: Layout, net: string) => `${l.root}pools/${net}`,
  pools: (l: Layout) => `${l.root}pools/`,
  blocks: (l: Layout, net: string) => `${l.root}blocks/${net}/`,
  allBlocks: (l: Layout) => `${l.root}blocks/`,
  block: (l: Layout, net: string, name: string) => `${l.root}blocks/${net}/${name}`,
  ips: (l: Layout, net: string) => `${l.root}ips/${net}/`,
  allIps: (l: Layout) => `${l.root}ips/`,
  ip: (l: Layout, net: string, text: string) => `${l.root}ips/${net}/${text}`,
  nodeAttachments: (l: Layout, node: string) => `${l.root}attachments/${node}/`,
  allAttachments: (l: Layout) => `${l.root}attachments/`,
  attachments: (l: Layout, node: string, net: string) => `${l.root}attachments/${node}/${net}/`,
  attachment: (l: Layout, node: string, net: string, id: string, ifname: string) =>
    `${l.root}attachments/${node}/${net}/${id}/${ifname}`,
};

/** A key range [key, rangeEnd) covering every key under a prefix. */
export const under = (prefix: string) => ({ key: prefix, rangeEnd: prefixEnd(prefix) });

export type PoolValue = { blockSize: number; blockSize6: number };
export type BlockValue = {
  cidr: string;
  /** "" while the block belongs to no node (freed by node removal). */
  node: string;
  /** Goes up by one whenever the block changes hands, so an old owner's view is never current. */
  epoch: number;
  map: Uint8Array;
  /** When the block last became empty (ms since the epoch); other nodes may take it after a grace period. */
  emptiedAt?: number;
};
export type IpValue = { node: string; containerID: string; ifname: string; rangeSet: string; reservedAt: string };
export type AttachmentIp = { ip: string; block: string; rangeSet: string; reservedAt: string };
export type AttachmentValue = { ips: AttachmentIp[] };

/** A value in etcd that is not what berth wrote: nothing is allocated on top of it. */
export class CorruptValue extends Error {
  readonly key: string;
  constructor(key: string, why: string) {
    super(`corrupt value at ${key}: ${why}`);
    this.name = "CorruptValue";
    this.key = key;
  }
}

function parse(key: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CorruptValue(key, "not JSON");
  }
  if (!isJsonObject(v)) throw new CorruptValue(key, "not a JSON object");
  return v;
}

const str = (key: string, o: Record<string, unknown>, f: string): string => {
  const v = o[f];
  if (typeof v !== "string") throw new CorruptValue(key, `${f} is not a string`);
  return v;
};
const int = (key: string, o: Record<string, unknown>, f: string): number => {
  const v = o[f];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new CorruptValue(key, `${f} is not an integer`);
  return v;
};

export function decodePool(key: string, text: string): PoolValue {
  const o = parse(key, text);
  return { blockSize: int(key, o, "blockSize"), blockSize6: int(key, o, "blockSize6") };
}

export const encodePool = (p: PoolValue): string => JSON.stringify(p);

export function decodeBlock(key: string, text: string): BlockValue & { id: BlockId } {
  const o = parse(key, text);
  const cidr = str(key, o, "cidr");
  const id = parseBlockName(cidr.replace("/", "-"));
  if (!id) throw new CorruptValue(key, `bad cidr ${cidr}`);
  const map = decodeMap(str(key, o, "map"));
  if (map.length !== emptyMap(id).length) throw new CorruptValue(key, `map of ${map.length} bytes for a /${id.prefix}`);
  const out: BlockValue & { id: BlockId } = { id, cidr, node: str(key, o, "node"), epoch: int(key, o, "epoch"), map };
  if (o.emptiedAt !== undefined) out.emptiedAt = int(key, o, "emptiedAt");
  return out;
}

export function encodeBlock(b: BlockValue): string {
  const o: Record<string, unknown> = { cidr: b.cidr, node: b.node, epoch: b.epoch, map: encodeMap(b.map) };
  if (b.emptiedAt !== undefined) o.emptiedAt = b.emptiedAt;
  return JSON.stringify(o);
}

export function decodeIp(key: string, text: string): IpValue {
  const o = parse(key, text);
  return {
    node: str(key, o, "node"),
    containerID: str(key, o, "containerID"),
    ifname: str(key, o, "ifname"),
    rangeSet: str(key, o, "rangeSet"),
    reservedAt: str(key, o, "reservedAt"),
  };
}

export const encodeIp = (v: IpValue): string => JSON.stringify(v);

export function decodeAttachment(key: string, text: string): AttachmentValue {
  const o = parse(key, text);
  if (!Array.isArray(o.ips)) throw new CorruptValue(key, "ips is not a list");
  return {
    ips: o.ips.map((e) => {
      if (!isJsonObject(e)) throw new CorruptValue(key, "ips entry is not an object");
      return {
        ip: str(key, e, "ip"),
        block: str(key, e, "block"),
        rangeSet: str(key, e, "rangeSet"),
        reservedAt: str(key, e, "reservedAt"),
      };
    }),
  };
}

export const encodeAttachment = (v: AttachmentValue): string => JSON.stringify(v);

/** node, network, container ID and ifname from an attachment key, or undefined for another key. */
export function parseAttachmentKey(
  l: Layout,
  key: string,
): { node: string; network: string; containerId: string; ifname: string } | undefined {
  const base = keys.allAttachments(l);
  if (!key.startsWith(base)) return undefined;
  const parts = key.slice(base.length).split("/");
  if (parts.length !== 4) return undefined;
  const [node = "", network = "", containerId = "", ifname = ""] = parts;
  return { node, network, containerId, ifname };
}

export const familyPrefix = (p: PoolValue, f: Family): number => (f === 4 ? p.blockSize : p.blockSize6);
