// The programs a berth release ships, shared by build.ts and release.ts.
export type Program = { name: string; entry: string };
export const PROGRAMS: Program[] = [
  { name: "berth-ipam", entry: "cni/main.ts" },
  { name: "berth-credential-provider", entry: "credential-provider/main.ts" },
];
