// `validate-config`: a kubelet CredentialProviderConfig (kubelet.config.k8s.io) checked the way a
// given kubelet release reads it, and which providers' matchImages would match an image.
//
// What the kubelet does, release 1.33 to 1.35 (k8s.io/kubernetes pkg/credentialprovider/plugin):
// - reading (config.go: readCredentialProviderConfigFile in 1.33, one file;
//   readCredentialProviderConfig from 1.34, a file or a directory whose *.json, *.yaml and *.yml
//   files are decoded in lexicographic order and merged, a provider name repeated across files
//   being an error, a directory without such files too);
// - decoding (config.go: decode, with plugin.go's codecs = serializer.NewCodecFactory(scheme,
//   serializer.EnableStrict)): YAML 1.1 as go-yaml v2 reads it, then strict JSON: a field the
//   apiVersion's Go type lacks, a repeated field or a value of the wrong type stops the kubelet;
//   the kind must be CredentialProviderConfig in group kubelet.config.k8s.io, version v1, v1beta1
//   or v1alpha1 (plugin.go: init adds the three to the scheme). The field sets are the types'
//   (k8s.io/kubelet config/v1, v1beta1, v1alpha1 types.go): tokenAttributes exists only in v1,
//   and its cacheType only from 1.34;
// - validating (config.go: validateCredentialProviderConfig and
//   validateServiceAccountAnnotationKeys), with the KubeletServiceAccountTokenForCredentialProviders
//   gate (pkg/features/kube_features.go: alpha, off, in 1.33; beta, on, from 1.34);
// - registering (plugin.go: RegisterCredentialProviderPlugins): each name is a file in the bin
//   directory, so an empty name (the directory itself) cannot start.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { errorMessage, isJsonObject, type JsonObject } from "../shared/json.ts";
import { parseGoDuration } from "../shared/kubelet/duration.ts";
import { parseSchemelessURL, urlsMatch } from "../shared/kubelet/match.ts";
import { API_VERSIONS } from "../shared/kubelet/types.ts";

export const CONFIG_KIND = "CredentialProviderConfig";
export const CONFIG_GROUP = "kubelet.config.k8s.io";
export const CONFIG_API_VERSIONS = [`${CONFIG_GROUP}/v1`, `${CONFIG_GROUP}/v1beta1`, `${CONFIG_GROUP}/v1alpha1`];
const CONFIG_EXTENSIONS = [".json", ".yaml", ".yml"];

export const KUBELET_VERSIONS = ["1.33", "1.34", "1.35"] as const;
export type KubeletVersion = (typeof KUBELET_VERSIONS)[number];
export const NEWEST_KUBELET: KubeletVersion = "1.35";
export const TOKEN_GATE = "KubeletServiceAccountTokenForCredentialProviders";

/** The release whose rules apply, and the service-account token gate as that kubelet runs. */
export type KubeletRules = { version: KubeletVersion; tokenGate: boolean };

const atLeast134 = (v: KubeletVersion) => v !== "1.33";

/** `--kubelet-version` and `--feature-gates` (the kubelet's own syntax, `Gate=true,Other=false`). */
export function kubeletRules(
  version: string | undefined,
  featureGates: string | undefined,
): { ok: true; value: KubeletRules } | { ok: false; error: string } {
  const v = (version ?? NEWEST_KUBELET).replace(/^v/, "");
  if (!(KUBELET_VERSIONS as readonly string[]).includes(v))
    return { ok: false, error: `unknown --kubelet-version ${version}; expected ${KUBELET_VERSIONS.join(", ")}` };
  const rules: KubeletRules = { version: v as KubeletVersion, tokenGate: atLeast134(v as KubeletVersion) };
  for (const item of (featureGates ?? "").split(",").filter((s) => s.trim() !== "")) {
    const m = /^\s*([A-Za-z0-9]+)=(true|false)\s*$/i.exec(item);
    if (!m)
      return { ok: false, error: `invalid --feature-gates entry ${JSON.stringify(item)}: expected Gate=true|false` };
    if (m[1] === TOKEN_GATE) rules.tokenGate = (m[2] as string).toLowerCase() === "true";
  }
  return { ok: true, value: rules };
}

export type TokenAttributes = {
  audience: string;
  cacheType: string | undefined;
  requireServiceAccount: boolean | undefined;
  required: string[];
  optional: string[];
};

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
  tokenAttributes: TokenAttributes | undefined;
};

export type ConfigReport = { providers: Provider[]; errors: string[] };

/** The Go struct fields of each config apiVersion (k8s.io/kubelet config/<version>/types.go). */
function fieldSets(configApiVersion: string, rules: KubeletRules) {
  const v1 = configApiVersion === `${CONFIG_GROUP}/v1`;
  return {
    config: ["kind", "apiVersion", "providers"],
    provider: [
      "name",
      "matchImages",
      "defaultCacheDuration",
      "apiVersion",
      "args",
      "env",
      ...(v1 ? ["tokenAttributes"] : []),
    ],
    tokenAttributes: [
      "serviceAccountTokenAudience",
      ...(atLeast134(rules.version) ? ["cacheType"] : []),
      "requireServiceAccount",
      "requiredServiceAccountAnnotationKeys",
      "optionalServiceAccountAnnotationKeys",
    ],
    env: ["name", "value"],
  };
}

/** What a field is missing from, so the message says why the kubelet refuses it. */
function unknownFieldReason(field: string, where: "provider" | "tokenAttributes", configApiVersion: string): string {
  if (where === "provider" && field === "tokenAttributes")
    return `${configApiVersion} CredentialProvider has no tokenAttributes; only ${CONFIG_GROUP}/v1 does`;
  if (where === "tokenAttributes" && field === "cacheType")
    return "kubelet 1.33 has no tokenAttributes.cacheType; it arrived in 1.34 (leave it out for 1.33)";
  return "the kubelet decodes strictly";
}

// apimachinery IsQualifiedName: an optional DNS-1123 subdomain prefix (at most 253 characters)
// and "/", then a name of at most 63 characters: alphanumerics, '-', '_' and '.' inside.
const QUALIFIED_NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export function qualifiedNameErrors(k: string): string[] {
  const parts = k.split("/");
  let name = k;
  const errors: string[] = [];
  if (parts.length === 2) {
    const prefix = parts[0] as string;
    name = parts[1] as string;
    if (prefix === "") errors.push("prefix part must be non-empty");
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))
      errors.push("prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters");
  } else if (parts.length > 2) {
    return ["a qualified name must consist of an optional prefix, a '/' and a name"];
  }
  if (name === "") errors.push("name part must be non-empty");
  else {
    if (name.length > 63) errors.push("name part must be no more than 63 characters");
    if (!QUALIFIED_NAME_PART.test(name))
      errors.push(
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
      );
  }
  return errors;
}

type Ctx = { errors: string[]; configApiVersion: string; rules: KubeletRules; fields: ReturnType<typeof fieldSets> };

const goType = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v === "object" ? "object" : typeof v;

function unknownFields(
  o: JsonObject,
  allowed: string[],
  path: string,
  where: "config" | "provider" | "tokenAttributes" | "env",
  ctx: Ctx,
): void {
  for (const k of Object.keys(o)) {
    if (allowed.includes(k)) continue;
    const why =
      where === "provider" || where === "tokenAttributes"
        ? unknownFieldReason(k, where, ctx.configApiVersion)
        : "the kubelet decodes strictly";
    ctx.errors.push(`${path}: unknown field ${JSON.stringify(k)} (${why})`);
  }
}

/** A Go string field: null reads as "" (encoding/json), anything else but a string is a decode error. */
function str(v: unknown, path: string, ctx: Ctx): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  ctx.errors.push(`${path}: cannot decode a JSON ${goType(v)} into a string`);
  return "";
}

function stringList(v: unknown, path: string, ctx: Ctx): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    ctx.errors.push(`${path}: cannot decode a JSON ${goType(v)} into a list of strings`);
    return [];
  }
  return v.map((x, i) => str(x, `${path}[${i}]`, ctx));
}

function tokenAttributesOf(
  t: unknown,
  provider: { apiVersion: string },
  path: string,
  ctx: Ctx,
): TokenAttributes | undefined {
  if (t === undefined || t === null) return undefined;
  if (!isJsonObject(t)) {
    ctx.errors.push(`${path}: cannot decode a JSON ${goType(t)} into ServiceAccountTokenAttributes`);
    return undefined;
  }
  unknownFields(t, ctx.fields.tokenAttributes, path, "tokenAttributes", ctx);
  let requireServiceAccount: boolean | undefined;
  if (t.requireServiceAccount !== undefined && t.requireServiceAccount !== null) {
    if (typeof t.requireServiceAccount === "boolean") requireServiceAccount = t.requireServiceAccount;
    else
      ctx.errors.push(
        `${path}.requireServiceAccount: cannot decode a JSON ${goType(t.requireServiceAccount)} into a bool`,
      );
  }
  const attrs: TokenAttributes = {
    audience: str(t.serviceAccountTokenAudience, `${path}.serviceAccountTokenAudience`, ctx),
    cacheType: ctx.fields.tokenAttributes.includes("cacheType")
      ? str(t.cacheType, `${path}.cacheType`, ctx)
      : undefined,
    requireServiceAccount,
    required: stringList(t.requiredServiceAccountAnnotationKeys, `${path}.requiredServiceAccountAnnotationKeys`, ctx),
    optional: stringList(t.optionalServiceAccountAnnotationKeys, `${path}.optionalServiceAccountAnnotationKeys`, ctx),
  };
  const e = ctx.errors;
  if (!ctx.rules.tokenGate)
    e.push(
      `${path}: Forbidden: tokenAttributes is not supported when ${TOKEN_GATE} feature gate is disabled (kubelet ${ctx.rules.version}${ctx.rules.version === "1.33" ? ": alpha, enable it with --feature-gates" : ""})`,
    );
  // Only "is it empty": a blank audience passes the kubelet.
  if (attrs.audience.length === 0) e.push(`${path}.serviceAccountTokenAudience: Required value`);
  if (attrs.requireServiceAccount === undefined) e.push(`${path}.requireServiceAccount: Required value`);
  if (provider.apiVersion !== "credentialprovider.kubelet.k8s.io/v1")
    e.push(
      `${path}: Forbidden: tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1 API version`,
    );
  if (attrs.requireServiceAccount === false && attrs.required.length > 0)
    e.push(
      `${path}.requiredServiceAccountAnnotationKeys: Forbidden: requireServiceAccount cannot be false when requiredServiceAccountAnnotationKeys is set`,
    );
  for (const [list, name] of [
    [attrs.required, "requiredServiceAccountAnnotationKeys"],
    [attrs.optional, "optionalServiceAccountAnnotationKeys"],
  ] as const) {
    const seen = new Set<string>();
    for (const k of list) {
      // "The rule is QualifiedName except that case doesn't matter": lower-cased first.
      for (const msg of qualifiedNameErrors(k.toLowerCase()))
        e.push(`${path}.${name}: Invalid value: ${JSON.stringify(k)}: ${msg}`);
      if (seen.has(k)) e.push(`${path}.${name}: Duplicate value: ${JSON.stringify(k)}`);
      seen.add(k);
    }
  }
  const both = attrs.required.filter((k) => attrs.optional.includes(k));
  if (both.length > 0)
    e.push(
      `${path}: Invalid value: ${JSON.stringify([...new Set(both)].sort())}: annotation keys cannot be both required and optional`,
    );
  if (attrs.cacheType !== undefined) {
    if (attrs.cacheType === "")
      e.push(
        `${path}.cacheType: Required value: cacheType is required to be set when tokenAttributes is specified. Supported values are: ServiceAccount, Token`,
      );
    else if (attrs.cacheType !== "ServiceAccount" && attrs.cacheType !== "Token")
      e.push(
        `${path}.cacheType: Unsupported value: ${JSON.stringify(attrs.cacheType)}: supported values: "ServiceAccount", "Token"`,
      );
  }
  return attrs;
}

function validateDocument(
  doc: unknown,
  file: string,
  rules: KubeletRules,
  providers: Provider[],
  errors: string[],
): void {
  if (!isJsonObject(doc)) return void errors.push(`${file}: expected a ${CONFIG_KIND} object, got a ${goType(doc)}`);
  const configApiVersion = typeof doc.apiVersion === "string" ? doc.apiVersion : "";
  const ctx: Ctx = { errors, configApiVersion, rules, fields: fieldSets(configApiVersion, rules) };
  if (doc.kind === undefined || doc.kind === null || doc.kind === "") errors.push(`${file}: Object 'Kind' is missing`);
  else if (doc.kind !== CONFIG_KIND) errors.push(`${file}: kind ${JSON.stringify(doc.kind)}, expected ${CONFIG_KIND}`);
  if (!CONFIG_API_VERSIONS.includes(configApiVersion)) {
    errors.push(
      `${file}: apiVersion ${JSON.stringify(doc.apiVersion ?? "")}: no kind ${CONFIG_KIND} is registered for it; expected one of ${CONFIG_API_VERSIONS.join(", ")}`,
    );
    return;
  }
  unknownFields(doc, ctx.fields.config, file, "config", ctx);
  if (doc.providers !== undefined && doc.providers !== null && !Array.isArray(doc.providers))
    return void errors.push(`${file}: providers: cannot decode a JSON ${goType(doc.providers)} into a list`);
  const list = (doc.providers as unknown[] | undefined) ?? [];
  for (const [index, p] of list.entries()) {
    const path = `${file}: providers[${index}]`;
    if (!isJsonObject(p)) {
      errors.push(`${path}: cannot decode a JSON ${goType(p)} into CredentialProvider`);
      continue;
    }
    unknownFields(p, ctx.fields.provider, path, "provider", ctx);
    const name = str(p.name, `${path}.name`, ctx);
    if (name === "")
      errors.push(
        `${path}.name: Required value: the kubelet runs <bin-dir>/<name> (RegisterCredentialProviderPlugins)`,
      );
    if (name.includes("/"))
      errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain '/'`);
    if (name.includes(" "))
      errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot contain spaces`);
    if (name === "." || name === "..")
      errors.push(`${path}.name: Invalid value: ${JSON.stringify(name)}: provider name cannot be '${name}'`);
    const apiVersion = str(p.apiVersion, `${path}.apiVersion`, ctx);
    if (apiVersion === "") errors.push(`${path}.apiVersion: Required value`);
    else if (!(API_VERSIONS as readonly string[]).includes(apiVersion))
      errors.push(
        `${path}.apiVersion: Unsupported value: ${JSON.stringify(apiVersion)}: supported values: ${[...API_VERSIONS]
          .sort()
          .map((v) => JSON.stringify(v))
          .join(", ")}`,
      );
    const matchImages = stringList(p.matchImages, `${path}.matchImages`, ctx);
    if (matchImages.length === 0)
      errors.push(`${path}.matchImages: Required value: at least 1 item in matchImages is required`);
    for (const m of matchImages) {
      const parsed = parseSchemelessURL(m);
      if (!parsed.ok)
        errors.push(
          `${path}.matchImages: Invalid value: ${JSON.stringify(m)}: match image is invalid: ${parsed.error}`,
        );
    }
    let duration: string | undefined;
    if (p.defaultCacheDuration === undefined || p.defaultCacheDuration === null)
      errors.push(`${path}.defaultCacheDuration: Required value`);
    else if (typeof p.defaultCacheDuration !== "string")
      errors.push(
        `${path}.defaultCacheDuration: cannot decode a JSON ${goType(p.defaultCacheDuration)} into a duration such as "12h"`,
      );
    else {
      const d = parseGoDuration(p.defaultCacheDuration);
      if (!d.ok) errors.push(`${path}.defaultCacheDuration: ${d.error}`);
      else if (d.ns < 0n)
        errors.push(
          `${path}.defaultCacheDuration: Invalid value: ${JSON.stringify(p.defaultCacheDuration)}: must be greater than or equal to 0`,
        );
      else duration = p.defaultCacheDuration;
    }
    const args = stringList(p.args, `${path}.args`, ctx);
    const env: { name: string; value: string }[] = [];
    if (p.env !== undefined && p.env !== null) {
      if (!Array.isArray(p.env)) errors.push(`${path}.env: cannot decode a JSON ${goType(p.env)} into a list`);
      else
        for (const [i, e] of (p.env as unknown[]).entries()) {
          if (!isJsonObject(e)) {
            errors.push(`${path}.env[${i}]: cannot decode a JSON ${goType(e)} into ExecEnvVar`);
            continue;
          }
          unknownFields(e, ctx.fields.env, `${path}.env[${i}]`, "env", ctx);
          env.push({
            name: str(e.name, `${path}.env[${i}].name`, ctx),
            value: str(e.value, `${path}.env[${i}].value`, ctx),
          });
        }
    }
    const tokenAttributes = ctx.fields.provider.includes("tokenAttributes")
      ? tokenAttributesOf(p.tokenAttributes, { apiVersion }, `${path}.tokenAttributes`, ctx)
      : undefined;
    providers.push({
      file,
      index,
      name,
      matchImages,
      apiVersion,
      defaultCacheDuration: duration,
      args,
      env,
      tokenAttributes,
    });
  }
}

export type ParseDoc = (text: string, file: string) => { ok: true; value: unknown } | { ok: false; error: string };

/** Files of a config path: itself, or a directory's config files in lexicographic order, as the
 * kubelet lists them (filepath.Ext among .json/.yaml/.yml, not a directory, sorted by path). */
export function configFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { withFileTypes: true })
    .filter((d) => !d.isDirectory() && CONFIG_EXTENSIONS.includes(extname(d.name)))
    .map((d) => join(path, d.name))
    .sort();
}

export function validateConfig(path: string, parse: ParseDoc, rules: KubeletRules): ConfigReport {
  const errors: string[] = [];
  const providers: Provider[] = [];
  let files: string[];
  try {
    if (!atLeast134(rules.version) && statSync(path).isDirectory())
      return {
        providers,
        errors: [`${path}: is a directory; kubelet ${rules.version} reads one file (directories arrived in 1.34)`],
      };
    files = configFiles(path);
  } catch (e) {
    return { providers, errors: [`${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`] };
  }
  if (files.length === 0) errors.push(`${path}: no configuration files found in the directory (.json, .yaml or .yml)`);
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
    else validateDocument(doc.value, file, rules, providers, errors);
  }
  if (providers.length === 0 && errors.length === 0)
    errors.push(`${path}: providers: Required value: at least 1 item in plugins is required`);
  const seen = new Map<string, Provider>();
  for (const p of providers) {
    const first = seen.get(p.name);
    if (first)
      errors.push(
        first.file === p.file
          ? `${p.file}: providers[${p.index}].name: Duplicate value: ${JSON.stringify(p.name)}`
          : `${p.file}: providers[${p.index}].name: duplicate provider name ${JSON.stringify(p.name)} found in configuration file(s) (also in ${first.file})`,
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
