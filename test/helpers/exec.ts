// Runs a built binary exactly as a runtime or the kubelet does: a clean environment, JSON on
// stdin, stdout and stderr captured separately.
import { spawn } from "node:child_process";
import { resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BIN_DIR = process.env.BERTH_BIN_DIR ?? resolve(ROOT, "dist/bin");
/** The IPAM plugin under test; the black-box suites also run against host-local. */
export const IPAM_PLUGIN = process.env.BERTH_IPAM ?? resolve(BIN_DIR, "berth-ipam");
export const CREDENTIAL_PROVIDER =
  process.env.BERTH_CREDENTIAL_PROVIDER ?? resolve(BIN_DIR, "berth-credential-provider");

/** The environment of a runtime's ADD for one container, before any caller's extras. */
export function addEnv(containerId: string): Record<string, string> {
  return {
    PATH: "/usr/bin:/bin",
    CNI_COMMAND: "ADD",
    CNI_CONTAINERID: containerId,
    CNI_NETNS: "/x",
    CNI_IFNAME: "eth0",
  };
}

export type ExecResult = { code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null };

export type ExecOptions = {
  env?: Record<string, string>;
  stdin?: string | Buffer;
  args?: string[];
  timeoutMs?: number;
};

export function execBinary(file: string, opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((done, fail) => {
    const child = spawn(file, opts.args ?? [], {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30000);
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      done({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on("error", () => {}); // the program may exit before reading all of a huge input
    child.stdin.end(opts.stdin ?? "");
  });
}
