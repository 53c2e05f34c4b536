// The programs a berth release ships, shared by build.ts, release.ts and the launcher: one
// executable holds them all and runs the one named by the file name it was exec'ed as.
export type Program = { name: string; entry: string };
export const PROGRAMS: Program[] = [
  { name: "berth-ipam", entry: "cni/main.ts" },
  { name: "berth-credential-provider", entry: "credential-provider/main.ts" },
];

/** The executable's name on disk in a build; every other program's name is a link to it. */
export const PRIMARY: Program = PROGRAMS[0] as Program;

/** The single executable's assets: each program's bundle and its V8 code cache. */
export const sourceAsset = (program: string): string => `${program}.js`;
export const cacheAsset = (program: string): string => `${program}.cache`;
