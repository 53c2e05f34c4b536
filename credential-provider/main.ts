// berth-credential-provider: the kubelet execs this with a CredentialProviderRequest on stdin and
// reads a CredentialProviderResponse from stdout. A person running it gets the CLI (cli.ts,
// loaded only then). The kubelet's path imports neither yargs nor the AWS SDK until a token has
// to be fetched over the network.
import { fstatSync } from "node:fs";
import { readStdin, writeStderr, writeStdout, MAX_STDIN_BYTES } from "../shared/io.ts";
import { decodeRequest, encodeResponse } from "../shared/kubelet/codec.ts";
import { loadConfig, wantsCli, type Env } from "./config.ts";
import { getCredentials } from "./provider.ts";
import { addSecret, safeLine } from "./secrets.ts";
import { versionLine } from "../shared/build-info.ts";

export const PROGRAM = "berth-credential-provider";

function fail(message: string): number {
  writeStderr(`${PROGRAM}: ${safeLine(message)}\n`);
  return 1;
}

/** isatty(0) without loading node:tty (which pulls in node:net, ~4 ms at every start): a
 * character device whose major number is a terminal's (Linux: 4 tty, 5 /dev/tty and console,
 * 136-143 pseudo-terminals). /dev/null, a character device too, is not a terminal. */
function stdinIsTerminal(): boolean {
  try {
    const st = fstatSync(0);
    if (!st.isCharacterDevice()) return false;
    const major = ((st.rdev >>> 8) & 0xfff) | (Math.floor(st.rdev / 2 ** 32) & ~0xfff);
    return major === 4 || major === 5 || (major >= 136 && major <= 143);
  } catch {
    return false;
  }
}

async function serve(argv: string[], env: Env): Promise<number> {
  addSecret(env.AWS_SECRET_ACCESS_KEY);
  addSecret(env.AWS_SESSION_TOKEN);
  const config = loadConfig(argv, env);
  if (!config.ok) return fail(config.error);
  const input = readStdin(MAX_STDIN_BYTES);
  if (!input.ok) {
    return fail(
      `error reading the CredentialProviderRequest from stdin: ${input.reason === "too-large" ? `input is ${input.detail}` : input.detail}`,
    );
  }
  const req = decodeRequest(input.text);
  if (!req.ok) return fail(req.error);
  // Warnings go out after the answer; on failure they join the error, so stderr stays one line.
  const warnings: string[] = [];
  const outcome = await getCredentials(req.value, config.value, {
    fetchToken: async (plan, signal) => (await import("./ecr.ts")).fetchToken(plan, env, signal),
    now: Date.now,
    warn: (m) => warnings.push(m),
  });
  if (!outcome.ok) return fail(warnings.length ? `${outcome.error} (${warnings.join("; ")})` : outcome.error);
  writeStdout(encodeResponse(outcome.response));
  for (const w of warnings) writeStderr(`${PROGRAM}: ${safeLine(w)}\n`);
  return 0;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  try {
    // The one CLI answer that needs no parser: keeps `--version` (install checks, probes) at start-up cost.
    if (argv.length === 1 && argv[0] === "--version") {
      writeStdout(`${versionLine(PROGRAM)}\n`);
      return 0;
    }
    if (wantsCli(argv, stdinIsTerminal())) {
      const { runCli } = await import("./cli.ts");
      return await runCli(argv, process.env);
    }
    return await serve(argv, process.env);
  } catch (e) {
    return fail(`internal error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

main().then((code) => {
  process.exitCode = code;
  // Everything is written synchronously; a socket still open after a timeout must not hold us.
  setTimeout(() => process.exit(code), 100).unref();
});
