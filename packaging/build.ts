// npm run build: bundle each program with esbuild into one CommonJS file, then make it a Node
// single executable application (SEA) on the pinned Node, stripped before injection
// (../shared/reference/packaging.md: stripping after injection breaks the binary).
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { PROGRAMS, type Program } from "./programs.ts";

const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };

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

/** The pinned Node binary (the `node` devDependency), stripped once and kept beside the build. */
function seaBase(): string {
  const node = process.execPath;
  const base = join(dist, "sea-base", `node-${process.version}`);
  if (!existsSync(base)) {
    mkdirSync(dirname(base), { recursive: true });
    const tmp = `${base}.tmp`;
    copyFileSync(node, tmp);
    try {
      execFileSync("strip", [tmp], { stdio: "inherit" });
    } catch {
      process.stderr.write("build: strip not found; using the unstripped Node (larger binary)\n");
    }
    renameSync(tmp, base);
  }
  return base;
}

async function buildOne(p: Program, commit: string): Promise<void> {
  const bundle = join(dist, "bundle", `${p.name}.cjs`);
  await build({
    entryPoints: [join(root, p.entry)],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node26",
    minify: true,
    legalComments: "none",
    logLevel: "warning",
    define: {
      __BERTH_VERSION__: JSON.stringify(pkg.version),
      __BERTH_COMMIT__: JSON.stringify(commit),
      // yargs 18 is ESM and reads import.meta.url; in a CJS bundle it comes from __filename.
      "import.meta.url": "__import_meta_url",
    },
    banner: { js: "var __import_meta_url=require('url').pathToFileURL(__filename).href;" },
  });
  const out = join(dist, "bin", p.name);
  const tmpOut = `${out}.tmp`;
  const config = join(dist, "bundle", `${p.name}.sea.json`);
  writeFileSync(
    config,
    JSON.stringify({
      main: bundle,
      executable: seaBase(),
      output: tmpOut,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      // A runtime or the kubelet passes its whole environment on: NODE_OPTIONS must not reach us.
      execArgv: ["--no-warnings"],
      execArgvExtension: "none",
    }),
  );
  mkdirSync(dirname(out), { recursive: true });
  rmSync(tmpOut, { force: true });
  execFileSync(process.execPath, ["--build-sea", config], { stdio: ["ignore", "ignore", "inherit"] });
  chmodSync(tmpOut, 0o755);
  renameSync(tmpOut, out); // a runtime never execs a half-written binary
}

const only = process.argv.slice(2);
const commit = gitCommit();
for (const p of PROGRAMS) {
  if (only.length && !only.includes(p.name)) continue;
  if (!existsSync(join(root, p.entry))) continue; // a program not written yet
  await buildOne(p, commit);
  process.stdout.write(`built dist/bin/${p.name}\n`);
}
