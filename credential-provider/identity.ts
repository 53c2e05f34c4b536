// Whose credentials a request gets. Without a service-account token: the node's, or a role-map
// entry's role assumed with them. With one (kubelet tokenAttributes), in order:
// 1. the first of the role annotations (default eks.amazonaws.com/ecr-role-arn) that the request
//    carries: its role with the pod's token (AssumeRoleWithWebIdentity), or the node's credentials
//    when its value is empty. A present key decides, as in the anchor
//    (cloud-provider-aws cmd/ecr-credential-provider/main.go: buildCredentialsProvider).
// 2. a role-map entry for the registry: AssumeRole with the node's credentials, as without a token,
//    unless the entry is marked `web-identity:`, then AssumeRoleWithWebIdentity with the pod's token.
// 3. AWS_ECR_ROLE_ARN with the pod's token (the anchor).
// 4. the node's credentials; with --token-mode=fail-closed an error instead.
import type { CredentialProviderRequest } from "../shared/kubelet/types.ts";
import { mappedRole, type Config } from "./config.ts";
import type { Identity } from "./ecr-registry.ts";
import { sessionNameFor } from "./service-account.ts";

/** The anchor's RoleSessionName: node-signed AssumeRole calls and tokens whose claims name no service account. */
export const SESSION_NAME = "ecr-credential-provider";

export type IdentityChoice = { ok: true; identity: Identity } | { ok: false; error: string };

const FAIL_CLOSED = "--token-mode=fail-closed";

export function chooseIdentity(
  req: CredentialProviderRequest,
  config: Config,
  host: string,
  accountId: string | undefined,
): IdentityChoice {
  const mapped = mappedRole(config, host, accountId);
  const token = req.serviceAccountToken;
  if (!token) {
    if (mapped?.webIdentity)
      return {
        ok: false,
        error: `the role map entry for ${host} (web-identity:${mapped.roleArn}) needs the pod's service-account token, and the request has none (tokenAttributes in the kubelet's provider config)`,
      };
    return mapped
      ? { ok: true, identity: { mode: "assume-role", roleArn: mapped.roleArn, sessionName: SESSION_NAME } }
      : { ok: true, identity: { mode: "node" } };
  }
  const webIdentity = (roleArn: string): IdentityChoice => ({
    ok: true,
    identity: { mode: "web-identity", roleArn, token, sessionName: sessionNameFor(token) ?? SESSION_NAME },
  });
  const annotations = req.serviceAccountAnnotations ?? {};
  for (const key of config.roleAnnotations) {
    if (!Object.hasOwn(annotations, key)) continue;
    const roleArn = annotations[key] ?? "";
    if (roleArn !== "") return webIdentity(roleArn);
    if (config.tokenMode === "fail-closed")
      return {
        ok: false,
        error: `the service account's ${key} annotation is empty, which means the node's credentials, and ${FAIL_CLOSED} refuses them to a pod`,
      };
    return { ok: true, identity: { mode: "node" } };
  }
  if (mapped) {
    return mapped.webIdentity
      ? webIdentity(mapped.roleArn)
      : { ok: true, identity: { mode: "assume-role", roleArn: mapped.roleArn, sessionName: SESSION_NAME } };
  }
  if (config.ecrRoleArn) return webIdentity(config.ecrRoleArn);
  if (config.tokenMode === "fail-closed")
    return {
      ok: false,
      error: `no role for ${host}: the service account has no ${config.roleAnnotations.join(" or ")} annotation and no role map entry or AWS_ECR_ROLE_ARN applies; ${FAIL_CLOSED} refuses the node's credentials to a pod`,
    };
  return { ok: true, identity: { mode: "node" } };
}
