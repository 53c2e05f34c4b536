// The single executable's entry: it holds every program's bundle as an asset and compiles only
// the one named by the file name it was run as (argv[0], as busybox does: a runtime and the
// kubelet exec the path they found, so a hard link or a symbolic link keeps its own name).
// The other program's code is never read, parsed or compiled.
import { PROGRAMS, cacheAsset, sourceAsset } from "./programs.ts";

/** The parameters of a CommonJS module wrapper, in the order Node's own loader passes them. */
export const WRAPPER_PARAMS = ["exports", "require", "module", "__filename", "__dirname"] as const;

/** A bundle as the function that runs it, in the same shape the build compiles for its code cache. */
export const wrapBundle = (code: string): string => `(function (${WRAPPER_PARAMS.join(", ")}) {${code}\n})`;

export type LaunchDeps = {
  argv0: string;
  /** One asset's bytes, or undefined if the executable has none by that key. */
  asset: (key: string) => Uint8Array | undefined;
  /** Compiles wrapped source with its code cache; says whether V8 took the cache. */
  compile: (
    source: string,
    filename: string,
    cache: Uint8Array | undefined,
  ) => { run: (...args: unknown[]) => unknown; cacheRejected: boolean };
  /** What the program gets as require, module, __filename and __dirname. */
  moduleArgs: { require: unknown; filename: string; dirname: string };
  stderr: (text: string) => void;
};

/** The program a path names, by its last component. */
export function programNamed(argv0: string): string | undefined {
  const name = argv0.slice(argv0.lastIndexOf("/") + 1);
  return PROGRAMS.some((p) => p.name === name) ? name : undefined;
}

export function usage(argv0: string): string {
  return [
    `${argv0}: berth runs as the program it is named: ${PROGRAMS.map((p) => p.name).join(", ")}.`,
    "Install it under those names (install.sh links one file under both), or run one of them:",
    ...PROGRAMS.map((p) => `  ${p.name} --version`),
    "",
  ].join("\n");
}

/** Runs the program argv0 names; exit code 2 and the usage for any other name. */
export function launch(deps: LaunchDeps): number | undefined {
  const name = programNamed(deps.argv0);
  if (name === undefined) {
    deps.stderr(usage(deps.argv0));
    return 2;
  }
  const source = deps.asset(sourceAsset(name));
  if (source === undefined) {
    deps.stderr(`${name}: this executable does not hold ${name} (a broken build)\n`);
    return 70; // EX_SOFTWARE
  }
  // The asset is the bundle already wrapped (wrapBundle at build time): the very string its code
  // cache was made from, so V8 takes the cache.
  const fn = deps.compile(new TextDecoder().decode(source), name, deps.asset(cacheAsset(name)));
  // A cache V8 refuses costs tens of milliseconds at every start: a build defect worth a line.
  if (fn.cacheRejected) deps.stderr(`${name}: warning: V8 rejected the embedded code cache; starting slower\n`);
  const module = { exports: {} };
  fn.run.call(
    module.exports,
    module.exports,
    deps.moduleArgs.require,
    module,
    deps.moduleArgs.filename,
    deps.moduleArgs.dirname,
  );
  return undefined;
}
