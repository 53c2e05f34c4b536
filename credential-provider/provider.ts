// One request, the anchor's way (cloud-provider-aws cmd/ecr-credential-provider, "the anchor"
// throughout) and then some: image -> registry (through the mirror map) -> which ECR API, region
// and identity -> disk cache or GetAuthorizationToken -> the response.
import { makeResponse } from "../shared/kubelet/codec.ts";
import { formatGoDuration, formatSeconds } from "../shared/kubelet/duration.ts";
import type { CredentialProviderRequest, CredentialProviderResponse } from "../shared/kubelet/types.ts";
import { cacheKey, isFresh, isUsableStale, readCache, writeCache, type CachedToken } from "./cache.ts";
import { mappedRole, mirrorFor, type Config } from "./config.ts";
import { classifyHost, type FetchPlan, type Identity } from "./ecr-registry.ts";
import { parseImage } from "./image.ts";
import type { SecretKeeper, Stderr } from "./stderr.ts";
import { halfLifeSeconds, keepToken, type Token, type TokenResult } from "./token.ts";

/** The annotation the anchor reads in service-account token mode. */
export const ROLE_ANNOTATION = "eks.amazonaws.com/ecr-role-arn";
/** When ECR fails and a stale token is served, the kubelet should ask again soon. */
export const STALE_CACHE_SECONDS = 5 * 60;

/** The network half (ecr.ts): never throws; registers every secret it learns with the keeper. */
export type FetchToken = (plan: FetchPlan, signal: AbortSignal, keeper: SecretKeeper) => Promise<TokenResult>;

export type Deps = {
  fetchToken: FetchToken;
  now: () => number;
  /** where warnings go, and every secret the run learns */
  stderr: Pick<Stderr, "secret" | "warn">;
};

export type Outcome =
  | { ok: true; response: CredentialProviderResponse; source: "cache" | "ecr" | "stale-cache"; plan: FetchPlan }
  | { ok: false; error: string };

export type PlanResult =
  | { ok: true; registry: string; plan: FetchPlan; warning?: string }
  | { ok: false; error: string };

export function planFor(req: CredentialProviderRequest, config: Config): PlanResult {
  const image = parseImage(req.image);
  if (!image.ok) return image;
  const mirror = mirrorFor(config, image.value.registry);
  const target = mirror ? mirror.target : image.value.hostname;
  const reg = classifyHost(target);
  let warning: string | undefined;
  let region: string | undefined;
  if (reg.kind === "other") {
    region = config.defaultRegion;
    warning = `warning: ${reg.host} is not an ECR registry host; asking ECR in ${region ? `the default region ${region}` : "the SDK's default region"}`;
  } else {
    region = reg.region;
  }
  const accountId = reg.kind === "private" ? reg.accountId : undefined;
  let identity: Identity = { mode: "node" };
  if (req.serviceAccountToken) {
    const roleArn =
      req.serviceAccountAnnotations?.[ROLE_ANNOTATION] || mappedRole(config, reg.host, accountId) || config.ecrRoleArn;
    if (roleArn) identity = { mode: "web-identity", roleArn, token: req.serviceAccountToken };
  } else {
    const roleArn = mappedRole(config, reg.host, accountId);
    if (roleArn) identity = { mode: "assume-role", roleArn };
  }
  const plan: FetchPlan = {
    api: reg.kind === "public" ? "ecr-public" : "ecr",
    region,
    fips: reg.kind === "private" && reg.fips,
    dualStack: reg.kind === "private" && reg.dualStack,
    host: reg.host,
    identity,
  };
  return { ok: true, registry: image.value.registry, plan, ...(warning ? { warning } : {}) };
}

/** Who the token would belong to: the plan plus the environment the SDK reads its identity from. */
export function identityKey(plan: FetchPlan, config: Config): string {
  const e = config.env;
  const id = plan.identity;
  return cacheKey({
    v: "1",
    api: plan.api,
    host: plan.host,
    region: plan.region,
    fips: String(plan.fips),
    dualStack: String(plan.dualStack),
    mode: id.mode,
    role: id.mode === "node" ? undefined : id.roleArn,
    // A pod's token is only ever the key to its own credentials.
    token: id.mode === "web-identity" ? cacheKey({ token: id.token }) : undefined,
    profile: e.AWS_PROFILE,
    accessKey: e.AWS_ACCESS_KEY_ID,
    roleArn: e.AWS_ROLE_ARN,
    endpoint: e.AWS_ENDPOINT_URL_ECR ?? e.AWS_ENDPOINT_URL_ECR_PUBLIC ?? e.AWS_ENDPOINT_URL,
  });
}

function respond(
  req: CredentialProviderRequest,
  registry: string,
  t: { username: string; password: string },
  seconds: number,
): CredentialProviderResponse {
  return makeResponse(req.apiVersion, {
    cacheKeyType: "Registry",
    cacheDuration: formatSeconds(seconds),
    auth: { [registry]: { username: t.username, password: t.password } },
  });
}

/** What the run says when its deadline passes before STS and ECR have answered. */
export function timeoutMessage(plan: FetchPlan, timeoutMs: number): string {
  const waited = formatGoDuration(BigInt(Math.round(timeoutMs)) * 1_000_000n);
  const peers = `${plan.identity.mode === "node" ? "" : "STS and "}${plan.api === "ecr" ? "ECR" : "ECR Public"}`;
  return (
    `timed out after ${waited} waiting for ${peers} (region ${plan.region ?? "default"}); ` +
    "check network access, proxy settings (HTTPS_PROXY, NO_PROXY) and the credential source"
  );
}

/** The fetch, or the deadline's message if it comes first; the fetch is aborted then. */
async function fetchWithin(plan: FetchPlan, timeoutMs: number, deps: Deps): Promise<TokenResult> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<TokenResult>((done) => {
    timer = setTimeout(() => {
      controller.abort();
      done({ ok: false, error: timeoutMessage(plan, timeoutMs) });
    }, timeoutMs);
  });
  try {
    return await Promise.race([deps.fetchToken(plan, controller.signal, deps.stderr), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export async function getCredentials(req: CredentialProviderRequest, config: Config, deps: Deps): Promise<Outcome> {
  deps.stderr.secret(req.serviceAccountToken);
  const planned = planFor(req, config);
  if (!planned.ok) return planned;
  const { plan, registry } = planned;
  if (planned.warning) deps.stderr.warn(planned.warning);

  const dir = config.cacheDir;
  const key = dir !== undefined ? identityKey(plan, config) : "";
  let cached: CachedToken | undefined;
  if (dir !== undefined) {
    cached = readCache(dir, key);
    if (cached && cached.registry !== plan.host) cached = undefined;
    if (cached) keepToken(deps.stderr, cached);
    const now = deps.now();
    if (cached && isFresh(cached, now)) {
      return {
        ok: true,
        source: "cache",
        plan,
        response: respond(req, registry, cached, halfLifeSeconds(cached.expiresAt, now)),
      };
    }
  }

  const fetched = await fetchWithin(plan, config.timeoutMs, deps);
  if (!fetched.ok) {
    const now = deps.now();
    if (cached && isUsableStale(cached, now)) {
      deps.stderr.warn(
        `warning: serving a cached token for ${plan.host} valid until ${new Date(cached.expiresAt).toISOString()}: ${fetched.error}`,
      );
      const seconds = Math.min(STALE_CACHE_SECONDS, halfLifeSeconds(cached.expiresAt, now));
      return { ok: true, source: "stale-cache", plan, response: respond(req, registry, cached, seconds) };
    }
    return { ok: false, error: fetched.error };
  }
  const token: Token = fetched.value;
  const now = deps.now();
  if (dir !== undefined && token.expiresAt !== undefined && token.expiresAt > now) {
    const failed = writeCache(dir, key, {
      registry: plan.host,
      username: token.username,
      password: token.password,
      expiresAt: token.expiresAt,
      fetchedAt: now,
    });
    if (failed) deps.stderr.warn(`warning: could not write the token cache in ${dir}: ${failed}`);
  }
  return {
    ok: true,
    source: "ecr",
    plan,
    response: respond(req, registry, token, halfLifeSeconds(token.expiresAt, now)),
  };
}
