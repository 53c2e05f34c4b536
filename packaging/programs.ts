// The programs a berth release ships, shared by build.ts, release.ts and the launcher: one
// executable holds them all and runs the one named by the file name it was exec'ed as.
export type Program = {
  name: string;
  entry: string;
  /**
   * Modules the entry imports dynamically that are bundled apart, as assets of their own with their
   * own code cache, so that not even their source is part of the program's: berth-ipam's operator
   * CLI (with yargs) stays off the CNI path. `module` is its path from the root; `name` keys its
   * assets (sourceAsset, cacheAsset).
   */
  lazy?: { module: string; name: string }[];
};
export const PROGRAMS: Program[] = [
  { name: "berth-ipam", entry: "cni/main.ts", lazy: [{ module: "cni/cli/main.ts", name: "berth-ipam-cli" }] },
  { name: "berth-credential-provider", entry: "credential-provider/main.ts" },
];

/** The executable's name on disk in a build; every other program's name is a link to it. */
export const PRIMARY: Program = PROGRAMS[0] as Program;

/** The single executable's assets: each program's bundle and its V8 code cache. */
export const sourceAsset = (program: string): string => `${program}.js`;
export const cacheAsset = (program: string): string => `${program}.cache`;
