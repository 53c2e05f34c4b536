// The human side, loaded only when a person runs the binary (see main.ts wantsCli): --help,
// --version, `get-credentials IMAGE` (what the kubelet would receive, secrets masked) and
// `validate-config FILE|DIR [--image IMAGE]` (the kubelet's rules and matchImages globbing).
import { readFileSync } from "node:fs";
import yargs from "yargs";
import { parseDocument } from "yaml";
import { versionLine } from "../shared/build-info.ts";
import { writeStdout } from "../shared/io.ts";
import { decodeResponseStrict } from "../shared/kubelet/codec.ts";
import { API_VERSIONS, GROUP, type ApiVersion, type CredentialProviderRequest } from "../shared/kubelet/types.ts";
import { loadConfig, type Env } from "./config.ts";
import { matchProviders, validateConfig, type ParseDoc } from "./kubelet-config.ts";
import { answer, PROGRAM } from "./pipeline.ts";
import { planFor, ROLE_ANNOTATION } from "./provider.ts";
import { oneLine, type Stderr } from "./stderr.ts";

const parseYaml: ParseDoc = (text) => {
  // uniqueKeys: the kubelet's strict decoder rejects duplicate fields too.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) return { ok: false, error: doc.errors.map((e) => e.message.split("\n")[0]).join("; ") };
  return { ok: true, value: doc.toJS() as unknown };
};

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

function validateConfigCommand(argv: string[], env: Env, file: string, image: string | undefined): number {
  const report = validateConfig(file, parseYaml);
  for (const e of report.errors) writeStdout(`error: ${e}\n`);
  if (report.errors.length === 0)
    writeStdout(
      `${file}: valid CredentialProviderConfig (${report.providers.length} provider${report.providers.length === 1 ? "" : "s"})\n`,
    );
  if (image !== undefined) {
    const matches = matchProviders(report.providers, image);
    const matchedAny = matches.some((m) => m.matchedBy.length > 0);
    for (const m of matches) {
      const label = `provider ${JSON.stringify(m.provider.name)}`;
      if (m.matchedBy.length > 0)
        writeStdout(`${label} matches ${image} by ${m.matchedBy.map((g) => JSON.stringify(g)).join(", ")}\n`);
      else writeStdout(`${label} does not match ${image}\n`);
      for (const pr of m.problems) writeStdout(`  warning: bad matchImages pattern ${pr}\n`);
    }
    if (!matchedAny) writeStdout(`no provider matches ${image}: the kubelet pulls it without provider credentials\n`);
    const config = loadConfig(argv, env);
    if (config.ok) {
      const planned = planFor({ kind: "CredentialProviderRequest", apiVersion: `${GROUP}/v1`, image }, config.value);
      if (planned.ok) {
        const p = planned.plan;
        writeStdout(
          `${PROGRAM} would ask ${p.api === "ecr" ? "ECR" : "ECR Public"} in ${p.region ?? "the default region"}${p.fips ? " (FIPS endpoint)" : ""}${p.dualStack ? " (dual-stack endpoint)" : ""} for ${p.host}, auth key ${planned.registry}\n`,
        );
        if (planned.warning) writeStdout(`${planned.warning}\n`);
      } else writeStdout(`${PROGRAM}: ${planned.error}\n`);
    }
  }
  return report.errors.length === 0 ? 0 : 1;
}

export async function runCli(argv: string[], env: Env, stderr: Stderr): Promise<number> {
  let code = 0;
  let action: (() => Promise<number> | number) | undefined;
  const parser = yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      `${versionLine(PROGRAM)}\n\nA kubelet image credential provider for Amazon ECR and ECR Public.\n` +
        `The kubelet runs it with a CredentialProviderRequest on stdin (any positional arguments, such as\n` +
        `"get-credentials" in the kubelet config, are ignored then). A person can run:`,
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
          .option("image", { type: "string", describe: "also say which providers' matchImages match this image" }),
      (a) => {
        action = () => validateConfigCommand(argv, env, String(a.file), a.image);
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
      describe: "ECR_REGISTRY_OR_ACCOUNT=ROLE_ARN, repeatable (env BERTH_ROLE_MAP)",
    })
    .option("timeout", {
      type: "string",
      describe: "deadline for the whole run, Go duration, at most 55s (env BERTH_TIMEOUT; default 30s)",
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
