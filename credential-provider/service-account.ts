// Whom the kubelet minted a pod's service-account token for: the token's `kubernetes.io` claim
// (namespace, serviceaccount.name, serviceaccount.uid), which the API server writes into every
// bound token (k8s.io/kubernetes pkg/serviceaccount/claims.go: privateClaims). The claims are
// read without checking the signature: the kubelet, which requested the token, is the only caller,
// and STS verifies the token whenever one is exchanged. They are never written to stderr or the
// log file: the cache key hashes them and the session name goes to STS only.
import { isJsonObject } from "../shared/json.ts";

export type ServiceAccount = { namespace: string; name: string; uid: string };

/** The payload of a JWT, or undefined when the token is not one. */
function jwtPayload(token: string): Record<string, unknown> | undefined {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    return isJsonObject(payload) ? payload : undefined;
  } catch {
    return undefined;
  }
}

const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v !== "";

/** The service account the token was minted for, or undefined without a complete `kubernetes.io` claim. */
export function serviceAccountOf(token: string | undefined): ServiceAccount | undefined {
  if (!token) return undefined;
  const k8s = jwtPayload(token)?.["kubernetes.io"];
  if (!isJsonObject(k8s)) return undefined;
  const sa = k8s.serviceaccount;
  if (!isJsonObject(sa)) return undefined;
  const { namespace } = k8s;
  const { name, uid } = sa;
  if (!nonEmptyString(namespace) || !nonEmptyString(name) || !nonEmptyString(uid)) return undefined;
  return { namespace, name, uid };
}

/** STS RoleSessionName: 2 to 64 of [\w+=,.@-] (AWS STS API reference, AssumeRoleWithWebIdentity). */
const SESSION_NAME_CHARS = /^[\w+=,.@-]{2,}$/;
export const MAX_SESSION_NAME = 64;

/** `<namespace>.<serviceaccount>` cut to 64 characters, so CloudTrail shows which workload pulled;
 * from the `kubernetes.io` claim, else from `sub` (system:serviceaccount:<namespace>:<name>). */
export function sessionNameFor(token: string | undefined): string | undefined {
  if (!token) return undefined;
  let ns: string | undefined;
  let name: string | undefined;
  const sa = serviceAccountOf(token);
  if (sa) {
    ns = sa.namespace;
    name = sa.name;
  } else {
    const sub = jwtPayload(token)?.sub;
    const m = typeof sub === "string" ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(sub) : null;
    ns = m?.[1];
    name = m?.[2];
  }
  if (ns === undefined || name === undefined) return undefined;
  const session = `${ns}.${name}`.slice(0, MAX_SESSION_NAME);
  return SESSION_NAME_CHARS.test(session) ? session : undefined;
}
