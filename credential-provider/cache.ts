// Disk cache of ECR tokens so a kubelet restart or an ECR hiccup does not fail pulls
// (docker-credential-ecr-login does the same in ~/.ecr). One file per registry and identity,
// mode 0600, written atomically; a file we did not write alone (other owner, group/world bits)
// is ignored. Reused until half-life; a still-valid token is served when ECR fails. A failed
// fetch is remembered in a file of its own for a short time, so a pull storm during an outage
// waits for one timeout, not one per pull.
//
// Every file's modification time is set to the moment it stops being useful (a token's expiry, a
// failure's end), so keeping the directory bounded needs one stat per file and no reads: at each
// write, expired files go, then the ones closest to expiry while more than the cap remain.
import {
  chmodSync,
  closeSync,
  futimesSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { isJsonObject, type JsonObject } from "../shared/json.ts";
import { sha256Hex } from "./sha256.ts";

export type CachedToken = {
  registry: string;
  username: string;
  password: string;
  /** epoch ms */
  expiresAt: number;
  fetchedAt: number;
  /** hash of the service account the token was fetched for (web identity); absent for the node's */
  subject?: string;
};

export type RememberedFailure = {
  error: string;
  /** epoch ms */
  failedAt: number;
  until: number;
};

/** A stale token is served only while it has at least this much life left for the pull to start. */
export const STALE_MARGIN_MS = 2 * 60_000;
/** A temporary file older than this belongs to a writer that died. */
const ORPHAN_MS = 60_000;
const OURS = /^[0-9a-f]{40}(?:\.failure)?\.json$/;
const TMP = /^[0-9a-f]{40}(?:\.failure)?\.json\.\d+\.tmp$/;

/** The file name of an entry: what it is for, hashed, so that no part of it (a role, a host) reaches the name. */
export function cacheKey(parts: Record<string, string | undefined>): string {
  return sha256Hex(JSON.stringify(parts)).slice(0, 40);
}

const tokenFile = (dir: string, key: string) => join(dir, `${key}.json`);
const failureFile = (dir: string, key: string) => join(dir, `${key}.failure.json`);

/** The JSON object in a file only we could have written, or undefined. */
function readOwn(file: string): JsonObject | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if ((st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid) || st.size > 65536) return undefined;
    const r: unknown = JSON.parse(readFileSync(fd, "utf8"));
    return isJsonObject(r) ? r : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export function readCache(dir: string, key: string): CachedToken | undefined {
  const r = readOwn(tokenFile(dir, key));
  if (
    !r ||
    typeof r.registry !== "string" ||
    typeof r.username !== "string" ||
    typeof r.password !== "string" ||
    typeof r.expiresAt !== "number" ||
    typeof r.fetchedAt !== "number" ||
    (r.subject !== undefined && typeof r.subject !== "string")
  ) {
    return undefined;
  }
  return {
    registry: r.registry,
    username: r.username,
    password: r.password,
    expiresAt: r.expiresAt,
    fetchedAt: r.fetchedAt,
    ...(typeof r.subject === "string" ? { subject: r.subject } : {}),
  };
}

/** A failure remembered for `key` that has not run out at `now`. */
export function readFailure(dir: string, key: string, now: number): RememberedFailure | undefined {
  const r = readOwn(failureFile(dir, key));
  if (!r || typeof r.error !== "string" || typeof r.failedAt !== "number" || typeof r.until !== "number")
    return undefined;
  if (now >= r.until || r.failedAt > now) return undefined;
  return { error: r.error, failedAt: r.failedAt, until: r.until };
}

export type Bounds = { maxEntries: number; now: number };

/** Writes `data` to `file` atomically, mode 0600, its modification time `usefulUntil`. */
function writeAtomic(dir: string, file: string, data: unknown, usefulUntil: number): string | undefined {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, "wx", 0o600);
    try {
      chmodSync(tmp, 0o600); // whatever the umask
      const bytes = Buffer.from(JSON.stringify(data));
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off);
      const at = usefulUntil / 1000;
      futimesSync(fd, at, at);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    return undefined;
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing was created
    }
    return (e as NodeJS.ErrnoException).code ?? "write failed";
  }
}

/** Removes what is no longer useful, then the entries closest to expiry while more than
 * `maxEntries` remain; never `keep`. Concurrent writers may race here: a file another process
 * removed first is simply gone. */
export function prune(dir: string, bounds: Bounds, keep?: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const live: { name: string; until: number }[] = [];
  for (const name of names) {
    const ours = OURS.test(name);
    if (!ours && !TMP.test(name)) continue;
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(join(dir, name));
    } catch {
      continue;
    }
    const gone = ours ? st.mtimeMs <= bounds.now : st.ctimeMs < bounds.now - ORPHAN_MS;
    if (gone && name !== keep) rmSync(join(dir, name), { force: true });
    else if (ours) live.push({ name, until: st.mtimeMs });
  }
  if (live.length <= bounds.maxEntries) return;
  live.sort((a, b) => a.until - b.until);
  let excess = live.length - bounds.maxEntries;
  for (const f of live) {
    if (excess === 0) break;
    if (f.name === keep) continue;
    rmSync(join(dir, f.name), { force: true });
    excess--;
  }
}

/** Writes the entry and bounds the directory; returns a reason when it could not (the caller warns). */
export function writeCache(dir: string, key: string, token: CachedToken, bounds: Bounds): string | undefined {
  const failed = writeAtomic(dir, tokenFile(dir, key), token, token.expiresAt);
  if (failed) return failed;
  prune(dir, bounds, `${key}.json`);
  return undefined;
}

export function writeFailure(dir: string, key: string, failure: RememberedFailure, bounds: Bounds): string | undefined {
  const failed = writeAtomic(dir, failureFile(dir, key), failure, failure.until);
  if (failed) return failed;
  prune(dir, bounds, `${key}.failure.json`);
  return undefined;
}

export function forgetFailure(dir: string, key: string): void {
  try {
    rmSync(failureFile(dir, key), { force: true });
  } catch {
    // best effort: it runs out on its own
  }
}

/** Fresh until half of the life it had when fetched has passed (the anchor's half-life). */
export function isFresh(t: CachedToken, now: number): boolean {
  return now < t.fetchedAt + (t.expiresAt - t.fetchedAt) / 2;
}

export function isUsableStale(t: CachedToken, now: number): boolean {
  return t.expiresAt - now > STALE_MARGIN_MS;
}
