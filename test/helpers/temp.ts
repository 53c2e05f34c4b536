// Scratch directories for every test stage: one way to make them (named for the test process, so
// a leftover is easy to trace) and one to remove them. Whatever a stage did not remove goes when
// its process exits, also after a failed test (the libcni client's build dir lives that long).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const live = new Set<string>();

/** A new empty directory under the system's temp dir. */
export function tempDir(tag = "dir"): string {
  const dir = mkdtempSync(join(tmpdir(), `berth-test-${process.pid}-${tag}-`));
  live.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}

/** Every directory tempDir made that is still there. */
export function removeAllTempDirs(): void {
  for (const dir of [...live]) removeDir(dir);
}

process.on("exit", removeAllTempDirs);
