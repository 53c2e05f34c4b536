// etcd v3 over its JSON gateway (grpc-gateway in front of every etcd 3.4 member: POST /v3/kv/range,
// /v3/kv/txn, /v3/auth/authenticate; api/etcdserverpb/rpc.proto names the fields) over a small
// HTTP/1.1 client with keep-alive (http1.ts): a plugin process makes one or two requests and exits, and the etcd3
// npm package (grpc-js, proto-loader) costs over 300 ms to load and reads .proto files from disk,
// which a single executable cannot do (microsoft/etcd3#179).
//
// Gateway facts this module encodes: keys and values are base64 (proto bytes), int64 fields are
// JSON strings that can exceed 2^53 (BigInt here), fields at their default value are left out (a
// failed txn has no "succeeded", an empty range no "kvs"), and errors come back as
// {"error", "message", "code"} with a gRPC status code. The gateway does not fail over between
// members: this client rotates endpoints itself.
import { readFileSync } from "node:fs";
import { errorMessage, isJsonObject, type JsonObject } from "../../../shared/json.ts";
import { createConnections } from "./http1.ts";

export type KeyValue = {
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
};

export type RangeRequest = {
  key: string;
  /** Exclusive end; "\0" means every key >= key (etcd's convention). */
  rangeEnd?: string;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** Serve from the member's local state without quorum (never where "can I write" matters). */
  serializable?: boolean;
  /** Read as of this revision (a consistent snapshot across pages). */
  revision?: bigint;
};

export type RangeResponse = { revision: bigint; kvs: KeyValue[]; count: bigint; more: boolean };

export type CompareTarget = "MOD" | "CREATE" | "VERSION";
export type Compare = {
  key: string;
  target: CompareTarget;
  result: "EQUAL" | "NOT_EQUAL" | "GREATER" | "LESS";
  value: bigint;
  rangeEnd?: string;
};

export type TxnOp = { put: { key: string; value: string } } | { del: { key: string } } | { range: RangeRequest };

export type TxnRequest = { compare: Compare[]; success: TxnOp[]; failure: TxnOp[] };
/** One entry per op of the branch that ran: a range's result, or undefined for a put or delete. */
export type TxnResponse = { succeeded: boolean; revision: bigint; responses: (RangeResponse | undefined)[] };

export type TlsFiles = { ca?: string; cert?: string; key?: string };

export type ClientOptions = {
  endpoints: readonly string[];
  tls?: TlsFiles;
  /** The password is read from its file only when a token has to be fetched. */
  auth?: { username: string; passwordFile: string };
  /** Where the auth token is cached (mode 0600); without it every process authenticates. */
  tokenFile?: string;
  /** At most this long per HTTP request (etcd's own timeout for a write without quorum is 7 s). */
  requestTimeoutMs: number;
  /** Nothing is attempted after this instant (ms since the epoch): the command's whole budget. */
  deadline: number;
  /** The endpoint tried first: the one that answered last time, so a hung member costs one timeout. */
  firstEndpoint?: number;
};

export type Counters = { range: number; txn: number; auth: number; other: number; failovers: number };

export type EtcdClient = {
  range(r: RangeRequest): Promise<RangeResponse>;
  txn(t: TxnRequest): Promise<TxnResponse>;
  /** Any other gateway call (e.g. /v3/maintenance/status), the decoded body as is. */
  call(path: string, body: JsonObject): Promise<JsonObject>;
  readonly counters: Counters;
  /** Index of the endpoint that answered last. */
  currentEndpoint(): number;
  /** Moves the overall deadline (a store starts its budget once it holds the node's lock). */
  setDeadline(at: number): void;
  close(): void;
};

export type EtcdErrorKind = "unavailable" | "denied" | "rejected";

/** A failed etcd request: `unavailable` after the budget, `denied` by auth, `rejected` as invalid. */
export class EtcdError extends Error {
  readonly kind: EtcdErrorKind;
  readonly endpoint: string;
  /** gRPC status code from etcd, when it answered with one. */
  readonly grpcCode: number | undefined;
  /** Requests sent before giving up. */
  readonly attempts: number;
  constructor(kind: EtcdErrorKind, msg: string, endpoint: string, grpcCode?: number, attempts = 1) {
    super(msg);
    this.name = "EtcdError";
    this.kind = kind;
    this.endpoint = endpoint;
    this.grpcCode = grpcCode;
    this.attempts = attempts;
  }
}

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: unknown): string => (typeof s === "string" ? Buffer.from(s, "base64").toString("utf8") : "");
const int64 = (v: unknown): bigint => (typeof v === "string" || typeof v === "number" ? BigInt(v) : 0n);

/**
 * The range end that selects every key starting with `prefix` (clientv3.GetPrefixRangeEnd). Our
 * prefixes end in "/", so incrementing the last character is enough.
 */
export function prefixEnd(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  if (!(last >= 0x20 && last < 0x7e)) throw new Error(`prefix must end in a printable ASCII character: ${prefix}`);
  return prefix.slice(0, -1) + String.fromCharCode(last + 1);
}

function encodeRange(r: RangeRequest): JsonObject {
  const o: JsonObject = { key: b64(r.key) };
  if (r.rangeEnd !== undefined) o.range_end = b64(r.rangeEnd);
  if (r.limit) o.limit = String(r.limit);
  if (r.keysOnly) o.keys_only = true;
  if (r.countOnly) o.count_only = true;
  if (r.serializable) o.serializable = true;
  if (r.revision !== undefined) o.revision = String(r.revision);
  return o;
}

const FIELD: Record<CompareTarget, string> = { MOD: "mod_revision", CREATE: "create_revision", VERSION: "version" };

function encodeOp(op: TxnOp): JsonObject {
  if ("put" in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value) } };
  if ("del" in op) return { request_delete_range: { key: b64(op.del.key) } };
  return { request_range: encodeRange(op.range) };
}

function decodeKv(v: unknown): KeyValue {
  const o = isJsonObject(v) ? v : {};
  return {
    key: unb64(o.key),
    value: unb64(o.value),
    createRevision: int64(o.create_revision),
    modRevision: int64(o.mod_revision),
    version: int64(o.version),
  };
}

function decodeRange(o: JsonObject, fallbackRevision: bigint): RangeResponse {
  const header = isJsonObject(o.header) ? o.header : {};
  return {
    revision: header.revision !== undefined ? int64(header.revision) : fallbackRevision,
    kvs: Array.isArray(o.kvs) ? o.kvs.map(decodeKv) : [],
    count: int64(o.count),
    more: o.more === true,
  };
}

const headerRevision = (o: JsonObject): bigint => int64(isJsonObject(o.header) ? o.header.revision : undefined);

/** gRPC codes after which another member, or the same one a little later, may well succeed. */
const RETRY_CODES = new Set([1, 4, 8, 10, 13, 14]);
const RETRY_TEXT =
  /leader changed|no leader|timed out|proposal dropped|too many requests|not capable|unhealthy|stopped/;

type Answer = { status: number; body: JsonObject | undefined; text: string };

export function createClient(opts: ClientOptions): EtcdClient {
  if (opts.endpoints.length === 0) throw new Error("no etcd endpoints");
  const secure = opts.endpoints.some((e) => e.startsWith("https:"));
  const read = (f: string | undefined) => (f ? readFileSync(f) : undefined);
  const connections = createConnections(
    secure ? { ca: read(opts.tls?.ca), cert: read(opts.tls?.cert), key: read(opts.tls?.key) } : undefined,
  );
  const counters: Counters = { range: 0, txn: 0, auth: 0, other: 0, failovers: 0 };
  let current = (opts.firstEndpoint ?? 0) % opts.endpoints.length;
  let deadline = opts.deadline;
  let token: string | undefined;
  let tokenLoaded = false;

  async function once(
    endpoint: string,
    path: string,
    payload: string,
    timeoutMs: number,
    auth?: string,
  ): Promise<Answer> {
    const url = new URL(path, endpoint.endsWith("/") ? endpoint : `${endpoint}/`);
    const headers: Record<string, string> = { "Content-Type": "application/json" };
    if (auth) headers.Authorization = auth;
    const { status, text } = await connections.post(url, payload, timeoutMs, headers);
    let body: JsonObject | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      body = isJsonObject(parsed) ? parsed : undefined;
    } catch {
      body = undefined;
    }
    return { status, body, text };
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /**
   * One logical request: each attempt gets at most requestTimeoutMs, a failed attempt moves on to
   * the next endpoint, and nothing starts after the deadline. Only errors another member (or a
   * moment) can cure are retried; a denied or invalid request fails at once.
   */
  async function post(path: string, body: JsonObject, withAuth: boolean): Promise<JsonObject> {
    const payload = JSON.stringify(body);
    let last = "no attempt made";
    let lastEndpoint = opts.endpoints[current] ?? "";
    let reauthenticated = false;
    const began = Date.now();
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const spent = ((Date.now() - began) / 1000).toFixed(1);
        const tries = `${attempt} attempt${attempt === 1 ? "" : "s"} in ${spent} s`;
        throw new EtcdError(
          "unavailable",
          `etcd unavailable (${tries}): ${lastEndpoint}: ${last}`,
          lastEndpoint,
          undefined,
          attempt,
        );
      }
      const endpoint = opts.endpoints[current] ?? "";
      lastEndpoint = endpoint;
      let answer: Answer;
      try {
        const auth = withAuth ? await authToken() : undefined;
        answer = await once(
          endpoint,
          path,
          payload,
          Math.max(1, Math.ceil(Math.min(opts.requestTimeoutMs, left))),
          auth,
        );
      } catch (e) {
        if (e instanceof EtcdError) throw e;
        last = errorMessage(e);
        rotate();
        await pause(attempt);
        continue;
      }
      if (answer.status === 200 && answer.body) return answer.body;
      const msg = typeof answer.body?.error === "string" ? answer.body.error : `HTTP ${answer.status}`;
      const code = typeof answer.body?.code === "number" ? answer.body.code : undefined;
      if (withAuth && /invalid auth token/.test(msg) && !reauthenticated) {
        // Simple tokens expire (--auth-token-ttl) and die with a member restart: fetch a new one.
        reauthenticated = true;
        token = undefined;
        tokenLoaded = true;
        continue;
      }
      if (/user name is empty/.test(msg) && !opts.auth) {
        throw new EtcdError("denied", `etcd at ${endpoint} requires authentication: set store.auth`, endpoint, code);
      }
      if (code === 7 || code === 16 || /permission denied|authentication failed/.test(msg)) {
        throw new EtcdError("denied", `etcd at ${endpoint}: ${msg}`, endpoint, code);
      }
      const retriable =
        code === undefined
          ? answer.status >= 500 || answer.status === 0
          : RETRY_CODES.has(code) || RETRY_TEXT.test(msg);
      if (!retriable) throw new EtcdError("rejected", `etcd at ${endpoint}: ${msg}`, endpoint, code);
      last = msg;
      rotate();
      await pause(attempt);
    }
  }

  function rotate(): void {
    if (opts.endpoints.length > 1) {
      current = (current + 1) % opts.endpoints.length;
      counters.failovers++;
    }
  }

  /** After every member failed once in a row, wait a little: an election takes about a second. */
  async function pause(attempt: number): Promise<void> {
    if ((attempt + 1) % opts.endpoints.length !== 0) return;
    const left = deadline - Date.now();
    if (left > 0) await sleep(Math.min(100, left));
  }

  async function authToken(): Promise<string | undefined> {
    if (!opts.auth) return undefined;
    if (!tokenLoaded) {
      tokenLoaded = true;
      token = readToken(opts.tokenFile);
    }
    if (token) return token;
    let password: string;
    try {
      password = readFileSync(opts.auth.passwordFile, "utf8").replace(/\r?\n$/, "");
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code ?? "unreadable";
      throw new EtcdError("denied", `cannot read store.auth.passwordFile ${opts.auth.passwordFile}: ${why}`, "");
    }
    counters.auth++;
    const res = await post("v3/auth/authenticate", { name: opts.auth.username, password }, false);
    const t = res.token;
    if (typeof t !== "string" || t === "") throw new EtcdError("rejected", "etcd returned no auth token", "");
    token = t;
    writeToken(opts.tokenFile, t);
    return t;
  }

  return {
    async range(r) {
      counters.range++;
      const res = await post("v3/kv/range", encodeRange(r), true);
      return decodeRange(res, headerRevision(res));
    },
    async txn(t) {
      counters.txn++;
      const body: JsonObject = {
        compare: t.compare.map((c) => {
          const o: JsonObject = {
            key: b64(c.key),
            target: c.target,
            result: c.result,
            [FIELD[c.target]]: String(c.value),
          };
          if (c.rangeEnd !== undefined) o.range_end = b64(c.rangeEnd);
          return o;
        }),
        success: t.success.map(encodeOp),
        failure: t.failure.map(encodeOp),
      };
      const res = await post("v3/kv/txn", body, true);
      const revision = headerRevision(res);
      const responses = Array.isArray(res.responses) ? res.responses : [];
      return {
        succeeded: res.succeeded === true,
        revision,
        responses: responses.map((r) =>
          isJsonObject(r) && isJsonObject(r.response_range) ? decodeRange(r.response_range, revision) : undefined,
        ),
      };
    },
    async call(path, body) {
      counters.other++;
      return post(path.replace(/^\//, ""), body, true);
    },
    counters,
    currentEndpoint: () => current,
    setDeadline(at) {
      deadline = at;
    },
    close() {
      connections.close();
    },
  };
}

function readToken(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    const t = readFileSync(file, "utf8").trim();
    return t === "" ? undefined : t;
  } catch {
    return undefined;
  }
}

/** Written whole or not at all (a temporary file renamed over it), never readable by others. */
function writeToken(file: string | undefined, token: string): void {
  if (!file) return;
  const fs = process.getBuiltinModule("node:fs") as typeof import("node:fs");
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, token, { mode: 0o600, flag: "wx" });
    fs.renameSync(tmp, file);
  } catch {
    // A token that cannot be cached only costs the next process one authentication.
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // nothing left to clean
    }
  }
}
