// Disk cache of ECR tokens so a kubelet restart or an ECR hiccup does not fail pulls
// (docker-credential-ecr-login does the same in ~/.ecr). One file per registry and identity,
// mode 0600, written atomically; a file we did not write alone (other owner, group/world bits)
// is ignored. Reused until half-life; a still-valid token is served when ECR fails.
import {
  chmodSync,
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { isJsonObject } from "../shared/json.ts";

export type CachedToken = {
  registry: string;
  username: string;
  password: string;
  /** epoch ms */
  expiresAt: number;
  fetchedAt: number;
};

/** A stale token is served only while it has at least this much life left for the pull to start. */
export const STALE_MARGIN_MS = 2 * 60_000;

/** node:crypto is loaded here, on first use, not at start-up: only a run with a cache directory hashes. */
export function cacheKey(parts: Record<string, string | undefined>): string {
  const { createHash } = process.getBuiltinModule("node:crypto");
  return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 40);
}

function fileFor(dir: string, key: string): string {
  return join(dir, `${key}.json`);
}

export function readCache(dir: string, key: string): CachedToken | undefined {
  let fd: number;
  try {
    fd = openSync(fileFor(dir, key), "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    const uid = process.getuid?.();
    if ((st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid) || st.size > 65536) return undefined;
    const r: unknown = JSON.parse(readFileSync(fd, "utf8"));
    if (
      !isJsonObject(r) ||
      typeof r.registry !== "string" ||
      typeof r.username !== "string" ||
      typeof r.password !== "string" ||
      typeof r.expiresAt !== "number" ||
      typeof r.fetchedAt !== "number"
    ) {
      return undefined;
    }
    return {
      registry: r.registry,
      username: r.username,
      password: r.password,
      expiresAt: r.expiresAt,
      fetchedAt: r.fetchedAt,
    };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the entry; returns a reason when it could not (the caller warns and carries on). */
export function writeCache(dir: string, key: string, token: CachedToken): string | undefined {
  const file = fileFor(dir, key);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, "wx", 0o600);
    try {
      chmodSync(tmp, 0o600); // whatever the umask
      const data = Buffer.from(JSON.stringify(token));
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
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

/** Fresh until half of the life it had when fetched has passed (the anchor's half-life). */
export function isFresh(t: CachedToken, now: number): boolean {
  return now < t.fetchedAt + (t.expiresAt - t.fetchedAt) / 2;
}

export function isUsableStale(t: CachedToken, now: number): boolean {
  return t.expiresAt - now > STALE_MARGIN_MS;
}
