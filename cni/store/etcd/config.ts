// The `ipam.store` section for etcd, with exactly these keys:
//   {"type": "etcd", "endpoints": [...], "prefix": "/berth", "node": "worker-3", "blockSize": 26,
//    "blockSize6": 122, "tls": {"ca", "cert", "key"}, "auth": {"username", "passwordFile"}}
// Nothing here loads the etcd client: a config is read on every command, etcd or not.
import { invalidConfig } from "../../../shared/cni/errors.ts";
import { isJsonObject, type JsonObject } from "../../../shared/json.ts";

export type EtcdStoreConfig = {
  readonly type: "etcd";
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly node: string;
  readonly blockSize: number;
  readonly blockSize6: number;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
  readonly auth?: { readonly username: string; readonly passwordFile: string };
};

export const DEFAULT_PREFIX = "/berth";
export const DEFAULT_BLOCK_SIZE = 26;
export const DEFAULT_BLOCK_SIZE6 = 122;
// A block's bitmap is rewritten by every ADD in it: at most 4,096 addresses (512 bytes) a block.
const BLOCK_RANGE = { 4: [20, 30], 6: [116, 126] } as const;

const KEYS = ["type", "endpoints", "prefix", "node", "blockSize", "blockSize6", "tls", "auth"];
const TLS_KEYS = ["ca", "cert", "key"];
const AUTH_KEYS = ["username", "passwordFile"];

// Kubernetes node names are DNS subdomains; anything without "/" keeps the key layout intact.
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$/;
const PREFIX = /^(\/[A-Za-z0-9._-]+)+$/;

function onlyKeys(o: JsonObject, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw invalidConfig(`${where}: unknown key ${JSON.stringify(k)} (allowed: ${allowed.join(", ")})`);
    }
  }
}

function text(o: JsonObject, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v === "") throw invalidConfig(`${where}.${key} must be a non-empty string`);
  return v;
}

function blockSizeOf(o: JsonObject, key: string, family: 4 | 6, fallback: number): number {
  const v = o[key];
  if (v === undefined || v === null) return fallback;
  const [lo, hi] = BLOCK_RANGE[family];
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    throw invalidConfig(
      `ipam.store.${key} must be an IPv${family} prefix length from ${lo} to ${hi}, not ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function endpointsOf(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) throw invalidConfig("ipam.store.endpoints must be a non-empty list of URLs");
  const out = v.map((e, i) => {
    let url: URL | undefined;
    try {
      url = typeof e === "string" ? new URL(e) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.hostname === "") {
      // The value is not echoed: a mistyped URL may carry a password.
      throw invalidConfig(`ipam.store.endpoints[${i}]: not an http:// or https:// URL with a host`);
    }
    // Credentials belong in store.auth, where they never reach a message; a path would be ignored.
    if (url.username || url.password) throw invalidConfig(`ipam.store.endpoints[${i}]: no credentials in the URL`);
    if (url.pathname !== "/" || url.search || url.hash) {
      throw invalidConfig(`ipam.store.endpoints[${i}]: only scheme, host and port (etcd's gateway is at /v3)`);
    }
    return `${url.protocol}//${url.host}`;
  });
  const schemes = new Set(out.map((e) => e.slice(0, e.indexOf(":"))));
  if (schemes.size > 1) throw invalidConfig("ipam.store.endpoints: mix of http and https endpoints");
  return out;
}

/** Parses store.type "etcd"; `hostname` gives the default node name. Errors are code 7. */
export function parseEtcdStoreConfig(o: JsonObject, hostname: () => string): EtcdStoreConfig {
  onlyKeys(o, KEYS, "ipam.store");
  const endpoints = endpointsOf(o.endpoints);
  const prefix = text(o, "prefix", "ipam.store") ?? DEFAULT_PREFIX;
  if (!PREFIX.test(prefix)) {
    throw invalidConfig(`ipam.store.prefix must look like "/berth" (slash-separated letters, digits, ".", "_", "-")`);
  }
  const node = text(o, "node", "ipam.store") ?? hostname();
  if (!NODE_NAME.test(node)) throw invalidConfig(`ipam.store.node: not a valid node name: ${JSON.stringify(node)}`);
  const conf: {
    type: "etcd";
    endpoints: string[];
    prefix: string;
    node: string;
    blockSize: number;
    blockSize6: number;
    tls?: { ca?: string; cert?: string; key?: string };
    auth?: { username: string; passwordFile: string };
  } = {
    type: "etcd",
    endpoints,
    prefix,
    node,
    blockSize: blockSizeOf(o, "blockSize", 4, DEFAULT_BLOCK_SIZE),
    blockSize6: blockSizeOf(o, "blockSize6", 6, DEFAULT_BLOCK_SIZE6),
  };
  if (o.tls !== undefined && o.tls !== null) {
    if (!isJsonObject(o.tls)) throw invalidConfig("ipam.store.tls must be an object {ca, cert, key}");
    onlyKeys(o.tls, TLS_KEYS, "ipam.store.tls");
    const tls = {
      ca: text(o.tls, "ca", "ipam.store.tls"),
      cert: text(o.tls, "cert", "ipam.store.tls"),
      key: text(o.tls, "key", "ipam.store.tls"),
    };
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      throw invalidConfig("ipam.store.tls: cert and key go together");
    }
    if (!endpoints[0]?.startsWith("https:")) throw invalidConfig("ipam.store.tls needs https:// endpoints");
    conf.tls = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
  }
  if (o.auth !== undefined && o.auth !== null) {
    if (!isJsonObject(o.auth)) throw invalidConfig("ipam.store.auth must be an object {username, passwordFile}");
    onlyKeys(o.auth, AUTH_KEYS, "ipam.store.auth");
    const username = text(o.auth, "username", "ipam.store.auth");
    const passwordFile = text(o.auth, "passwordFile", "ipam.store.auth");
    if (!username || !passwordFile) throw invalidConfig("ipam.store.auth needs username and passwordFile");
    conf.auth = { username, passwordFile };
  }
  return conf;
}
