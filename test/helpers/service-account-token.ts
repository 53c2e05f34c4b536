// Service-account tokens as the API server mints them for the kubelet's token-mode requests: a
// JWT whose payload has `sub` and the `kubernetes.io` claim (k8s.io/kubernetes
// pkg/serviceaccount/claims.go: privateClaims). Signed with nothing: the provider never checks
// the signature (STS does), so a test token needs only the shape.
import { randomBytes } from "node:crypto";

export type ServiceAccountClaims = { namespace: string; name: string; uid: string; pod?: string };

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A fresh token (its own `jti` and signature) for the service account: a new pod or a kubelet restart. */
export function serviceAccountToken(sa: ServiceAccountClaims, audience = "sts.amazonaws.com"): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    aud: [audience],
    exp: now + 3600,
    iat: now,
    iss: "https://kubernetes.default.svc.cluster.local",
    jti: randomBytes(8).toString("hex"),
    "kubernetes.io": {
      namespace: sa.namespace,
      pod: { name: sa.pod ?? `${sa.name}-pod`, uid: randomBytes(8).toString("hex") },
      serviceaccount: { name: sa.name, uid: sa.uid },
    },
    nbf: now,
    sub: `system:serviceaccount:${sa.namespace}:${sa.name}`,
  };
  return `${b64url({ alg: "RS256", kid: "test" })}.${b64url(payload)}.${randomBytes(32).toString("base64url")}`;
}
