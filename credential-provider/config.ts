// Settings from flags (the kubelet config's `args`) and the environment (the kubelet's own plus
// the config's `env`). Flags win over environment variables. Parsed with node:util (no yargs on
// the kubelet's path); positional arguments such as `get-credentials` are ignored like the anchor.
import { parseArgs } from "node:util";
import { errorMessage, type JsonObject } from "../shared/json.ts";
import { parseGoDuration, NANOS_PER_SECOND } from "../shared/kubelet/duration.ts";
import { classifyHost } from "./ecr-registry.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export type Mirror = { source: string; target: string };

export type Config = {
  cacheDir: string | undefined;
  /** source registry (text before the first "/" of an image) -> ECR registry host */
  mirrors: Mirror[];
  /** ECR registry host or 12-digit account ID -> role ARN */
  roleMap: Map<string, string>;
  /** whole run, network included: well inside the kubelet's 1-minute limit */
  timeoutMs: number;
  /** AWS_REGION, else AWS_DEFAULT_REGION (the JS SDK ignores the latter; the Go anchor reads it) */
  defaultRegion: string | undefined;
  /** fallback role for service-account token mode (the anchor's AWS_ECR_ROLE_ARN) */
  ecrRoleArn: string | undefined;
  env: Env;
};

export const DEFAULT_TIMEOUT_MS = 30_000;
export const MAX_TIMEOUT_MS = 55_000;

export const OPTIONS = {
  "cache-dir": { type: "string" },
  "registry-mirror": { type: "string", multiple: true },
  "role-map": { type: "string", multiple: true },
  timeout: { type: "string" },
} as const;

export type ConfigResult = { ok: true; value: Config } | { ok: false; error: string };

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(/[\s,]+/).filter((s) => s !== "");
}

function pairs(items: string[], what: string): { ok: true; value: [string, string][] } | { ok: false; error: string } {
  const out: [string, string][] = [];
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0 || eq === item.length - 1)
      return { ok: false, error: `invalid ${what} ${JSON.stringify(item)}: expected KEY=VALUE` };
    out.push([item.slice(0, eq), item.slice(eq + 1)]);
  }
  return { ok: true, value: out };
}

const nonEmpty = (s: string | undefined): string | undefined =>
  s === undefined || s.trim() === "" ? undefined : s.trim();

export function loadConfig(argv: string[], env: Env): ConfigResult {
  let values: {
    "cache-dir"?: string | boolean;
    "registry-mirror"?: (string | boolean)[];
    "role-map"?: (string | boolean)[];
    timeout?: string | boolean;
  };
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true }).values;
  } catch (e) {
    return { ok: false, error: `invalid arguments: ${errorMessage(e)}` };
  }
  const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

  const mirrorItems = strs(values["registry-mirror"]).flatMap((s) => splitList(s));
  const mirrorPairs = pairs(
    mirrorItems.length ? mirrorItems : splitList(env.BERTH_REGISTRY_MIRRORS),
    "registry mirror",
  );
  if (!mirrorPairs.ok) return mirrorPairs;
  const mirrors: Mirror[] = [];
  for (const [source, targetText] of mirrorPairs.value) {
    const target = (targetText.split("/")[0] ?? "").toLowerCase();
    if (classifyHost(target).kind === "other") {
      return {
        ok: false,
        error: `invalid registry mirror ${JSON.stringify(`${source}=${targetText}`)}: ${target} is not an ECR registry host`,
      };
    }
    mirrors.push({ source: source.toLowerCase(), target });
  }

  const roleItems = strs(values["role-map"]).flatMap((s) => splitList(s));
  const rolePairs = pairs(roleItems.length ? roleItems : splitList(env.BERTH_ROLE_MAP), "role map entry");
  if (!rolePairs.ok) return rolePairs;
  const roleMap = new Map<string, string>();
  for (const [registry, arn] of rolePairs.value) {
    if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/./.test(arn)) {
      return {
        ok: false,
        error: `invalid role map entry for ${registry}: ${JSON.stringify(arn)} is not an IAM role ARN`,
      };
    }
    roleMap.set(registry.toLowerCase(), arn);
  }

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  const timeoutText = nonEmpty(str(values.timeout)) ?? nonEmpty(env.BERTH_TIMEOUT);
  if (timeoutText !== undefined) {
    const d = parseGoDuration(timeoutText);
    if (!d.ok) return { ok: false, error: `invalid timeout: ${d.error}` };
    const ms = Number((d.ns * 1000n) / NANOS_PER_SECOND);
    if (ms <= 0 || ms > MAX_TIMEOUT_MS) {
      return {
        ok: false,
        error: `invalid timeout ${JSON.stringify(timeoutText)}: must be above 0s and at most 55s (the kubelet kills a provider after 1m)`,
      };
    }
    timeoutMs = ms;
  }

  return {
    ok: true,
    value: {
      cacheDir: nonEmpty(str(values["cache-dir"])) ?? nonEmpty(env.BERTH_CACHE_DIR),
      mirrors,
      roleMap,
      timeoutMs,
      defaultRegion: nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION),
      ecrRoleArn: nonEmpty(env.AWS_ECR_ROLE_ARN),
      env,
    },
  };
}

/** The mirror whose source is the image's registry, if any. */
export function mirrorFor(config: Config, registry: string): Mirror | undefined {
  const r = registry.toLowerCase();
  return config.mirrors.find((m) => m.source === r);
}

/** Role for an ECR host from the role map: by host first, then by account ID. */
export function mappedRole(config: Config, host: string, accountId: string | undefined): string | undefined {
  return config.roleMap.get(host) ?? (accountId !== undefined ? config.roleMap.get(accountId) : undefined);
}

/** The kubelet passes `args` from its config (the anchor's configs pass `get-credentials`): only a
 * help or version flag, `validate-config`, `get-credentials IMAGE` or a terminal on stdin mean a person. */
export function wantsCli(argv: string[], stdinIsTty: boolean): boolean {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true });
  const v: JsonObject = values;
  if (v.help || v.h || v.version) return true;
  if (positionals[0] === "validate-config") return true;
  if (positionals[0] === "get-credentials" && positionals.length > 1) return true;
  return stdinIsTty;
}
