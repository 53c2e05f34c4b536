// The human side, loaded only when a person runs the binary (see main.ts wantsCli): --help,
// --version, `get-credentials IMAGE` (what the kubelet would receive, secrets masked) and
// `validate-config FILE|DIR [--image IMAGE]` (the kubelet's rules and matchImages globbing).
import { readFileSync } from "node:fs";
import yargs from "yargs";
import { versionLine } from "../shared/build-info.ts";
import { writeStdout } from "../shared/io.ts";
import { decodeResponseStrict } from "../shared/kubelet/codec.ts";
import { API_VERSIONS, GROUP, type ApiVersion, type CredentialProviderRequest } from "../shared/kubelet/types.ts";
import type { Config, Env } from "./config.ts";
import {
  KUBELET_VERSIONS,
  kubeletRules,
  matchProviders,
  NEWEST_KUBELET,
  TOKEN_GATE,
  validateConfig,
  type Provider,
} from "./kubelet-config.ts";
import { parseConfigYaml } from "./config-yaml.ts";
import { answer, PROGRAM } from "./pipeline.ts";
import { checkEntry, OWN_NAMES } from "./provider-entry.ts";
import { planFor, ROLE_ANNOTATION } from "./provider.ts";
import { oneLine, type Stderr } from "./stderr.ts";

function mask(secret: string): string {
  return `<redacted: ${secret.length} characters>`;
}

function toApiVersion(v: string): ApiVersion | undefined {
  const full = v.includes("/") ? v : `${GROUP}/${v}`;
  return (API_VERSIONS as readonly string[]).includes(full) ? (full as ApiVersion) : undefined;
}

type GetCredentialsArgs = {
  image: string;
  apiVersion: string;
  tokenFile: string | undefined;
  roleArn: string | undefined;
};

async function getCredentialsCommand(argv: string[], env: Env, a: GetCredentialsArgs, stderr: Stderr): Promise<number> {
  const apiVersion = toApiVersion(a.apiVersion);
  if (!apiVersion) return stderr.fail(`unknown --api-version ${a.apiVersion}; expected v1, v1beta1 or v1alpha1`);
  const req: CredentialProviderRequest = { kind: "CredentialProviderRequest", apiVersion, image: a.image };
  if (a.tokenFile !== undefined) {
    if (apiVersion !== `${GROUP}/v1`) return stderr.fail("--service-account-token-file needs --api-version v1");
    req.serviceAccountToken = readFileSync(a.tokenFile, "utf8").trim();
    if (a.roleArn) req.serviceAccountAnnotations = { [ROLE_ANNOTATION]: a.roleArn };
  }
  const outcome = await answer(argv, env, req, stderr);
  if (!outcome.ok) return stderr.fail(outcome.error);
  const check = decodeResponseStrict(JSON.stringify(outcome.response), apiVersion);
  const shown = structuredClone(outcome.response);
  for (const a of Object.values(shown.auth ?? {})) a.password = mask(a.password);
  const p = outcome.plan;
  writeStdout(`${JSON.stringify(shown, null, 2)}\n`);
  stderr.flush();
  stderr.print(
    `${[
      `source: ${outcome.source}`,
      `api: ${p.api} in ${p.region ?? "the default region"}${p.fips ? ", FIPS endpoint" : ""}${p.dualStack ? ", dual-stack endpoint" : ""}`,
      `registry asked: ${p.host}`,
      `identity: ${p.identity.mode === "node" ? "node credentials" : `${p.identity.mode} ${p.identity.roleArn}`}`,
      `kubelet would accept the response: ${check.ok ? "yes" : `no (${check.error})`}`,
    ].join("\n")}\n`,
  );
  return check.ok ? 0 : 1;
}

type ValidateArgs = {
  file: string;
  image: string | undefined;
  kubeletVersion: string | undefined;
  featureGates: string | undefined;
  providers: string[];
};

/** What the provider would do for IMAGE with the entry's own args and env. */
function explain(p: Provider, config: Config, image: string): string[] {
  const out: string[] = [];
  const label = `provider ${JSON.stringify(p.name)}`;
  const planned = planFor({ kind: "CredentialProviderRequest", apiVersion: `${GROUP}/v1`, image }, config);
  if (!planned.ok) return [`  ${label}: ${planned.error}`];
  const plan = planned.plan;
  const id = plan.identity;
  const as =
    id.mode === "node"
      ? "with the node's credentials"
      : `as ${id.roleArn} (STS AssumeRole with the node's credentials)`;
  out.push(
    `  ${label} would ask ${plan.api === "ecr" ? "ECR" : "ECR Public"} in ${plan.region ?? "the default region"}${plan.fips ? " (FIPS endpoint)" : ""}${plan.dualStack ? " (dual-stack endpoint)" : ""} for ${plan.host}, ${as}; auth key ${planned.registry}`,
  );
  if (planned.warning) out.push(`  ${planned.warning}`);
  if (p.tokenAttributes) {
    const mapped = config.roleMap.get(plan.host);
    out.push(
      `  with a service-account token: the role in ${config.roleAnnotations.join(", then ")} (empty: the node's credentials)` +
        `${mapped ? `, else the role map's ${mapped.webIdentity ? "web-identity" : "AssumeRole"} ${mapped.roleArn}` : ""}` +
        `${config.ecrRoleArn ? `, else AWS_ECR_ROLE_ARN ${config.ecrRoleArn}` : ""}, else ${config.tokenMode === "fail-closed" ? "an error (--token-mode=fail-closed)" : "the node's credentials"}`,
    );
  }
  return out;
}

function validateConfigCommand(a: ValidateArgs): number {
  const rules = kubeletRules(a.kubeletVersion, a.featureGates);
  if (!rules.ok) {
    writeStdout(`error: ${rules.error}\n`);
    return 1;
  }
  const report = validateConfig(a.file, parseConfigYaml, rules.value);
  const errors = [...report.errors];
  const warnings: string[] = [];
  const own = new Set([...OWN_NAMES, ...a.providers]);
  const configs = new Map<Provider, Config>();
  for (const p of report.providers) {
    if (!own.has(p.name)) continue;
    const c = checkEntry(p);
    errors.push(...c.errors);
    warnings.push(...c.warnings);
    if (c.config) configs.set(p, c.config);
  }
  for (const e of errors) writeStdout(`error: ${e}\n`);
  for (const w of warnings) writeStdout(`warning: ${w}\n`);
  const gate = `${TOKEN_GATE} ${rules.value.tokenGate ? "on" : "off"}`;
  if (errors.length === 0)
    writeStdout(
      `${a.file}: valid CredentialProviderConfig (${report.providers.length} provider${report.providers.length === 1 ? "" : "s"}) for kubelet ${rules.value.version} (${gate})\n`,
    );
  else writeStdout(`${a.file}: kubelet ${rules.value.version} (${gate}) would not start with this config\n`);
  if (a.image !== undefined) {
    const matches = matchProviders(report.providers, a.image);
    for (const m of matches) {
      const label = `provider ${JSON.stringify(m.provider.name)}`;
      if (m.matchedBy.length > 0)
        writeStdout(`${label} matches ${a.image} by ${m.matchedBy.map((g) => JSON.stringify(g)).join(", ")}\n`);
      else writeStdout(`${label} does not match ${a.image}\n`);
      for (const pr of m.problems) writeStdout(`  warning: bad matchImages pattern ${pr}\n`);
      const config = configs.get(m.provider);
      if (m.matchedBy.length > 0 && config)
        for (const line of explain(m.provider, config, a.image)) writeStdout(`${line}\n`);
    }
    if (!matches.some((m) => m.matchedBy.length > 0))
      writeStdout(`no provider matches ${a.image}: the kubelet pulls it without provider credentials\n`);
  }
  return errors.length === 0 ? 0 : 1;
}

export async function runCli(argv: string[], env: Env, stderr: Stderr): Promise<number> {
  let code = 0;
  let action: (() => Promise<number> | number) | undefined;
  const parser = yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      `${versionLine(PROGRAM)}\n\nA kubelet image credential provider for Amazon ECR and ECR Public.\n` +
        `The kubelet runs it with a CredentialProviderRequest on stdin (any positional arguments, such as\n` +
        `"get-credentials" in the kubelet config, are ignored then). Stdin is read first unless it is a\n` +
        `terminal, so from a script give get-credentials </dev/null. A person can run:`,
    )
    .command(
      "get-credentials <image>",
      "print the response the kubelet would receive for IMAGE (passwords masked)",
      (y) =>
        y
          .positional("image", {
            type: "string",
            demandOption: true,
            describe: "image, e.g. 123456789012.dkr.ecr.us-west-2.amazonaws.com/app",
          })
          .option("api-version", {
            type: "string",
            default: "v1",
            describe: "request apiVersion: v1, v1beta1 or v1alpha1",
          })
          .option("service-account-token-file", {
            type: "string",
            describe: "send this service-account token (v1), as the kubelet does with tokenAttributes",
          })
          .option("role-arn", { type: "string", describe: `with a token: the ${ROLE_ANNOTATION} annotation` }),
      (a) => {
        action = () =>
          getCredentialsCommand(
            argv,
            env,
            {
              image: String(a.image),
              apiVersion: String(a["api-version"]),
              tokenFile: a["service-account-token-file"],
              roleArn: a["role-arn"],
            },
            stderr,
          );
      },
    )
    .command(
      "validate-config <file>",
      "check a kubelet CredentialProviderConfig file or directory with the kubelet's rules",
      (y) =>
        y
          .positional("file", { type: "string", demandOption: true })
          .option("image", {
            type: "string",
            describe:
              "also say which providers match this image, and what ours would ask with the entry's args and env",
          })
          .option("kubelet-version", {
            type: "string",
            default: NEWEST_KUBELET,
            describe: `the kubelet release whose rules apply: ${KUBELET_VERSIONS.join(", ")}`,
          })
          .option("feature-gates", {
            type: "string",
            describe: `as the kubelet's flag, e.g. ${TOKEN_GATE}=true (default: the release's: off in 1.33, on from 1.34)`,
          })
          .option("provider", {
            type: "string",
            array: true,
            describe: `a provider name that runs this binary, beside ${OWN_NAMES.join(" and ")}: its args and env are checked too`,
          }),
      (a) => {
        action = () =>
          validateConfigCommand({
            file: String(a.file),
            image: a.image,
            kubeletVersion: a["kubelet-version"],
            featureGates: a["feature-gates"],
            providers: (a.provider ?? []).map(String),
          });
      },
    )
    .option("cache-dir", { type: "string", describe: "token cache directory (env BERTH_CACHE_DIR); off when unset" })
    .option("registry-mirror", {
      type: "string",
      array: true,
      describe: "SOURCE=ECR_REGISTRY, repeatable (env BERTH_REGISTRY_MIRRORS)",
    })
    .option("role-map", {
      type: "string",
      array: true,
      describe:
        "ECR_REGISTRY_OR_ACCOUNT=ROLE_ARN (AssumeRole with the node's credentials) or =web-identity:ROLE_ARN (with the pod's token), repeatable (env BERTH_ROLE_MAP)",
    })
    .option("timeout", {
      type: "string",
      describe: "deadline for the whole run, Go duration, at most 55s (env BERTH_TIMEOUT; default 30s)",
    })
    .option("cache-max-entries", {
      type: "string",
      describe: "entries kept in the cache directory, oldest dropped first (env BERTH_CACHE_MAX_ENTRIES; default 1000)",
    })
    .option("failure-memory", {
      type: "string",
      describe:
        "with --cache-dir, how long a failed fetch is remembered, Go duration, 0s off (env BERTH_FAILURE_MEMORY; default 1m)",
    })
    .option("role-annotation", {
      type: "string",
      array: true,
      describe: `service-account annotation holding the role ARN, repeatable, in order (env BERTH_ROLE_ANNOTATIONS; default ${ROLE_ANNOTATION})`,
    })
    .option("token-mode", {
      type: "string",
      describe:
        "a pod token and no role: node-fallback (the node's credentials) or fail-closed (an error) (env BERTH_TOKEN_MODE)",
    })
    .option("log-file", { type: "string", describe: "append one JSON line per request to FILE (env BERTH_LOG_FILE)" })
    .option("log-file-max-bytes", {
      type: "string",
      describe: "rotate the log file to FILE.1 at this size (env BERTH_LOG_FILE_MAX_BYTES; default 10485760)",
    })
    .demandCommand(1, "name a command, or pipe a CredentialProviderRequest on stdin")
    .strict()
    .version(versionLine(PROGRAM))
    .help()
    .alias("h", "help")
    .wrap(null)
    .exitProcess(false)
    .fail((msg, err) => {
      code = 1;
      stderr.print(
        `${PROGRAM}: ${oneLine(msg || err?.message || "invalid arguments")}\nRun ${PROGRAM} --help for usage.\n`,
      );
    });
  await parser.parseAsync();
  if (code !== 0) return code;
  return action ? await action() : 0;
}
