// The skel: owns the CNI protocol around a plugin's commands, the way the reference Go skel
// does. It validates the environment, decodes stdin, checks the network name, negotiates the
// version, calls one command, and prints exactly one thing: the result, or the error JSON.
import { readStdin, writeStderr, writeStdout, type StdinRead } from "../io.ts";
import { type CniError, decodingFailure, incompatibleVersion, invalidConfig, toCniError } from "./errors.ts";
import { isValidName, parseEnv, type CniEnv } from "./env.ts";
import { asJsonObject, errorMessage, isJsonObject, type JsonObject } from "../json.ts";
import { renderResult, type IpamResult } from "./result.ts";
import {
  atLeast,
  isSupported,
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  supportedListText,
  type CniVersion,
} from "./version.ts";

export type CniRequest = {
  env: CniEnv;
  version: CniVersion;
  /** The whole network config from stdin (an IPAM plugin gets its parent's config). */
  config: JsonObject;
  name: string;
};

type MaybeAsync<T> = T | Promise<T>;

export type CniHandlers = {
  add(req: CniRequest): MaybeAsync<IpamResult>;
  del(req: CniRequest): MaybeAsync<void>;
  check(req: CniRequest): MaybeAsync<void>;
  gc(req: CniRequest): MaybeAsync<void>;
  status(req: CniRequest): MaybeAsync<void>;
};

/** What one invocation was asked and answered, for an observer such as an audit log. */
export type Invocation = {
  /** The CNI_* variables as given, also when they were invalid. */
  env: Record<string, string | undefined>;
  /** The network config, once stdin decoded to a JSON object. */
  config?: JsonObject;
  /** The CNI version the answer was given in. */
  version: string;
  result?: IpamResult;
  error?: CniError;
};

export type RunOptions = {
  env?: Record<string, string | undefined>;
  /** First line of the about text printed when a person runs the plugin without CNI_COMMAND. */
  about: string;
  /** Printed after the about text (e.g. how to reach the plugin's own command line). */
  hint?: string;
  /** Called once the answer is written, before the exit code is returned; its failures are its own. */
  onDone?: (inv: Invocation) => void | Promise<void>;
  /** Reads stdin and writes the streams; replaceable in unit tests. */
  stdin?: () => ReturnType<typeof readStdin>;
  write?: { stdout(text: string): void; stderr(text: string): void };
};

function errorJson(version: string, e: CniError): string {
  const out: JsonObject = { cniVersion: version, code: e.code, msg: e.message };
  if (e.details) out.details = e.details;
  return `${JSON.stringify(out)}\n`;
}

function decodeConfig(text: string): JsonObject {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw decodingFailure(`error unmarshall network config: ${errorMessage(e)}`);
  }
  if (!isJsonObject(parsed)) throw decodingFailure("error unmarshall network config: not a JSON object");
  return parsed;
}

/**
 * The config's cniVersion. Missing means 0.1.0 (the spec); null too, as Go decodes it into "".
 * Another type is a decoding failure, except for DEL: it renders no result, so the version is a
 * field it does not need, and a broken config must not keep it from freeing the attachment.
 */
function configVersion(config: JsonObject, command: CniEnv["command"]): string {
  const v = config.cniVersion;
  if (v === undefined || v === null || v === "") return "0.1.0";
  if (typeof v === "string") return v;
  if (command === "DEL") return "0.1.0";
  throw decodingFailure("error unmarshall network config: cniVersion must be a string");
}

function networkName(config: JsonObject): string {
  const name = config.name;
  if (name === undefined || name === "") throw invalidConfig("missing network name");
  if (typeof name !== "string" || !isValidName(name)) {
    throw invalidConfig(
      "invalid characters found in network name",
      typeof name === "string" ? name : JSON.stringify(name),
    );
  }
  return name;
}

/** The version a command needs (SPEC.md version history): CHECK 0.4.0, GC and STATUS 1.1.0. */
const MIN_VERSION: Partial<Record<CniEnv["command"], string>> = { CHECK: "0.4.0", GC: "1.1.0", STATUS: "1.1.0" };

type State = { version: string; config?: JsonObject; result?: IpamResult };

/**
 * The skel's checks of a config command's stdin, in its order: JSON object, cniVersion, network
 * name, supported version, the command's minimum version. Exported so that a person's tooling
 * (berth-ipam validate) answers exactly what the plugin would.
 */
export function requestOf(env: CniEnv, text: string, state: State = { version: LATEST_VERSION }): CniRequest {
  const config = decodeConfig(text);
  state.config = config;
  const v = configVersion(config, env.command);
  if (isSupported(v)) state.version = v;
  const name = networkName(config);
  if (!isSupported(v)) {
    throw incompatibleVersion(
      "incompatible CNI versions",
      `config is ${JSON.stringify(v)}, plugin supports ${supportedListText()}`,
    );
  }
  const min = MIN_VERSION[env.command];
  if (min && !atLeast(v, min)) throw incompatibleVersion(`config version does not allow ${env.command}`);
  return { env, version: v, config, name };
}

/** The skel's message for stdin that could not be read whole. */
export function unreadableInput(input: Exclude<StdinRead, { ok: true }>): CniError {
  return input.reason === "too-large"
    ? decodingFailure(`error unmarshall network config: input too large (${input.detail})`)
    : decodingFailure(`error reading network config from stdin: ${input.detail}`);
}

async function dispatch(handlers: CniHandlers, env: CniEnv, text: string, state: State): Promise<string> {
  if (env.command === "VERSION") {
    // The spec asks VERSION to echo the cniVersion it was given; stdin may be empty or not JSON.
    let asked: string = LATEST_VERSION;
    try {
      const v = asJsonObject(JSON.parse(text))?.cniVersion;
      if (typeof v === "string" && isSupported(v)) asked = v;
    } catch {
      // no usable input: answer with the newest version
    }
    return `${JSON.stringify({ cniVersion: asked, supportedVersions: SUPPORTED_VERSIONS })}\n`;
  }
  const req = requestOf(env, text, state);
  switch (env.command) {
    case "ADD":
      state.result = await handlers.add(req);
      return `${JSON.stringify(renderResult(req.version, state.result))}\n`;
    case "DEL":
      await handlers.del(req);
      return "";
    case "CHECK":
      await handlers.check(req);
      return "";
    case "GC":
      await handlers.gc(req);
      return "";
    case "STATUS":
      await handlers.status(req);
      return "";
  }
}

/** Runs one CNI invocation and returns the process exit code (0, or 1 after printing an error). */
export async function runCni(handlers: CniHandlers, opts: RunOptions): Promise<number> {
  const envVars = opts.env ?? process.env;
  const out = opts.write ?? { stdout: writeStdout, stderr: writeStderr };
  if (!envVars.CNI_COMMAND) {
    const hint = opts.hint ? `${opts.hint}\n` : "";
    out.stderr(`${opts.about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n${hint}`);
    return 0;
  }
  const state: State = { version: LATEST_VERSION };
  let error: CniError | undefined;
  try {
    const env = parseEnv(envVars);
    const input = (opts.stdin ?? readStdin)();
    if (!input.ok) throw unreadableInput(input);
    const text = await dispatch(handlers, env, input.text, state);
    if (text) out.stdout(text);
  } catch (e) {
    error = toCniError(e);
    out.stdout(errorJson(state.version, error));
  }
  if (opts.onDone) {
    try {
      await opts.onDone({ env: envVars, config: state.config, version: state.version, result: state.result, error });
    } catch {
      // an observer never changes the answer already given
    }
  }
  return error ? 1 : 0;
}
