// A directory tree read entry by entry, for tests that compare what a run left on disk.
import { type BigIntStats, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

export type TreeEntry = { path: string; type: "dir" | "link" | "file"; st: BigIntStats };

/** Every entry below root (links not followed), each directory before what it holds, names in order. */
export function lstatTree(root: string): TreeEntry[] {
  const out: TreeEntry[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path, { bigint: true });
      const type = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "file";
      out.push({ path, type, st });
      if (type === "dir") walk(path);
    }
  };
  walk(root);
  return out;
}
