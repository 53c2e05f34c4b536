// Where one command's time goes, for the burst analysis (bench/burst-trace.ts). With
// BERTH_IPAM_TRACE=<file> in the environment each process appends one JSON line of wall-clock
// timestamps (ms) at exit: its start (Node's time origin), when main ran, and the store's
// phases. Without it, mark does nothing and nothing else is loaded.
import { appendFileSync } from "node:fs";

const file = process.env.BERTH_IPAM_TRACE;
const marks: Record<string, number> = {};

export const mark: (phase: string) => void = file
  ? (phase) => {
      marks[phase] = performance.timeOrigin + performance.now();
    }
  : () => {};

if (file) {
  process.on("exit", () => {
    mark("exit");
    appendFileSync(file, `${JSON.stringify({ pid: process.pid, origin: performance.timeOrigin, ...marks })}\n`);
  });
}
