// The small libcni runtime of test/libcni/client (Debian's libcni 1.1.2, GOPATH build, offline):
// built once per test process into a scratch directory, then called with one JSON request.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execBinary, ROOT } from "./exec.ts";
import type { Requirement } from "./peers.ts";
import { tempDir } from "./temp.ts";

export const GO = "/usr/bin/go";
export const LIBCNI_SRC = "/usr/share/gocode/src/github.com/containernetworking/cni/libcni";

/** What a stage that builds the client needs besides the plugin under test. */
export function needLibcniSource(): Requirement {
  return {
    what: `${LIBCNI_SRC} (Debian package golang-github-appc-cni-dev)`,
    ok: existsSync(LIBCNI_SRC),
  };
}

let built: string | undefined;

/** The client's path, building it on first use. */
export function libcniClient(): string {
  if (built && existsSync(built)) return built;
  const dir = tempDir("libcni-build");
  const out = join(dir, "libcni-client");
  execFileSync(GO, ["build", "-o", out, "."], {
    cwd: join(ROOT, "test/libcni/client"),
    env: {
      PATH: "/usr/bin:/bin",
      GO111MODULE: "off",
      GOPATH: `${dir}/gopath:/usr/share/gocode`,
      CGO_ENABLED: "0",
      GOCACHE: join(dir, "gocache"),
      GOFLAGS: "",
      HOME: dir,
    },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 120_000,
  });
  built = out;
  return out;
}

export type LibcniRequest = {
  op: "add" | "check" | "del" | "validate" | "version" | "cachedResult";
  mode: "list" | "net";
  conf: string;
  path: string[];
  cacheDir: string;
  containerID: string;
  netns: string;
  ifname: string;
  args?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
};

export type LibcniReply = { ok: boolean; error?: string; result?: Record<string, unknown> };

/** One libcni call, run in the caller's network namespace (fine for an IPAM plugin alone). */
export async function libcniCall(req: LibcniRequest): Promise<LibcniReply> {
  const r = await execBinary(libcniClient(), { stdin: JSON.stringify({ args: [], capabilityArgs: {}, ...req }) });
  if (r.code !== 0) throw new Error(`libcni client: exit ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as LibcniReply;
}
