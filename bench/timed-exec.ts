// The one way the benchmarks run a program: spawned with exactly the given environment, stdin
// written and closed, timed from spawn to exit on the monotonic clock.
import { spawn } from "node:child_process";

export type Timed = { ms: number; code: number; stdout: string; stderr: string };

export function timedExec(
  file: string,
  args: readonly string[],
  opts: { env: Record<string, string>; stdin?: string },
): Promise<Timed> {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(file, args, { env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", fail);
    child.on("close", (code) =>
      done({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code: code ?? -1, stdout, stderr }),
    );
    child.stdin.on("error", () => {}); // a program may exit without reading its input
    child.stdin.end(opts.stdin ?? "");
  });
}
