// The skel: owns the CNI protocol around a plugin's commands, the way the reference Go skel
// does. It validates the environment, decodes stdin, checks the network name, negotiates the
// version, calls one command, and prints exactly one thing: the result, or the error JSON.
import { readStdin, writeStderr, writeStdout } from "../io.ts";
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

export type RunOptions = {
  env?: Record<string, string | undefined>;
  /** First line of the about text printed when a person runs the plugin without CNI_COMMAND. */
  about: string;
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

async function dispatch(handlers: CniHandlers, env: CniEnv, text: string, state: { version: string }): Promise<string> {
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
  const config = decodeConfig(text);
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

  const req: CniRequest = { env, version: v, config, name };
  switch (env.command) {
    case "ADD":
      return `${JSON.stringify(renderResult(v, await handlers.add(req)))}\n`;
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
    out.stderr(`${opts.about}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n`);
    return 0;
  }
  const state = { version: LATEST_VERSION as string };
  try {
    const env = parseEnv(envVars);
    const input = (opts.stdin ?? readStdin)();
    if (!input.ok) {
      throw input.reason === "too-large"
        ? decodingFailure(`error unmarshall network config: input too large (${input.detail})`)
        : decodingFailure(`error reading network config from stdin: ${input.detail}`);
    }
    const text = await dispatch(handlers, env, input.text, state);
    if (text) out.stdout(text);
    return 0;
  } catch (e) {
    out.stdout(errorJson(state.version, toCniError(e)));
    return 1;
  }
}
