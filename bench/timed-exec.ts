// The one way the benchmarks run a program: spawned with exactly the given environment, stdin
// written and closed (or read from a file), timed from spawn to exit on the monotonic clock.
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";

export type Timed = { ms: number; code: number; stdout: string; stderr: string };

export function timedExec(
  file: string,
  args: readonly string[],
  /**
   * stdinFile: the child reads its stdin from this file. A burst needs it: a pipe is only written
   * once the parent's event loop turns again, after it has spawned every child of the burst, so
   * children that read stdin would wait for the spawn loop while children that do not (bare
   * `node -e 0`) would not.
   */
  opts: { env: Record<string, string>; stdin?: string; stdinFile?: string },
): Promise<Timed> {
  return new Promise((done, fail) => {
    const fd = opts.stdinFile === undefined ? undefined : openSync(opts.stdinFile, "r");
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { env: opts.env, stdio: [fd ?? "pipe", "pipe", "pipe"] });
    if (fd !== undefined) closeSync(fd);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", fail);
    child.on("close", (code) =>
      done({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, stdout, stderr }),
    );
    if (child.stdin) {
      child.stdin.on("error", () => {}); // a program may exit without reading its input
      child.stdin.end(opts.stdin ?? "");
    }
  });
}
