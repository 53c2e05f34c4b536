// One request from the kubelet (main.ts) or a person (cli.ts `get-credentials`) to its outcome:
// the secrets of the environment registered with the run's stderr sink, the settings from flags
// and environment, the token from the disk cache or the network, and, with --log-file, one line
// about it. It prints nothing: the caller writes the answer, and every warning and error goes out
// through the same sink.
import { decodeRequest } from "../shared/kubelet/codec.ts";
import type { CredentialProviderRequest } from "../shared/kubelet/types.ts";
import { loadConfig, type Config, type Env } from "./config.ts";
import { getCredentials, type Deps, type Outcome } from "./provider.ts";
import type { Stderr } from "./stderr.ts";

export const PROGRAM = "berth-credential-provider";

/** The network half, imported only when the cache cannot answer: a cache hit never loads the AWS SDK. */
function networkDeps(env: Env, stderr: Stderr): Deps {
  return {
    fetchToken: async (plan, signal, keeper) => (await import("./ecr.ts")).fetchToken(plan, env, signal, keeper),
    now: Date.now,
    stderr,
  };
}

/** The log line for the outcome (log-file.ts loaded only now, and only with --log-file). */
async function log(config: Config, image: string | undefined, outcome: Outcome, stderr: Stderr): Promise<void> {
  if (config.logFile === undefined) return;
  const { appendLog } = await import("./log-file.ts");
  const plan = outcome.plan;
  const id = plan?.identity;
  const warnings = stderr.warnings();
  const failed = appendLog(config.logFile.path, config.logFile.maxBytes, {
    time: new Date().toISOString(),
    image,
    registry: outcome.registry,
    asked: plan?.host,
    source: outcome.ok ? outcome.source : "error",
    identity: id?.mode,
    role: id === undefined || id.mode === "node" ? undefined : id.roleArn,
    durationMs: Math.round(performance.now()),
    ...(warnings.length ? { warning: warnings.join("; ") } : {}),
    ...(outcome.ok ? {} : { error: stderr.scrub(outcome.error) }),
  });
  if (failed) stderr.warn(`warning: could not append to the log file ${config.logFile.path}: ${failed}`);
}

async function answerWith(config: Config, env: Env, req: CredentialProviderRequest, stderr: Stderr): Promise<Outcome> {
  const outcome = await getCredentials(req, config, networkDeps(env, stderr));
  await log(config, req.image, outcome, stderr);
  return outcome;
}

function configFor(argv: string[], env: Env, stderr: Stderr) {
  stderr.secret(env.AWS_SECRET_ACCESS_KEY);
  stderr.secret(env.AWS_SESSION_TOKEN);
  return loadConfig(argv, env);
}

/** A request someone built (the CLI). */
export async function answer(
  argv: string[],
  env: Env,
  req: CredentialProviderRequest,
  stderr: Stderr,
): Promise<Outcome> {
  const config = configFor(argv, env, stderr);
  if (!config.ok) return config;
  return answerWith(config.value, env, req, stderr);
}

/** The kubelet's request as read from stdin. */
export async function answerText(argv: string[], env: Env, text: string, stderr: Stderr): Promise<Outcome> {
  const config = configFor(argv, env, stderr);
  if (!config.ok) return config;
  const req = decodeRequest(text);
  if (!req.ok) {
    const outcome: Outcome = { ok: false, error: req.error };
    await log(config.value, undefined, outcome, stderr);
    return outcome;
  }
  return answerWith(config.value, env, req.value, stderr);
}
