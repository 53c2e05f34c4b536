// The credential provider's disk cache seen from outside: a token file moved back in time, as if
// it had been fetched hours ago, so a run finds it past half-life but not yet expired.
import { readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The one cached token in dir (a file named by a 40-hex hash) set past half-life with 5 hours left. */
export function ageCachedToken(dir: string): void {
  const entry = readdirSync(dir).find((f) => /^[0-9a-f]{40}\.json$/.test(f)) as string;
  const token = JSON.parse(readFileSync(join(dir, entry), "utf8")) as Record<string, number>;
  token.fetchedAt = Date.now() - 7 * 3600_000;
  token.expiresAt = Date.now() + 5 * 3600_000;
  writeFileSync(join(dir, entry), JSON.stringify(token));
  // The cache dates each file by the end of its use (cache.ts), as it would have written it.
  utimesSync(join(dir, entry), token.expiresAt / 1000, token.expiresAt / 1000);
}
