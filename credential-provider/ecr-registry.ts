// Which ECR API a registry host belongs to, and in which region and flavour (FIPS, dual-stack).
// The regex is the anchor's (cloud-provider-aws ecr-credential-provider), covering every partition.

export const ECR_PATTERN =
  /^(\d{12})\.dkr[.-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$/;

/** The anchor's two ECR Public hosts; ecr-public's GetAuthorizationToken exists only in us-east-1. */
export const ECR_PUBLIC_HOSTS: readonly string[] = ["public.ecr.aws", "ecr-public.aws.com"];
/** The dual-stack one (IPv4 and IPv6): its token comes from the dual-stack API endpoint. */
export const ECR_PUBLIC_DUAL_STACK_HOST = "ecr-public.aws.com";
export const ECR_PUBLIC_REGION = "us-east-1";

export type EcrRegistry =
  | { kind: "private"; host: string; accountId: string; region: string; fips: boolean; dualStack: boolean }
  | { kind: "public"; host: string; region: typeof ECR_PUBLIC_REGION; dualStack: boolean }
  | { kind: "other"; host: string };

export function classifyHost(hostname: string): EcrRegistry {
  const host = hostname.toLowerCase();
  if (ECR_PUBLIC_HOSTS.includes(host))
    return { kind: "public", host, region: ECR_PUBLIC_REGION, dualStack: host === ECR_PUBLIC_DUAL_STACK_HOST };
  const m = ECR_PATTERN.exec(host);
  if (!m) return { kind: "other", host };
  const domain = m[4] as string;
  // Dual-stack registry hosts are "dkr-ecr" on on.aws / on.amazonwebservices.com.cn; their API is
  // the SDK's dual-stack endpoint. "-fips" hosts are served by the FIPS API endpoint.
  const dualStack = host.includes(".dkr-ecr") || domain.startsWith("on.");
  return {
    kind: "private",
    host,
    accountId: m[1] as string,
    region: m[3] as string,
    fips: m[2] !== undefined,
    dualStack,
  };
}

/** Whose credentials sign the GetAuthorizationToken call. */
export type Identity =
  | { mode: "node" }
  /** service-account token mode: STS AssumeRoleWithWebIdentity with the pod's token (the anchor) */
  | { mode: "web-identity"; roleArn: string; token: string; sessionName: string }
  /** role map: STS AssumeRole with the node's credentials */
  | { mode: "assume-role"; roleArn: string; sessionName: string };

/** One network fetch: which API, where, as whom. */
export type FetchPlan = {
  api: "ecr" | "ecr-public";
  /** undefined: the SDK's default (AWS_REGION or the profile) */
  region: string | undefined;
  /** where STS is asked when the identity needs it: the registry's region; for ECR Public, the
   * node's default region as in the anchor (it builds its STS client without one) */
  stsRegion: string | undefined;
  /** the FIPS API endpoints, for ECR and STS alike */
  fips: boolean;
  /** the dual-stack (IPv4 and IPv6) API endpoints, for ECR, ECR Public and STS alike */
  dualStack: boolean;
  /** the ECR registry host asked for (after the mirror map) */
  host: string;
  identity: Identity;
};
