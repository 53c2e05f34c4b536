// `validate-config`: a kubelet CredentialProviderConfig (kubelet.config.k8s.io) checked with the
// kubelet's rules (pkg/kubelet/apis/config/validation: validateCredentialProviderConfig), and which
// providers' matchImages would match an image (the same glob rules the kubelet applies).
// A file, or (k8s 1.34+) a directory whose files are merged in lexicographic order.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, isJsonObject, type JsonObject } from "../shared/json.ts";
import { parseGoDuration } from "../shared/kubelet/duration.ts";
import { parseSchemelessURL, urlsMatch } from "../shared/kubelet/match.ts";
import { API_VERSIONS } from "../shared/kubelet/types.ts";

export const CONFIG_KIND = "CredentialProviderConfig";
export const CONFIG_API_VERSIONS = [
  "kubelet.config.k8s.io/v1",
  "kubelet.config.k8s.io/v1beta1",
  "kubelet.config.k8s.io/v1alpha1",
];
const CONFIG_EXTENSIONS = [".json", ".yaml", ".yml"];

export type Provider = {
  /** file the entry came from, for messages */
  file: string;
  index: number;
  name: string;
  matchImages: string[];
  apiVersion: string;
  defaultCacheDuration: string | undefined;
  args: string[];
  env: { name: string; value: string }[];
  hasTokenAttributes: boolean;
};

export type ConfigReport = { providers: Provider[]; errors: string[] };

const PROVIDER_FIELDS = ["name", "matchImages", "defaultCacheDuration", "apiVersion", "args", "env", "tokenAttributes"];
const TOKEN_FIELDS = [
  "serviceAccountTokenAudience",
  "cacheType",
  "requireServiceAccount",
  "requiredServiceAccountAnnotationKeys",
  "optionalServiceAccountAnnotationKeys",
];

// k8s IsQualifiedName: [prefix/]name, name <= 63 chars, prefix a DNS subdomain.
const QUALIFIED_NAME =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
function isQualifiedName(k: string): boolean {
  if (!QUALIFIED_NAME.test(k)) return false;
  const slash = k.indexOf("/");
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  const prefix = slash >= 0 ? k.slice(0, slash) : "";
  return name.length <= 63 && prefix.length <= 253;
}

function unknownFields(o: JsonObject, allowed: string[], path: string, errors: string[]): void {
  for (const k of Object.keys(o))
    if (!allowed.includes(k)) errors.push(`${path}: unknown field ${JSON.stringify(k)} (the kubelet decodes strictly)`);
}

function stringList(v: unknown, path: string, errors: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    errors.push(`${path}: must be a list of strings`);
    return [];
  }
  return v as string[];
}

function validateTokenAttributes(t: unknown, apiVersion: string, path: string, errors: string[]): void {
  if (!isJsonObject(t)) return void errors.push(`${path}: must be an object`);
  unknownFields(t, TOKEN_FIELDS, path, errors);
  if (apiVersion !== "credentialprovider.kubelet.k8s.io/v1") {
    errors.push(
      `${path}: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version`,
    );
  }
  if (typeof t.serviceAccountTokenAudience !== "string" || t.serviceAccountTokenAudience.trim() === "") {
    errors.push(`${path}.serviceAccountTokenAudience: Required value`);
  }
  if (typeof t.requireServiceAccount !== "boolean") errors.push(`${path}.requireServiceAccount: Required value`);
  if (t.cacheType === undefined || t.cacheType === "") errors.push(`${path}.cacheType: Required value`);
  else if (t.cacheType !== "Token" && t.cacheType !== "ServiceAccount") {
    errors.push(
      `${path}.cacheType: Unsupported value: ${JSON.stringify(t.cacheType)}: supported values: "ServiceAccount", "Token"`,
    );
  }
  const required = stringList(
    t.requiredServiceAccountAnnotationKeys,
    `${path}.requiredServiceAccountAnnotationKeys`,
    errors,
  );
  const optional = stringList(
    t.optionalServiceAccountAnnotationKeys,
    `${path}.optionalServiceAccountAnnotationKeys`,
    errors,
  );
  if (required.length > 0 && t.requireServiceAccount === false) {
    errors.push(
      `${path}.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount must be true when requiredServiceAccountAnnotationKeys is set`,
    );
  }
  for (const [list, name] of [
    [required, "requiredServiceAccountAnnotationKeys"],
    [optional, "optionalServiceAccountAnnotationKeys"],
  ] as const) {
    const seen = new Set<string>();
    list.forEach((k, i) => {
      if (!isQualifiedName(k))
        errors.push(`${path}.${name}[${i}]: Invalid value: ${JSON.stringify(k)}: must be a qualified name`);
      if (seen.has(k)) errors.push(`${path}.${name}[${i}]: Duplicate value: ${JSON.stringify(k)}`);
      seen.add(k);
    });
  }
  for (const k of required) {
    if (optional.includes(k))
      errors.push(`${path}: Invalid value: ${JSON.stringify(k)}: annotation key cannot be both required and optional`);
  }
}

function validateDocument(doc: unknown, file: string, providers: Provider[], errors: string[]): void {
  if (!isJsonObject(doc)) return void errors.push(`${file}: expected a ${CONFIG_KIND} object`);
  unknownFields(doc, ["kind", "apiVersion", "providers"], file, errors);
  if (doc.kind !== CONFIG_KIND) errors.push(`${file}: kind ${JSON.stringify(doc.kind ?? "")}, expected ${CONFIG_KIND}`);
  if (typeof doc.apiVersion !== "string" || !CONFIG_API_VERSIONS.includes(doc.apiVersion)) {
    errors.push(
      `${file}: apiVersion ${JSON.stringify(doc.apiVersion ?? "")}, expected one of ${CONFIG_API_VERSIONS.join(", ")}`,
    );
  }
  if (doc.providers !== undefined && doc.providers !== null && !Array.isArray(doc.providers))
    return void errors.push(`${file}: providers: must be a list`);
  const list = (doc.providers as unknown[] | undefined) ?? [];
  for (const [index, p] of list.entries()) {
    const path = `${file}: providers[${index}]`;
    if (!isJsonObject(p)) {
      errors.push(`${path}: must be an object`);
      continue;
    }
    unknownFields(p, PROVIDER_FIELDS, path, errors);
    const name = typeof p.name === "string" ? p.name : "";
    if (name === "") errors.push(`${path}.name: Required value`);
    else {
      if (name.includes("/"))
        errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain '/'`);
      if (name.includes(" "))
        errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain spaces`);
      if (name === "." || name === "..")
        errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot be '.' or '..'`);
    }
    const apiVersion = typeof p.apiVersion === "string" ? p.apiVersion : "";
    if (apiVersion === "") errors.push(`${path}.apiVersion: Required value`);
    else if (!(API_VERSIONS as readonly string[]).includes(apiVersion)) {
      errors.push(
        `${path}.apiVersion: Unsupported value: ${JSON.stringify(apiVersion)}: supported values: ${API_VERSIONS.map((v) => JSON.stringify(v)).join(", ")}`,
      );
    }
    const matchImages = stringList(p.matchImages, `${path}.matchImages`, errors);
    if (matchImages.length === 0)
      errors.push(`${path}.matchImages: Required value: at least 1 item in matchImages is required`);
    matchImages.forEach((m, i) => {
      const parsed = parseSchemelessURL(m);
      if (!parsed.ok)
        errors.push(
          `${path}.matchImages[${i}]: Invalid value: ${JSON.stringify(m)}: match image is invalid: ${parsed.error}`,
        );
    });
    let duration: string | undefined;
    if (p.defaultCacheDuration === undefined || p.defaultCacheDuration === null)
      errors.push(`${path}.defaultCacheDuration: Required value`);
    else if (typeof p.defaultCacheDuration !== "string")
      errors.push(`${path}.defaultCacheDuration: must be a duration string such as "12h"`);
    else {
      const d = parseGoDuration(p.defaultCacheDuration);
      if (!d.ok) errors.push(`${path}.defaultCacheDuration: ${d.error}`);
      else if (d.ns < 0n)
        errors.push(
          `${path}.defaultCacheDuration: Invalid value: ${JSON.stringify(p.defaultCacheDuration)}: must be greater than or equal to 0`,
        );
      else duration = p.defaultCacheDuration;
    }
    const args = stringList(p.args, `${path}.args`, errors);
    const env: { name: string; value: string }[] = [];
    if (p.env !== undefined && p.env !== null) {
      if (!Array.isArray(p.env)) errors.push(`${path}.env: must be a list`);
      else
        for (const [i, e] of (p.env as unknown[]).entries()) {
          if (!isJsonObject(e)) {
            errors.push(`${path}.env[${i}]: must be an object`);
            continue;
          }
          unknownFields(e, ["name", "value"], `${path}.env[${i}]`, errors);
          if (typeof e.name !== "string" || e.name === "") errors.push(`${path}.env[${i}].name: Required value`);
          else env.push({ name: e.name, value: typeof e.value === "string" ? e.value : "" });
        }
    }
    if (p.tokenAttributes !== undefined && p.tokenAttributes !== null)
      validateTokenAttributes(p.tokenAttributes, apiVersion, `${path}.tokenAttributes`, errors);
    providers.push({
      file,
      index,
      name,
      matchImages,
      apiVersion,
      defaultCacheDuration: duration,
      args,
      env,
      hasTokenAttributes: p.tokenAttributes != null,
    });
  }
}

export type ParseDoc = (text: string, file: string) => { ok: true; value: unknown } | { ok: false; error: string };

/** Files of a config path: itself, or a directory's config files in lexicographic order. */
export function configFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((n) => CONFIG_EXTENSIONS.some((e) => n.endsWith(e)))
    .sort()
    .map((n) => join(path, n))
    .filter((f) => statSync(f).isFile());
}

export function validateConfig(path: string, parse: ParseDoc): ConfigReport {
  const errors: string[] = [];
  const providers: Provider[] = [];
  let files: string[];
  try {
    files = configFiles(path);
  } catch (e) {
    return { providers, errors: [`${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`] };
  }
  if (files.length === 0) errors.push(`${path}: no .json, .yaml or .yml files`);
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      errors.push(`${file}: ${(e as NodeJS.ErrnoException).code ?? "unreadable"}`);
      continue;
    }
    const doc = parse(text, file);
    if (!doc.ok) errors.push(`${file}: ${doc.error}`);
    else validateDocument(doc.value, file, providers, errors);
  }
  if (providers.length === 0 && errors.length === 0)
    errors.push(`${path}: providers: Required value: at least 1 item in plugins is required`);
  const seen = new Map<string, Provider>();
  for (const p of providers) {
    if (p.name === "") continue;
    const first = seen.get(p.name);
    if (first)
      errors.push(
        `${p.file}: providers[${p.index}].name: Duplicate value: ${JSON.stringify(p.name)} (also in ${first.file})`,
      );
    else seen.set(p.name, p);
  }
  return { providers, errors };
}

export type ImageMatch = { provider: Provider; matchedBy: string[]; problems: string[] };

/** For each provider, the matchImages entries that match the image (kubelet: all matching providers run). */
export function matchProviders(providers: Provider[], image: string): ImageMatch[] {
  return providers.map((provider) => {
    const matchedBy: string[] = [];
    const problems: string[] = [];
    for (const m of provider.matchImages) {
      const r = urlsMatch(m, image);
      if (!r.ok) problems.push(`${m}: ${r.error}`);
      else if (r.matched) matchedBy.push(m);
    }
    return { provider, matchedBy, problems };
  });
}
