// Version and commit, replaced at build time by packaging/build.ts (esbuild define).
declare const __BERTH_VERSION__: string | undefined;
declare const __BERTH_COMMIT__: string | undefined;

export const VERSION: string = typeof __BERTH_VERSION__ === "string" ? __BERTH_VERSION__ : "0.0.0-dev";
export const COMMIT: string = typeof __BERTH_COMMIT__ === "string" ? __BERTH_COMMIT__ : "unknown";
export const versionLine = (program: string): string => `${program} ${VERSION} (commit ${COMMIT})`;
