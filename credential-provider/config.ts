// Settings from flags (the kubelet config's `args`) and the environment (the kubelet's own plus
// the config's `env`). Flags win over environment variables. Parsed with node:util (no yargs on
// the kubelet's path); positional arguments such as `get-credentials` and flags we do not know
// are ignored like the anchor, so whatever a kubelet config passes never stops a request.
import { parseArgs } from "node:util";
import { errorMessage, type JsonObject } from "../shared/json.ts";
import { parseGoDuration, NANOS_PER_SECOND } from "../shared/kubelet/duration.ts";
import { classifyHost } from "./ecr-registry.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export type Mirror = { source: string; target: string };

/** A role-map entry: AssumeRole with the node's credentials, or (`web-identity:` before the ARN)
 * AssumeRoleWithWebIdentity with the pod's service-account token. */
export type MappedRole = { roleArn: string; webIdentity: boolean };

/** What a request that carries a service-account token gets when no role applies to it. */
export const TOKEN_MODES = ["node-fallback", "fail-closed"] as const;
export type TokenMode = (typeof TOKEN_MODES)[number];

export type Config = {
  cacheDir: string | undefined;
  /** entries kept in the cache directory, tokens and remembered failures together */
  cacheMaxEntries: number;
  /** how long a failed fetch is remembered (with a cache directory); 0 = never */
  failureMemoryMs: number;
  /** source registry (text before the first "/" of an image) -> ECR registry host */
  mirrors: Mirror[];
  /** ECR registry host or 12-digit account ID -> role */
  roleMap: Map<string, MappedRole>;
  /** service-account annotations read for a role ARN, in order */
  roleAnnotations: string[];
  tokenMode: TokenMode;
  /** whole run, network included: well inside the kubelet's 1-minute limit */
  timeoutMs: number;
  /** AWS_REGION, else AWS_DEFAULT_REGION (the JS SDK ignores the latter; the Go anchor reads it) */
  defaultRegion: string | undefined;
  /** fallback role for service-account token mode (the anchor's AWS_ECR_ROLE_ARN) */
  ecrRoleArn: string | undefined;
  /** one JSON line per request, when set */
  logFile: { path: string; maxBytes: number } | undefined;
  env: Env;
};

/** The annotation the anchor reads in service-account token mode. */
export const ROLE_ANNOTATION = "eks.amazonaws.com/ecr-role-arn";
export const WEB_IDENTITY_MARKER = "web-identity:";
export const DEFAULT_TIMEOUT_MS = 30_000;
export const MAX_TIMEOUT_MS = 55_000;
export const DEFAULT_CACHE_MAX_ENTRIES = 1000;
export const DEFAULT_FAILURE_MEMORY_MS = 60_000;
export const DEFAULT_LOG_FILE_MAX_BYTES = 10 * 1024 * 1024;

export const OPTIONS = {
  "cache-dir": { type: "string" },
  "cache-max-entries": { type: "string" },
  "failure-memory": { type: "string" },
  "registry-mirror": { type: "string", multiple: true },
  "role-map": { type: "string", multiple: true },
  "role-annotation": { type: "string", multiple: true },
  "token-mode": { type: "string" },
  timeout: { type: "string" },
  "log-file": { type: "string" },
  "log-file-max-bytes": { type: "string" },
} as const;

export type ConfigResult = { ok: true; value: Config } | { ok: false; error: string };
type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function splitList(text: string | undefined): string[] {
  return (text ?? "").split(/[\s,]+/).filter((s) => s !== "");
}

function pairs(items: string[], what: string): Parsed<[string, string][]> {
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

const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/./;

function duration(text: string, what: string, minMs: number, maxMs: number, limits: string): Parsed<number> {
  const d = parseGoDuration(text);
  if (!d.ok) return { ok: false, error: `invalid ${what}: ${d.error}` };
  const ms = Number((d.ns * 1000n) / NANOS_PER_SECOND);
  if (ms < minMs || ms > maxMs) return { ok: false, error: `invalid ${what} ${JSON.stringify(text)}: ${limits}` };
  return { ok: true, value: ms };
}

function count(text: string, what: string, min: number): Parsed<number> {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text)))
    return { ok: false, error: `invalid ${what} ${JSON.stringify(text)}: expected a whole number of at least ${min}` };
  return { ok: true, value: Number(text) };
}

type Values = { [K in keyof typeof OPTIONS]?: string | boolean | (string | boolean)[] };

/** The flags we know, whatever else argv holds: unknown flags and positionals are ignored. */
function parseFlags(argv: string[]): Parsed<{ values: Values; positionals: string[] }> {
  try {
    const r = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true });
    return { ok: true, value: { values: r.values as Values, positionals: r.positionals } };
  } catch (e) {
    return { ok: false, error: `invalid arguments: ${errorMessage(e)}` };
  }
}

export function loadConfig(argv: string[], env: Env): ConfigResult {
  const flags = parseFlags(argv);
  if (!flags.ok) return flags;
  const values = flags.value.values;
  // A flag given without a value (`--cache-dir` last) reads as unset, like an unknown flag.
  const str = (k: keyof typeof OPTIONS): string | undefined => {
    const v = values[k];
    return typeof v === "string" ? v : undefined;
  };
  const strs = (k: keyof typeof OPTIONS): string[] => {
    const v = values[k];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  };
  const setting = (k: keyof typeof OPTIONS, variable: string) => nonEmpty(str(k)) ?? nonEmpty(env[variable]);

  const mirrorItems = strs("registry-mirror").flatMap((s) => splitList(s));
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

  const roleItems = strs("role-map").flatMap((s) => splitList(s));
  const rolePairs = pairs(roleItems.length ? roleItems : splitList(env.BERTH_ROLE_MAP), "role map entry");
  if (!rolePairs.ok) return rolePairs;
  const roleMap = new Map<string, MappedRole>();
  for (const [registry, value] of rolePairs.value) {
    const webIdentity = value.startsWith(WEB_IDENTITY_MARKER);
    const roleArn = webIdentity ? value.slice(WEB_IDENTITY_MARKER.length) : value;
    if (!ROLE_ARN.test(roleArn)) {
      return {
        ok: false,
        error: `invalid role map entry for ${registry}: ${JSON.stringify(roleArn)} is not an IAM role ARN`,
      };
    }
    roleMap.set(registry.toLowerCase(), { roleArn, webIdentity });
  }

  const annotationItems = strs("role-annotation").flatMap((s) => splitList(s));
  const roleAnnotations = annotationItems.length
    ? annotationItems
    : splitList(env.BERTH_ROLE_ANNOTATIONS).length
      ? splitList(env.BERTH_ROLE_ANNOTATIONS)
      : [ROLE_ANNOTATION];

  const tokenModeText = setting("token-mode", "BERTH_TOKEN_MODE") ?? "node-fallback";
  if (!(TOKEN_MODES as readonly string[]).includes(tokenModeText)) {
    return {
      ok: false,
      error: `invalid token mode ${JSON.stringify(tokenModeText)}: expected ${TOKEN_MODES.join(" or ")}`,
    };
  }

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  const timeoutText = setting("timeout", "BERTH_TIMEOUT");
  if (timeoutText !== undefined) {
    const t = duration(
      timeoutText,
      "timeout",
      1,
      MAX_TIMEOUT_MS,
      "must be above 0s and at most 55s (the kubelet kills a provider after 1m)",
    );
    if (!t.ok) return t;
    timeoutMs = t.value;
  }

  let failureMemoryMs = DEFAULT_FAILURE_MEMORY_MS;
  const memoryText = setting("failure-memory", "BERTH_FAILURE_MEMORY");
  if (memoryText !== undefined) {
    const m = duration(memoryText, "failure memory", 0, 3600_000, "must be between 0s (off) and 1h");
    if (!m.ok) return m;
    failureMemoryMs = m.value;
  }

  let cacheMaxEntries = DEFAULT_CACHE_MAX_ENTRIES;
  const maxText = setting("cache-max-entries", "BERTH_CACHE_MAX_ENTRIES");
  if (maxText !== undefined) {
    const n = count(maxText, "cache max entries", 1);
    if (!n.ok) return n;
    cacheMaxEntries = n.value;
  }

  let logFile: Config["logFile"];
  const logPath = setting("log-file", "BERTH_LOG_FILE");
  if (logPath !== undefined) {
    let maxBytes = DEFAULT_LOG_FILE_MAX_BYTES;
    const maxBytesText = setting("log-file-max-bytes", "BERTH_LOG_FILE_MAX_BYTES");
    if (maxBytesText !== undefined) {
      const n = count(maxBytesText, "log file max bytes", 4096);
      if (!n.ok) return n;
      maxBytes = n.value;
    }
    logFile = { path: logPath, maxBytes };
  }

  return {
    ok: true,
    value: {
      cacheDir: setting("cache-dir", "BERTH_CACHE_DIR"),
      cacheMaxEntries,
      failureMemoryMs,
      mirrors,
      roleMap,
      roleAnnotations,
      tokenMode: tokenModeText as TokenMode,
      timeoutMs,
      defaultRegion: nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION),
      ecrRoleArn: nonEmpty(env.AWS_ECR_ROLE_ARN),
      logFile,
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
export function mappedRole(config: Config, host: string, accountId: string | undefined): MappedRole | undefined {
  return config.roleMap.get(host) ?? (accountId !== undefined ? config.roleMap.get(accountId) : undefined);
}

function positionalsOf(argv: string[]): string[] {
  const flags = parseFlags(argv);
  return flags.ok ? flags.value.positionals : [];
}

/** Commands only a person gives; they never read stdin (an install check may run `--version`
 * with a pipe on stdin that never closes). Anything else with stdin not a terminal is read first,
 * and a request there is the kubelet's, whatever the arguments say. */
export function isPersonCommand(argv: string[]): boolean {
  if (argv.length === 1 && ["--version", "--help", "-h"].includes(argv[0] as string)) return true;
  return positionalsOf(argv)[0] === "validate-config";
}

/** With nothing on stdin (or a terminal there): a help or version flag, `validate-config` or
 * `get-credentials IMAGE` mean a person; anything else is the kubelet's path, which then reports
 * the empty input. */
export function wantsCli(argv: string[], stdinIsTty: boolean): boolean {
  if (stdinIsTty || isPersonCommand(argv)) return true;
  const parsed = parseArgs({ args: argv, options: OPTIONS, strict: false, allowPositionals: true });
  const v: JsonObject = parsed.values;
  if (v.help || v.h || v.version) return true;
  const positionals = parsed.positionals;
  return positionals[0] === "get-credentials" && positionals.length > 1;
}
