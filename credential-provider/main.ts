// berth-credential-provider: the kubelet execs this with a CredentialProviderRequest on stdin and
// reads a CredentialProviderResponse from stdout. A person running it gets the CLI (cli.ts,
// loaded only then). The kubelet's path imports neither yargs nor the AWS SDK until a token has
// to be fetched over the network.
//
// Which one is asking: the kubelet always writes its request to stdin and closes it
// (pkg/credentialprovider/plugin/plugin.go: execPlugin.ExecPlugin), with whatever `args` its config
// holds. So stdin decides, not the arguments: unless it is a terminal or the command is one only a
// person gives (--version, --help, validate-config), stdin is read first, and a request there is
// answered whatever the arguments say. Only with nothing on stdin do the arguments pick the CLI.
import { fstatSync } from "node:fs";
import { versionLine } from "../shared/build-info.ts";
import { MAX_STDIN_BYTES, readStdin, writeStderr, writeStdout } from "../shared/io.ts";
import { errorMessage } from "../shared/json.ts";
import { encodeResponse } from "../shared/kubelet/codec.ts";
import { type Env, isPersonCommand, wantsCli } from "./config.ts";
import { answerText, PROGRAM } from "./pipeline.ts";
import { type Stderr, stderrSink } from "./stderr.ts";

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

async function serve(argv: string[], env: Env, text: string, stderr: Stderr): Promise<number> {
  const outcome = await answerText(argv, env, text, stderr);
  if (!outcome.ok) return stderr.fail(outcome.error);
  writeStdout(encodeResponse(outcome.response));
  // Warnings go out after the answer; on failure `fail` joins them to the error, so stderr stays one line.
  stderr.flush();
  return 0;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const stderr = stderrSink(PROGRAM, writeStderr);
  try {
    // The one CLI answer that needs no parser: keeps `--version` (install checks, probes) at start-up cost.
    if (argv.length === 1 && argv[0] === "--version") {
      writeStdout(`${versionLine(PROGRAM)}\n`);
      return 0;
    }
    const cli = async () => (await import("./cli.ts")).runCli(argv, process.env, stderr);
    if (isPersonCommand(argv) || stdinIsTerminal()) return await cli();
    const input = readStdin(MAX_STDIN_BYTES);
    if (!input.ok) {
      const why = input.reason === "too-large" ? `input is ${input.detail}` : input.detail;
      return stderr.fail(`error reading the CredentialProviderRequest from stdin: ${why}`);
    }
    if (input.text.trim() === "" && wantsCli(argv, false)) return await cli();
    return await serve(argv, process.env, input.text, stderr);
  } catch (e) {
    return stderr.fail(`internal error: ${errorMessage(e)}`);
  }
}

main().then((code) => {
  process.exitCode = code;
  // Everything is written synchronously; a socket still open after a timeout must not hold us.
  setTimeout(() => process.exit(code), 100).unref();
});
