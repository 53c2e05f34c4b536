// npm run build: one executable that holds both programs. esbuild bundles each program into one
// CommonJS file; Node's single executable application (SEA) support embeds both bundles, each
// with its V8 code cache, as assets of a small launcher (packaging/launcher.ts) that compiles only
// the program named by the file name it was run as. The Node binary is stripped before the
// injection, never after: the blob goes in as an ELF note named NODE_SEA_BLOB
// (https://nodejs.org/api/single-executable-applications.html), and stripping an executable after
// the injection breaks it.
//
// Usage: node packaging/build.ts [--arch amd64|arm64 ...] [--out DIR]
//   writes DIR/linux-<arch>/bin/{berth-ipam,berth-credential-provider} (one file, hard-linked),
//   DIR/linux-<arch>/sbom.cdx.json and DIR/linux-<arch>/meta/<program>.json (esbuild's metafiles;
//   also meta/<lazy module>.json for a program's lazy modules, see programs.ts);
//   for this machine's architecture also DIR/bin/<program> (hard links to the same file).
//   Defaults: this machine's architecture, DIR = dist.
// Another architecture's Node comes from the npm registry (packaging/runtimes.ts) and runs under
// qemu-user to make its code caches: a V8 code cache is only valid for the V8 that made it.
import { build, type Plugin, version as esbuildVersion } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { PRIMARY, PROGRAMS, type Program, cacheAsset, sourceAsset } from "./programs.ts";
import { ARCHES, type Arch, RUNTIMES, hostArch, npmPackage, runner } from "./runtimes.ts";
import { type Metafile, type RuntimeComponent, bundledPackages, cycloneDx } from "./sbom.ts";
import { wrapBundle } from "./launcher.ts";

const root = resolve(import.meta.dirname, "..");
const here = import.meta.dirname;
/** Downloads and stripped Node binaries, shared by every build of this work tree. */
const cacheDir = join(root, "dist", "cache");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** The pinned Node version: the `node` devDependency, which the build itself runs on. */
export const NODE_VERSION = pkg.devDependencies.node ?? "";

/** The commit built from, marked "-dirty" when the work tree differs from it. */
function gitCommit(): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  try {
    const sha = git("rev-parse", "--short=12", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no") === "" ? sha : `${sha}-dirty`;
  } catch {
    return "unknown";
  }
}

/** Writes through a temporary name and a rename: nothing ever sees half a file. */
function atomically(file: string, write: (tmp: string) => void): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  try {
    write(tmp);
    renameSync(tmp, file);
  } finally {
    rmSync(tmp, { force: true });
  }
}

const sri = (file: string): string => `sha512-${createHash("sha512").update(readFileSync(file)).digest("base64")}`;

/** The arch's node-linux-<cpu> package tarball from the npm registry, checked against the pinned integrity. */
function runtimeTarball(arch: Arch): string {
  const want = RUNTIMES[arch].integrity[NODE_VERSION];
  if (!want) throw new Error(`packaging/runtimes.ts pins no integrity for ${npmPackage(arch)}@${NODE_VERSION}`);
  const tgz = join(cacheDir, `${npmPackage(arch)}-${NODE_VERSION}.tgz`);
  if (!existsSync(tgz)) {
    const tmp = mkdtempSync(join(cacheDir, ".pack-"));
    try {
      execFileSync("npm", ["pack", "--silent", `${npmPackage(arch)}@${NODE_VERSION}`, "--pack-destination", tmp], {
        stdio: ["ignore", "ignore", "inherit"],
      });
      renameSync(join(tmp, `${npmPackage(arch)}-${NODE_VERSION}.tgz`), tgz);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const got = sri(tgz);
  if (got !== want) {
    rmSync(tgz, { force: true });
    throw new Error(`${npmPackage(arch)}@${NODE_VERSION}: integrity ${got}, packaging/runtimes.ts pins ${want}`);
  }
  return tgz;
}

/** The arch's Node, stripped once and kept in dist/cache. */
function seaBase(arch: Arch): string {
  mkdirSync(cacheDir, { recursive: true });
  const base = join(cacheDir, `node-v${NODE_VERSION}-linux-${arch}`);
  if (existsSync(base)) return base;
  atomically(base, (tmp) => {
    if (arch === hostArch()) {
      if (process.version !== `v${NODE_VERSION}`)
        throw new Error(`build runs on Node ${process.version}, package.json pins ${NODE_VERSION}`);
      copyFileSync(process.execPath, tmp);
    } else {
      const unpack = mkdtempSync(join(cacheDir, ".unpack-"));
      try {
        execFileSync("tar", ["-xzf", runtimeTarball(arch), "-C", unpack, "package/bin/node"]);
        renameSync(join(unpack, "package", "bin", "node"), tmp);
      } finally {
        rmSync(unpack, { recursive: true, force: true });
      }
    }
    try {
      execFileSync(RUNTIMES[arch].strip, [tmp], { stdio: ["ignore", "ignore", "inherit"] });
    } catch {
      process.stderr.write(`build: ${RUNTIMES[arch].strip} failed or is missing; ${arch} keeps an unstripped Node\n`);
    }
    chmodSync(tmp, 0o755);
  });
  return base;
}

/** What the SBOM says about the embedded runtime: the npm package it came from and that package's license. */
function runtimeComponent(arch: Arch): RuntimeComponent {
  const integrity = RUNTIMES[arch].integrity[NODE_VERSION] ?? "";
  if (arch === hostArch()) {
    const manifest = join(root, "node_modules", "node", "node_modules", npmPackage(arch), "package.json");
    const license = existsSync(manifest)
      ? ((JSON.parse(readFileSync(manifest, "utf8")) as { license?: string }).license ?? "NOASSERTION")
      : "NOASSERTION";
    return { npmPackage: npmPackage(arch), version: NODE_VERSION, license, integrity };
  }
  const manifest = execFileSync("tar", ["-xzOf", runtimeTarball(arch), "package/package.json"]).toString();
  const license = (JSON.parse(manifest) as { license?: string }).license ?? "NOASSERTION";
  return { npmPackage: npmPackage(arch), version: NODE_VERSION, license, integrity };
}

/** A bundled module: a program's own bundle, or one of its lazy modules (assets with a code cache, and a metafile). */
export type Piece = { name: string; raw: string; wrapped: string; metafile: string };
export type Bundle = Piece & { program: Program; metafile: string; lazy: Piece[] };

const esbuildOptions = (commit: string) => ({
  bundle: true,
  platform: "node" as const,
  format: "cjs" as const,
  target: "node26",
  minify: true,
  legalComments: "none" as const,
  logLevel: "warning" as const,
  absWorkingDir: root,
  define: {
    __BERTH_VERSION__: JSON.stringify(pkg.version),
    __BERTH_COMMIT__: JSON.stringify(commit),
    // yargs 18 is ESM and reads import.meta.url; in a CJS bundle it comes from __filename.
    "import.meta.url": "__import_meta_url",
  },
  banner: { js: "var __import_meta_url=require('url').pathToFileURL(__filename).href;" },
});

/**
 * The module a lazy module's dynamic import resolves to in its program's bundle: on first import
 * it compiles the lazy module's own asset with its code cache, as the launcher does a program.
 */
function lazyStub(name: string): string {
  return [
    `const sea = require("node:sea");`,
    "const raw = (k) => { try { return new Uint8Array(sea.getRawAsset(k)); } catch { return undefined; } };",
    `const source = raw(${JSON.stringify(sourceAsset(name))});`,
    `if (!source) throw new Error("this executable does not hold ${name} (a broken build)");`,
    `const cache = raw(${JSON.stringify(cacheAsset(name))});`,
    `const script = new (require("node:vm").Script)(new TextDecoder().decode(source), { filename: ${JSON.stringify(name)}, ...(cache ? { cachedData: cache } : {}) });`,
    "script.runInThisContext().call(module.exports, module.exports, require, module, __filename, __dirname);",
  ].join("\n");
}

/** Resolves each lazy module's dynamic import to its stub: the program's bundle holds none of its code. */
function lazyModules(lazy: NonNullable<Program["lazy"]>): Plugin {
  const byPath = new Map(lazy.map((l) => [join(root, l.module), l.name]));
  return {
    name: "berth-lazy-modules",
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const name = args.kind === "dynamic-import" ? byPath.get(resolve(args.resolveDir, args.path)) : undefined;
        return name ? { path: name, namespace: "berth-lazy" } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: "berth-lazy" }, (args) => ({ loader: "js", contents: lazyStub(args.path) }));
    },
  };
}

/** Each program bundled on its own (so neither holds the other's code), and the launcher. */
export async function bundleAll(dir: string, commit: string): Promise<{ bundles: Bundle[]; launcher: string }> {
  mkdirSync(dir, { recursive: true });
  const bundles: Bundle[] = [];
  const piece = async (name: string, entry: string, plugins: Plugin[]): Promise<Piece> => {
    const raw = join(dir, `${name}.cjs`);
    const r = await build({ ...esbuildOptions(commit), entryPoints: [entry], outfile: raw, metafile: true, plugins });
    const metafile = join(dir, `${name}.meta.json`);
    writeFileSync(metafile, JSON.stringify(r.metafile));
    const wrapped = join(dir, sourceAsset(name));
    writeFileSync(wrapped, wrapBundle(readFileSync(raw, "utf8")));
    return { name, raw, wrapped, metafile };
  };
  for (const p of PROGRAMS) {
    const lazy: Piece[] = [];
    for (const l of p.lazy ?? []) lazy.push(await piece(l.name, l.module, []));
    const main = await piece(p.name, p.entry, p.lazy ? [lazyModules(p.lazy)] : []);
    bundles.push({ ...main, program: p, lazy });
  }
  const launcher = join(dir, "launcher.cjs");
  await build({
    ...esbuildOptions(commit),
    banner: {},
    define: {},
    entryPoints: ["packaging/sea-main.ts"],
    outfile: launcher,
  });
  return { bundles, launcher };
}

/** `node --build-sea` on this machine's Node, for any architecture's base binary. */
function buildSea(config: object, out: string): void {
  atomically(out, (tmp) => {
    const file = `${tmp}.sea.json`;
    writeFileSync(file, JSON.stringify({ ...config, output: tmp }));
    try {
      execFileSync(process.execPath, ["--build-sea", file], { stdio: ["ignore", "ignore", "inherit"] });
    } finally {
      rmSync(file, { force: true });
    }
    chmodSync(tmp, 0o755); // a runtime never execs a half-written binary: renamed only when whole
  });
}

const SEA_OPTIONS = {
  disableExperimentalSEAWarning: true,
  // A runtime or the kubelet passes its whole environment on: NODE_OPTIONS must not reach us.
  execArgv: ["--no-warnings"],
  execArgvExtension: "none",
};

/** Every program's name for one file: hard links made through a temporary name and a rename. */
function linkNames(file: string, dir: string): void {
  for (const p of PROGRAMS) {
    const name = join(dir, p.name);
    if (name === file) continue;
    atomically(name, (tmp) => linkSync(file, tmp));
  }
}

export async function buildArch(arch: Arch, out: string, b: { bundles: Bundle[]; launcher: string }): Promise<void> {
  const base = seaBase(arch);
  const archDir = join(out, `linux-${arch}`);
  const cacheOut = join(out, "bundle", `linux-${arch}`);
  mkdirSync(cacheOut, { recursive: true });
  const [cmd = "", ...pre] = runner(arch, base);
  const pieces = b.bundles.flatMap((x): Piece[] => [x, ...x.lazy]);
  for (const x of pieces) {
    // stdout is the program's own --version line; a bare environment, as a runtime may give it.
    // (A lazy module only defines its exports when run: its cache holds its top level.)
    execFileSync(cmd, [...pre, join(here, "code-cache.ts"), x.name, x.wrapped, join(cacheOut, cacheAsset(x.name))], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    });
  }
  const assets: Record<string, string> = {};
  for (const x of pieces) {
    assets[sourceAsset(x.name)] = x.wrapped;
    assets[cacheAsset(x.name)] = join(cacheOut, cacheAsset(x.name));
  }
  const bin = join(archDir, "bin");
  const primary = join(bin, PRIMARY.name);
  buildSea(
    {
      main: b.launcher,
      executable: base,
      ...SEA_OPTIONS,
      // The launcher is a few hundred bytes; its cache would have to come from the target's V8 too.
      useCodeCache: arch === hostArch(),
      assets,
    },
    primary,
  );
  linkNames(primary, bin);

  const programs: Record<string, ReturnType<typeof bundledPackages>> = {};
  for (const x of b.bundles) {
    // meta/<name>.json for the program and for each of its lazy modules; the SBOM credits the
    // packages of both to the program, as its executable name ships them.
    programs[x.program.name] = [x, ...x.lazy].flatMap((piece) => {
      const meta = readFileSync(piece.metafile, "utf8");
      atomically(join(archDir, "meta", `${piece.name}.json`), (tmp) => writeFileSync(tmp, meta));
      return bundledPackages(JSON.parse(meta) as Metafile, root);
    });
  }
  const sbom = cycloneDx({
    root,
    version: pkg.version,
    arch,
    runtime: runtimeComponent(arch),
    programs,
    esbuildVersion,
  });
  atomically(join(archDir, "sbom.cdx.json"), (tmp) => writeFileSync(tmp, `${JSON.stringify(sbom, null, 2)}\n`));
  if (arch === hostArch()) linkNames(primary, join(out, "bin"));
}

/**
 * The earlier layout, one single executable per program with its bundle as the SEA main and
 * Node's own code cache for it: the baseline `npm run bench` measures the one-binary build against.
 */
export async function buildSeparate(dir: string): Promise<Record<string, string>> {
  const b = await bundleAll(join(dir, "bundle"), gitCommit());
  const out: Record<string, string> = {};
  for (const x of b.bundles) {
    const file = join(dir, "bin", x.program.name);
    // The lazy modules go in as assets without a cache (the stub compiles them without one).
    const assets = Object.fromEntries(x.lazy.map((l) => [sourceAsset(l.name), l.wrapped]));
    buildSea({ main: x.raw, executable: seaBase(hostArch()), ...SEA_OPTIONS, useCodeCache: true, assets }, file);
    out[x.program.name] = file;
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      arch: { type: "string", multiple: true },
      out: { type: "string", default: join(root, "dist") },
    },
  });
  try {
    const arches = values.arch?.length ? values.arch : [hostArch()];
    for (const a of arches) if (!ARCHES.includes(a as Arch)) throw new Error(`--arch: ${a} is not one of ${ARCHES}`);
    const out = resolve(values.out);
    const bundles = await bundleAll(join(out, "bundle"), gitCommit());
    for (const a of arches as Arch[]) {
      await buildArch(a, out, bundles);
      process.stdout.write(`built ${join(out, `linux-${a}`, "bin")}/{${PROGRAMS.map((p) => p.name).join(",")}}\n`);
    }
  } catch (e) {
    process.stderr.write(`build: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
