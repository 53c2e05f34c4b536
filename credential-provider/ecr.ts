// The network half: STS and ECR through the AWS SDK. Loaded with import() only when the disk
// cache cannot answer, so a cache hit never pays for the SDK's start-up; each client package is
// itself loaded only on the path that needs it (esbuild turns these imports into lazy requires).
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Env } from "./config.ts";
import type { FetchPlan } from "./ecr-registry.ts";
import { addSecret } from "./secrets.ts";
import { tokenFromEcrOutput, tokenFromEcrPublicOutput, type Token, type TokenResult } from "./token.ts";

/** Per attempt; the SDK retries (3 attempts) and the caller's deadline bounds the whole run. */
export const CONNECT_TIMEOUT_MS = 3_000;
export const REQUEST_TIMEOUT_MS = 8_000;
export const SESSION_NAME = "ecr-credential-provider"; // the anchor's RoleSessionName

type StaticCredentials = { accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date };

export class FetchError extends Error {}

/** The same variables the Go anchor honours; Node's agents implement them (proxyEnv, Node >= 24.5). */
function proxyEnv(env: Env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) {
    const v = env[k];
    if (v !== undefined && v !== "") out[k] = v;
  }
  return out;
}

function requestHandler(env: Env) {
  const opts = { keepAlive: false, proxyEnv: proxyEnv(env) };
  return {
    httpAgent: new HttpAgent(opts),
    httpsAgent: new HttpsAgent(opts),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  };
}

/** The SDK refuses FIPS or dual-stack together with a configured endpoint URL. */
function endpointOverridden(env: Env, service: "ECR" | "ECR_PUBLIC" | "STS"): boolean {
  if ((env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "").toLowerCase() === "true") return false;
  return Boolean(env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL);
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const name = e.name && e.name !== "Error" ? `${e.name}: ` : "";
    return `${name}${e.message || "(no message)"}`;
  }
  return String(e);
}

async function assumeRole(plan: FetchPlan, env: Env, signal: AbortSignal): Promise<StaticCredentials | undefined> {
  const id = plan.identity;
  if (id.mode === "node") return undefined;
  const { STSClient, AssumeRoleWithWebIdentityCommand, AssumeRoleCommand } = await import("@aws-sdk/client-sts");
  const sts = new STSClient({ region: plan.region, requestHandler: requestHandler(env), maxAttempts: 3 });
  try {
    const out =
      id.mode === "web-identity"
        ? await sts.send(
            new AssumeRoleWithWebIdentityCommand({
              RoleArn: id.roleArn,
              RoleSessionName: SESSION_NAME,
              WebIdentityToken: id.token,
            }),
            { abortSignal: signal },
          )
        : await sts.send(new AssumeRoleCommand({ RoleArn: id.roleArn, RoleSessionName: SESSION_NAME }), {
            abortSignal: signal,
          });
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`STS returned no credentials for ${id.roleArn}`);
    addSecret(c.SecretAccessKey);
    addSecret(c.SessionToken);
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
      ...(c.Expiration ? { expiration: c.Expiration } : {}),
    };
  } catch (e) {
    if (signal.aborted) throw e;
    throw new FetchError(`failed to assume role: ${describe(e)}`);
  } finally {
    sts.destroy();
  }
}

/** Client settings for the plan's API: region, FIPS/dual-stack from the registry host, timeouts, proxies. */
export function clientConfig(plan: FetchPlan, env: Env, credentials?: StaticCredentials) {
  const overridden = endpointOverridden(env, plan.api === "ecr" ? "ECR" : "ECR_PUBLIC");
  return {
    region: plan.region,
    requestHandler: requestHandler(env),
    maxAttempts: 3,
    ...(credentials ? { credentials } : {}),
    // Only ever switched on from the host, so AWS_USE_FIPS_ENDPOINT / AWS_USE_DUALSTACK_ENDPOINT still apply.
    ...(overridden || plan.api !== "ecr"
      ? {}
      : { ...(plan.fips ? { useFipsEndpoint: true } : {}), ...(plan.dualStack ? { useDualstackEndpoint: true } : {}) }),
  };
}

/** One GetAuthorizationToken call: its output checked, SDK errors turned into one safe message. */
async function getToken<Out>(
  service: string,
  where: string,
  signal: AbortSignal,
  client: { destroy(): void },
  send: () => Promise<Out>,
  parse: (out: Out) => TokenResult,
): Promise<Token> {
  try {
    const t = parse(await send());
    if (!t.ok) throw new FetchError(t.error);
    return t.value;
  } catch (e) {
    if (e instanceof FetchError || signal.aborted) throw e;
    throw new FetchError(`${service} GetAuthorizationToken ${where} failed: ${describe(e)}`);
  } finally {
    client.destroy();
  }
}

/** GetAuthorizationToken for the plan's registry, as the plan's identity. */
export async function fetchToken(plan: FetchPlan, env: Env, signal: AbortSignal): Promise<Token> {
  const credentials = await assumeRole(plan, env, signal);
  const where = `in ${plan.region ?? "the default region"}`;
  if (plan.api === "ecr-public") {
    const { ECRPUBLICClient, GetAuthorizationTokenCommand } = await import("@aws-sdk/client-ecr-public");
    const client = new ECRPUBLICClient(clientConfig(plan, env, credentials));
    const send = () => client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
    return getToken("ECR Public", where, signal, client, send, tokenFromEcrPublicOutput);
  }
  const { ECRClient, GetAuthorizationTokenCommand } = await import("@aws-sdk/client-ecr");
  const client = new ECRClient(clientConfig(plan, env, credentials));
  const send = () => client.send(new GetAuthorizationTokenCommand({}), { abortSignal: signal });
  return getToken("ECR", where, signal, client, send, tokenFromEcrOutput);
}
