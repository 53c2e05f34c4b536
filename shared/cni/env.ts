// CNI_* environment: which variables each command needs (SPEC.md "Parameters") and the
// name rules of the reference skel, with its error codes and messages.
import { invalidEnv } from "./errors.ts";

export const COMMANDS = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"] as const;
export type Command = (typeof COMMANDS)[number];

export type CniEnv = {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  path: string[];
};

// The spec's required variables per operation. The Go skel also demands CNI_PATH for
// ADD/DEL/CHECK; an IPAM plugin never uses it, so we follow the spec and stay lenient there.
const REQUIRED: Record<Command, readonly string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  GC: ["CNI_PATH"],
  STATUS: [],
  VERSION: [],
};

/** The commands about one attachment: the only ones that read CNI_CONTAINERID and CNI_IFNAME. */
const ATTACHMENT_COMMANDS: readonly Command[] = ["ADD", "CHECK", "DEL"];

// skel: validateContainerID / ValidateNetworkName share this pattern.
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const isValidName = (s: string): boolean => NAME_RE.test(s);

export function validateIfname(name: string): string | undefined {
  if (name === "") return "interface name is empty";
  // Linux IFNAMSIZ is 16 including the NUL; the skel counts bytes.
  if (Buffer.byteLength(name) > 15) return "interface name is too long";
  if (name === "." || name === "..") return "interface name is . or ..";
  if (/[/:\s]/.test(name)) return "interface name contains / or : or whitespace characters";
  return undefined;
}

type Env = Record<string, string | undefined>;

/** Reads CNI_* for a known command; throws CniError code 4 exactly as the skel would. */
export function parseEnv(env: Env): CniEnv {
  const raw = env.CNI_COMMAND ?? "";
  if (!(COMMANDS as readonly string[]).includes(raw)) throw invalidEnv(`unknown CNI_COMMAND: ${raw}`);
  const command = raw as Command;
  const missing = REQUIRED[command].filter((k) => !env[k]);
  if (missing.length > 0) throw invalidEnv(`required env variables [${missing.join(",")}] missing`);

  // Validated only for the commands that use them, as the skel does (containernetworking/cni
  // pkg/skel: a variable's check runs only where it is required): VERSION, GC and STATUS answer
  // whatever the runtime left in CNI_CONTAINERID and CNI_IFNAME.
  const attachment = ATTACHMENT_COMMANDS.includes(command);
  const containerId = env.CNI_CONTAINERID ?? "";
  if (attachment && !isValidName(containerId)) {
    throw invalidEnv("invalid characters in containerID", containerId);
  }
  const ifname = env.CNI_IFNAME ?? "";
  if (attachment) {
    const bad = validateIfname(ifname);
    if (bad) throw invalidEnv(bad); // the skel gives no details here
  }
  return {
    command,
    containerId,
    netns: env.CNI_NETNS ?? "",
    ifname,
    args: env.CNI_ARGS ?? "",
    path: (env.CNI_PATH ?? "").split(":").filter((p) => p !== ""),
  };
}
