// validate-config, beyond the kubelet's rules: a provider entry that runs this binary (named
// berth-credential-provider, or ecr-credential-provider where it replaces the anchor, or named with
// --provider) has its `args` and `env` read by the very parser the kubelet path uses, so a value
// every request would refuse is reported before the kubelet starts, not at the first pull.
import type { Provider } from "./kubelet-config.ts";
import { loadConfig, type Config, type Env } from "./config.ts";

export const OWN_NAMES: readonly string[] = ["berth-credential-provider", "ecr-credential-provider"];

export type EntryCheck = { errors: string[]; warnings: string[]; config: Config | undefined };

/** The environment the entry adds to the kubelet's own (the last of a repeated name wins, as in os/exec). */
export function entryEnv(p: Provider): Env {
  const env: Record<string, string> = {};
  for (const e of p.env) env[e.name] = e.value;
  return env;
}

export function checkEntry(p: Provider): EntryCheck {
  const where = `${p.file}: providers[${p.index}]`;
  const errors: string[] = [];
  const warnings: string[] = [];
  p.env.forEach((e, i) => {
    if (e.name === "")
      warnings.push(`${where}.env[${i}].name is empty: the kubelet passes "=${e.value}" to the provider`);
  });
  const loaded = loadConfig(p.args, entryEnv(p));
  if (!loaded.ok) {
    errors.push(`${where}.args/env: ${p.name} would refuse every request: ${loaded.error}`);
    return { errors, warnings, config: undefined };
  }
  const config = loaded.value;
  const t = p.tokenAttributes;
  if (t === undefined) {
    for (const [registry, role] of config.roleMap)
      if (role.webIdentity)
        errors.push(
          `${where}.args/env: the role map entry for ${registry} is web-identity: but the provider has no tokenAttributes, so no request carries a token and every pull from ${registry} fails`,
        );
    if (config.tokenMode === "fail-closed")
      warnings.push(
        `${where}: --token-mode=fail-closed does nothing without tokenAttributes (no request carries a token)`,
      );
  } else {
    const passed = new Set([...t.required, ...t.optional]);
    const missing = config.roleAnnotations.filter((k) => !passed.has(k));
    if (missing.length === config.roleAnnotations.length)
      warnings.push(
        `${where}.tokenAttributes: none of the role annotations (${missing.join(", ")}) is in requiredServiceAccountAnnotationKeys or optionalServiceAccountAnnotationKeys; the kubelet passes only those, so no pod's role reaches the provider`,
      );
    else if (missing.length > 0)
      warnings.push(
        `${where}.tokenAttributes: the role annotation${missing.length > 1 ? "s" : ""} ${missing.join(", ")} ${missing.length > 1 ? "are" : "is"} not listed in the annotation keys; the kubelet will not pass ${missing.length > 1 ? "them" : "it"}`,
      );
  }
  return { errors, warnings, config };
}
