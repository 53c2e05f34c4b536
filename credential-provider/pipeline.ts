// One request from the kubelet (main.ts) or a person (cli.ts `get-credentials`) to its outcome:
// the secrets of the environment registered with the run's stderr sink, the settings from flags
// and environment, and the token from the disk cache or the network. It prints nothing: the
// caller writes the answer, and every warning and error goes out through the same sink.
import type { CredentialProviderRequest } from "../shared/kubelet/types.ts";
import { loadConfig, type Env } from "./config.ts";
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

export async function answer(
  argv: string[],
  env: Env,
  req: CredentialProviderRequest,
  stderr: Stderr,
): Promise<Outcome> {
  stderr.secret(env.AWS_SECRET_ACCESS_KEY);
  stderr.secret(env.AWS_SESSION_TOKEN);
  const config = loadConfig(argv, env);
  if (!config.ok) return config;
  return getCredentials(req, config.value, networkDeps(env, stderr));
}
