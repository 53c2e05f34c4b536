// One request, the anchor's way (cloud-provider-aws cmd/ecr-credential-provider, "the anchor"
// throughout) and then some: image -> registry (through the mirror map) -> which ECR API, region
// and identity -> disk cache, a remembered failure, or GetAuthorizationToken -> the response.
import { makeResponse } from "../shared/kubelet/codec.ts";
import { formatGoDuration, formatSeconds } from "../shared/kubelet/duration.ts";
import type { CredentialProviderRequest, CredentialProviderResponse } from "../shared/kubelet/types.ts";
import {
  cacheKey,
  forgetFailure,
  isFresh,
  isUsableStale,
  readCache,
  readFailure,
  writeCache,
  writeFailure,
  type Bounds,
  type CachedToken,
} from "./cache.ts";
import { mirrorFor, type Config } from "./config.ts";
import { classifyHost, ECR_PUBLIC_REGION, type FetchPlan } from "./ecr-registry.ts";
import { chooseIdentity } from "./identity.ts";
import { parseImage } from "./image.ts";
import { serviceAccountOf } from "./service-account.ts";
import type { SecretKeeper, Stderr } from "./stderr.ts";
import { halfLifeSeconds, keepToken, type Token, type TokenResult } from "./token.ts";

export { ROLE_ANNOTATION } from "./config.ts";
/** When ECR fails and a stale token is served, the kubelet should ask again soon. */
export const STALE_CACHE_SECONDS = 5 * 60;

/** The network half (ecr.ts): never throws; registers every secret it learns with the keeper. */
export type FetchToken = (plan: FetchPlan, signal: AbortSignal, keeper: SecretKeeper) => Promise<TokenResult>;

export type Deps = {
  fetchToken: FetchToken;
  now: () => number;
  /** where warnings go, and every secret the run learns */
  stderr: Pick<Stderr, "secret" | "warn" | "scrub">;
};

export type Source = "cache" | "ecr" | "stale-cache";

export type Outcome =
  | { ok: true; response: CredentialProviderResponse; source: Source; plan: FetchPlan; registry: string }
  | { ok: false; error: string; plan?: FetchPlan; registry?: string };

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
  const chosen = chooseIdentity(req, config, reg.host, accountId);
  if (!chosen.ok) return chosen;
  const plan: FetchPlan = {
    api: reg.kind === "public" ? "ecr-public" : "ecr",
    region,
    // The anchor asks STS in the default region for ECR Public; us-east-1 when there is none.
    stsRegion: reg.kind === "public" ? (config.defaultRegion ?? ECR_PUBLIC_REGION) : region,
    fips: reg.kind === "private" && reg.fips,
    dualStack: reg.kind !== "other" && reg.dualStack,
    host: reg.host,
    identity: chosen.identity,
  };
  return { ok: true, registry: image.value.registry, plan, ...(warning ? { warning } : {}) };
}

/** The service account a web-identity plan acts for, as a hash (the key and the entry hold no claim),
 * or undefined when its token names none: then nothing is cached for it. */
function subjectOf(plan: FetchPlan): string | undefined {
  const id = plan.identity;
  if (id.mode !== "web-identity") return undefined;
  const sa = serviceAccountOf(id.token);
  return sa ? cacheKey({ namespace: sa.namespace, name: sa.name, uid: sa.uid }) : undefined;
}

export type CacheKeys = {
  /** the token's entry: registry, API endpoint, role and who asks */
  token: string;
  /** the endpoint alone, for failures that are the network's: every identity waits on them alike */
  endpoint: string;
  subject: string | undefined;
};

/** Where the token lives on disk, or undefined when it may not be cached (a pod token naming no service account).
 * In token mode the key is the service account the kubelet minted the token for (namespace, name,
 * UID), never the token: a new pod or a kubelet restart brings a new token for the same account. */
export function cacheKeys(plan: FetchPlan, config: Config): CacheKeys | undefined {
  const e = config.env;
  const id = plan.identity;
  const subject = subjectOf(plan);
  if (id.mode === "web-identity" && subject === undefined) return undefined;
  const endpoint = {
    api: plan.api,
    region: plan.region,
    stsRegion: id.mode === "node" ? undefined : plan.stsRegion,
    fips: String(plan.fips),
    dualStack: String(plan.dualStack),
    endpoint: e.AWS_ENDPOINT_URL_ECR ?? e.AWS_ENDPOINT_URL_ECR_PUBLIC ?? e.AWS_ENDPOINT_URL,
    stsEndpoint: e.AWS_ENDPOINT_URL_STS,
    proxy: e.HTTPS_PROXY ?? e.https_proxy ?? e.HTTP_PROXY ?? e.http_proxy,
  };
  return {
    token: cacheKey({
      v: "2",
      ...endpoint,
      host: plan.host,
      mode: id.mode,
      role: id.mode === "node" ? undefined : id.roleArn,
      subject,
      profile: e.AWS_PROFILE,
      accessKey: e.AWS_ACCESS_KEY_ID,
      roleArn: e.AWS_ROLE_ARN,
    }),
    endpoint: cacheKey({ v: "2-endpoint", ...endpoint }),
    subject,
  };
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
      done({ ok: false, error: timeoutMessage(plan, timeoutMs), unreachable: true });
    }, timeoutMs);
  });
  try {
    return await Promise.race([deps.fetchToken(plan, controller.signal, deps.stderr), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function getCredentials(req: CredentialProviderRequest, config: Config, deps: Deps): Promise<Outcome> {
  deps.stderr.secret(req.serviceAccountToken);
  const planned = planFor(req, config);
  if (!planned.ok) return planned;
  const { plan, registry } = planned;
  if (planned.warning) deps.stderr.warn(planned.warning);
  const failed = (error: string): Outcome => ({ ok: false, error, plan, registry });
  const served = (source: Source, t: CachedToken | Token, seconds: number): Outcome => ({
    ok: true,
    source,
    plan,
    registry,
    response: respond(req, registry, t, seconds),
  });

  const dir = config.cacheDir;
  const keys = dir !== undefined ? cacheKeys(plan, config) : undefined;
  if (dir !== undefined && keys === undefined)
    deps.stderr.warn("warning: the service-account token names no service account; its token is not cached");
  const bounds = (): Bounds => ({ maxEntries: config.cacheMaxEntries, now: deps.now() });
  let cached: CachedToken | undefined;
  if (dir !== undefined && keys !== undefined) {
    cached = readCache(dir, keys.token);
    // The key already covers both; the entry says it again, so no other registry's or service
    // account's token is ever served, whatever a hash collision or a copied file would make of it.
    if (cached && (cached.registry !== plan.host || cached.subject !== keys.subject)) cached = undefined;
    if (cached) keepToken(deps.stderr, cached);
    const now = deps.now();
    if (cached && isFresh(cached, now)) return served("cache", cached, halfLifeSeconds(cached.expiresAt, now));
    // Checked before anything loads the SDK: a remembered failure costs a file read, not a timeout.
    if (config.failureMemoryMs > 0) {
      const remembered = readFailure(dir, keys.token, now) ?? readFailure(dir, keys.endpoint, now);
      if (remembered) {
        const why = `${remembered.error} (at ${iso(remembered.failedAt)}; not asked again before ${iso(remembered.until)})`;
        if (cached && isUsableStale(cached, now)) {
          deps.stderr.warn(
            `warning: serving a cached token for ${plan.host} valid until ${iso(cached.expiresAt)}: ${why}`,
          );
          return served("stale-cache", cached, Math.min(STALE_CACHE_SECONDS, halfLifeSeconds(cached.expiresAt, now)));
        }
        return failed(why);
      }
    }
  }

  const fetched = await fetchWithin(plan, config.timeoutMs, deps);
  if (!fetched.ok) {
    const now = deps.now();
    if (dir !== undefined && keys !== undefined && config.failureMemoryMs > 0) {
      const failure = { error: deps.stderr.scrub(fetched.error), failedAt: now, until: now + config.failureMemoryMs };
      const why = writeFailure(dir, keys.token, failure, bounds());
      if (fetched.unreachable) writeFailure(dir, keys.endpoint, failure, bounds());
      if (why) deps.stderr.warn(`warning: could not remember the failure in ${dir}: ${why}`);
    }
    if (cached && isUsableStale(cached, now)) {
      deps.stderr.warn(
        `warning: serving a cached token for ${plan.host} valid until ${iso(cached.expiresAt)}: ${fetched.error}`,
      );
      return served("stale-cache", cached, Math.min(STALE_CACHE_SECONDS, halfLifeSeconds(cached.expiresAt, now)));
    }
    return failed(fetched.error);
  }
  const token: Token = fetched.value;
  const now = deps.now();
  if (dir !== undefined && keys !== undefined) {
    forgetFailure(dir, keys.endpoint);
    forgetFailure(dir, keys.token);
    if (token.expiresAt !== undefined && token.expiresAt > now) {
      const why = writeCache(
        dir,
        keys.token,
        {
          registry: plan.host,
          username: token.username,
          password: token.password,
          expiresAt: token.expiresAt,
          fetchedAt: now,
          ...(keys.subject !== undefined ? { subject: keys.subject } : {}),
        },
        bounds(),
      );
      if (why) deps.stderr.warn(`warning: could not write the token cache in ${dir}: ${why}`);
    }
  }
  return served("ecr", token, halfLifeSeconds(token.expiresAt, now));
}
