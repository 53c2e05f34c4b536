// GetAuthorizationToken output -> username and password, with the anchor's error messages
// (cloud-provider-aws cmd/ecr-credential-provider/main.go). Pure, so the SDK stays out of the
// unit tests and off the cache-hit path.
import type { SecretKeeper } from "./stderr.ts";

export type Token = { username: string; password: string /** epoch ms */; expiresAt: number | undefined };
/** A failure is `unreachable` when no answer came at all (timeouts, refused or reset connections,
 * DNS): the endpoint's trouble, not the identity's. */
export type TokenResult = { ok: true; value: Token } | { ok: false; error: string; unreachable?: boolean };

type AuthData = { authorizationToken?: string | undefined; expiresAt?: Date | undefined };

/** The token as ECR hands it out: base64("AWS:" + password), which never contains base64(password). */
export function encodeAuthorizationToken(t: { username: string; password: string }): string {
  return Buffer.from(`${t.username}:${t.password}`, "utf8").toString("base64");
}

/** Both forms of a credential an error may quote: the password and the whole token. */
export function keepToken(keeper: SecretKeeper, t: { username: string; password: string }): void {
  keeper.secret(t.password);
  keeper.secret(encodeAuthorizationToken(t));
}

export function decodeAuthorizationToken(
  token: string,
  expiresAt: Date | undefined,
  keeper: SecretKeeper,
): TokenResult {
  // The token is a secret whether or not it decodes.
  keeper.secret(token);
  const decoded = Buffer.from(token, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return { ok: false, error: "error parsing username and password from authorization token" };
  const t = expiresAt?.getTime();
  const value = {
    username: decoded.slice(0, colon),
    password: decoded.slice(colon + 1),
    expiresAt: t !== undefined && Number.isFinite(t) ? t : undefined,
  };
  keepToken(keeper, value);
  return { ok: true, value };
}

/** ecr: `authorizationData` is a list; the anchor uses the first entry. */
export function tokenFromEcrOutput(
  output: { authorizationData?: AuthData[] | undefined } | null | undefined,
  keeper: SecretKeeper,
): TokenResult {
  if (output === null || output === undefined) return { ok: false, error: "response output from ECR was nil" };
  const data = output.authorizationData;
  if (!data || data.length === 0) return { ok: false, error: "authorization data was empty" };
  const first = data[0];
  if (!first?.authorizationToken) return { ok: false, error: "authorization token in response was nil" };
  return decodeAuthorizationToken(first.authorizationToken, first.expiresAt, keeper);
}

/** ecr-public: `authorizationData` is one object. */
export function tokenFromEcrPublicOutput(
  output: { authorizationData?: AuthData | undefined } | null | undefined,
  keeper: SecretKeeper,
): TokenResult {
  if (output === null || output === undefined) return { ok: false, error: "response output from ECR was nil" };
  const data = output.authorizationData;
  if (!data) return { ok: false, error: "authorization data was empty" };
  if (!data.authorizationToken) return { ok: false, error: "authorization token in response was nil" };
  return decodeAuthorizationToken(data.authorizationToken, data.expiresAt, keeper);
}

/** The anchor's getCacheDuration: half of the token's remaining life in whole Unix seconds,
 * (expiresAt.Unix() - time.Now().Unix()) / 2. No expiry -> 0 (do not cache). Where the anchor
 * leaves cacheDuration out for a token already expired (so the kubelet would keep it for the
 * config's defaultCacheDuration), we answer 0 too. */
export function halfLifeSeconds(expiresAt: number | undefined, now: number): number {
  if (expiresAt === undefined) return 0;
  return Math.max(0, Math.trunc((Math.floor(expiresAt / 1000) - Math.floor(now / 1000)) / 2));
}
