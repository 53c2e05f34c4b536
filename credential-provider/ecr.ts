// The network half: STS and ECR through the AWS SDK. Loaded with import() only when the disk
// cache cannot answer, so a cache hit never pays for the SDK's start-up; each client package is
// itself loaded only on the path that needs it (esbuild turns these imports into lazy requires).
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Env } from "./config.ts";
import { type BodyFormat, describeAwsError, gotHttpAnswer } from "./aws-error.ts";
import type { FetchPlan } from "./ecr-registry.ts";
import type { SecretKeeper } from "./stderr.ts";
import { tokenFromEcrOutput, tokenFromEcrPublicOutput, type TokenResult } from "./token.ts";

/** Per attempt, DNS included; the SDK makes 3 attempts and the caller's deadline bounds the run.
 * Short, so a black-holed endpoint costs seconds, not the kubelet's minute. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** Per attempt, the longest silence on the connection: GetAuthorizationToken answers in well under
 * a second; STS may first fetch the OIDC issuer's keys, so it gets longer. */
export const ECR_REQUEST_TIMEOUT_MS = 4_000;
export const STS_REQUEST_TIMEOUT_MS = 8_000;
export const MAX_ATTEMPTS = 3;

type StaticCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };

/** The same variables the Go anchor honours; Node's agents implement them (proxyEnv, Node >= 24.5). */
function proxyEnv(env: Env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) {
    const v = env[k];
    if (v !== undefined && v !== "") out[k] = v;
  }
  return out;
}

function requestHandler(env: Env, requestTimeout: number) {
  const opts = { keepAlive: false, proxyEnv: proxyEnv(env) };
  return {
    httpAgent: new HttpAgent(opts),
    httpsAgent: new HttpsAgent(opts),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout,
    throwOnRequestTimeout: true,
  };
}

type Service = "ECR" | "ECR_PUBLIC" | "STS";

/** The SDK refuses FIPS or dual-stack together with a configured endpoint URL. */
function endpointOverridden(env: Env, service: Service): boolean {
  if ((env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "").toLowerCase() === "true") return false;
  return Boolean(env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL);
}

/** FIPS and dual-stack from the registry host, for every client of the plan. Only ever switched on,
 * so the SDK's own AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT still apply, except with an
 * endpoint URL: that is where the call goes, and the SDK would refuse it next to either flag. */
function endpointFlags(plan: FetchPlan, env: Env, service: Service) {
  if (endpointOverridden(env, service)) return { useFipsEndpoint: false, useDualstackEndpoint: false };
  return { ...(plan.fips ? { useFipsEndpoint: true } : {}), ...(plan.dualStack ? { useDualstackEndpoint: true } : {}) };
}

type Failure = { ok: false; error: string };

/** What `call` needs of an SDK client. */
type SdkClient = {
  config: { region: () => Promise<string>; credentials: () => Promise<unknown> };
  destroy(): void;
};

type CallSpec = {
  api: "ECR" | "ECR Public" | "STS";
  operation: string;
  format: BodyFormat;
  region: string | undefined;
  /** signed with the node's credentials (the SDK's default chain), not ones we pass in */
  nodeCredentials: boolean;
};

type Called<Out> = { ok: true; out: Out; name: string; status: string } | (Failure & { unreachable?: boolean });

/** "ECR GetAuthorizationToken in us-west-2", with the region the SDK resolved when the plan left it open. */
async function callName(spec: CallSpec, client: SdkClient): Promise<string> {
  let region = spec.region;
  if (region === undefined) {
    try {
      region = await client.config.region();
    } catch {
      // no region anywhere: the call's own error says so
    }
  }
  return `${spec.api} ${spec.operation} in ${region ?? "the default region"}`;
}

/** One SDK call. A failure is one line naming the call, its region and the HTTP status, never the body. */
async function call<Out extends { $metadata: { httpStatusCode?: number } }>(
  spec: CallSpec,
  client: SdkClient,
  send: () => Promise<Out>,
): Promise<Called<Out>> {
  const name = await callName(spec, client);
  if (spec.nodeCredentials) {
    // Resolved here (the client keeps them) so that a failing link of the chain, say the SDK's own
    // STS call for AWS_WEB_IDENTITY_TOKEN_FILE, is not reported as this call's HTTP answer.
    try {
      await client.config.credentials();
    } catch (e) {
      return { ok: false, error: `${name} failed: loading the node's AWS credentials: ${describeAwsError(e)}` };
    }
  }
  try {
    const out = await send();
    const status = out.$metadata.httpStatusCode;
    return { ok: true, out, name, status: status === undefined ? "no HTTP status" : `HTTP ${status}` };
  } catch (e) {
    return {
      ok: false,
      error: `${name} failed: ${describeAwsError(e, spec.format)}`,
      ...(gotHttpAnswer(e) ? {} : { unreachable: true }),
    };
  }
}

async function assumeRole(
  plan: FetchPlan,
  env: Env,
  signal: AbortSignal,
  keeper: SecretKeeper,
): Promise<{ ok: true; credentials: StaticCredentials | undefined } | (Failure & { unreachable?: boolean })> {
  const id = plan.identity;
  if (id.mode === "node") return { ok: true, credentials: undefined };
  const { STSClient, AssumeRoleWithWebIdentityCommand, AssumeRoleCommand } = await import("@aws-sdk/client-sts");
  const sts = new STSClient(stsClientConfig(plan, env));
  try {
    const spec = { api: "STS", format: "XML", region: plan.stsRegion } as const;
    const r =
      id.mode === "web-identity"
        ? await call({ ...spec, operation: "AssumeRoleWithWebIdentity", nodeCredentials: false }, sts, () =>
            sts.send(
              new AssumeRoleWithWebIdentityCommand({
                RoleArn: id.roleArn,
                RoleSessionName: id.sessionName,
                WebIdentityToken: id.token,
              }),
              { abortSignal: signal },
            ),
          )
        : await call({ ...spec, operation: "AssumeRole", nodeCredentials: true }, sts, () =>
            sts.send(new AssumeRoleCommand({ RoleArn: id.roleArn, RoleSessionName: id.sessionName }), {
              abortSignal: signal,
            }),
          );
    // The anchor's prefix (cmd/ecr-credential-provider/main.go: "failed to assume role: %w").
    if (!r.ok) return { ...r, error: `failed to assume role: ${r.error}` };
    const c = r.out.Credentials;
    keeper.secret(c?.SecretAccessKey);
    keeper.secret(c?.SessionToken);
    if (!c?.AccessKeyId || !c.SecretAccessKey)
      return {
        ok: false,
        error: `failed to assume role: ${r.name} failed: ${r.status}, no credentials for ${id.roleArn}`,
      };
    return {
      ok: true,
      credentials: {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
        ...(c.Expiration ? { expiration: c.Expiration } : {}),
      },
    };
  } finally {
    sts.destroy();
  }
}

/** Client settings for the plan's API: region, FIPS/dual-stack from the registry host, timeouts, proxies. */
export function clientConfig(plan: FetchPlan, env: Env, credentials?: StaticCredentials) {
  return {
    region: plan.region,
    requestHandler: requestHandler(env, ECR_REQUEST_TIMEOUT_MS),
    maxAttempts: MAX_ATTEMPTS,
    ...(credentials ? { credentials } : {}),
    ...endpointFlags(plan, env, plan.api === "ecr" ? "ECR" : "ECR_PUBLIC"),
  };
}

/** STS where the plan says, with the registry host's FIPS/dual-stack choice (an IPv6-only node
 * needs the dual-stack STS as much as the dual-stack ECR). */
export function stsClientConfig(plan: FetchPlan, env: Env) {
  return {
    region: plan.stsRegion,
    requestHandler: requestHandler(env, STS_REQUEST_TIMEOUT_MS),
    maxAttempts: MAX_ATTEMPTS,
    ...endpointFlags(plan, env, "STS"),
  };
}

/** One GetAuthorizationToken call and its output checked; the client is closed after. */
async function tokenCall<Out extends { $metadata: { httpStatusCode?: number } }>(
  spec: CallSpec,
  client: SdkClient,
  send: () => Promise<Out>,
  parse: (out: Out, keeper: SecretKeeper) => TokenResult,
  keeper: SecretKeeper,
): Promise<TokenResult> {
  try {
    const r = await call(spec, client, send);
    if (!r.ok) return r;
    const t = parse(r.out, keeper);
    return t.ok ? t : { ok: false, error: `${r.name} failed: ${r.status}: ${t.error}` };
  } finally {
    client.destroy();
  }
}

/** GetAuthorizationToken for the plan's registry, as the plan's identity. Never throws. */
export async function fetchToken(
  plan: FetchPlan,
  env: Env,
  signal: AbortSignal,
  keeper: SecretKeeper,
): Promise<TokenResult> {
  const role = await assumeRole(plan, env, signal, keeper);
  if (!role.ok) return role;
  const { credentials } = role;
  const spec = {
    operation: "GetAuthorizationToken",
    format: "JSON",
    region: plan.region,
    nodeCredentials: credentials === undefined,
  } as const;
  if (plan.api === "ecr-public") {
    const { ECRPUBLICClient, GetAuthorizationTokenCommand } = await import("@aws-sdk/client-ecr-public");
    const client = new ECRPUBLICClient(clientConfig(plan, env, credentials));
    const send = () => client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
    return tokenCall({ ...spec, api: "ECR Public" }, client, send, tokenFromEcrPublicOutput, keeper);
  }
  const { ECRClient, GetAuthorizationTokenCommand } = await import("@aws-sdk/client-ecr");
  const client = new ECRClient(clientConfig(plan, env, credentials));
  const send = () => client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
  return tokenCall({ ...spec, api: "ECR" }, client, send, tokenFromEcrOutput, keeper);
}
