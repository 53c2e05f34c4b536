// npm run release: packs each architecture's build (packaging/build.ts) into what a node installs from.
//   dist/release/berth-<version>-linux-<arch>.tar.gz   bin/ (one executable under both program names,
//                                                      a hard link), install.sh, examples/, README.md,
//                                                      sbom.cdx.json, SHA256SUMS
//   dist/release/berth-<version>-linux-<arch>.cdx.json the same SBOM (CycloneDX), beside the tarball
//   dist/release/berth_<version>_<arch>.deb            when dpkg-deb is available (packaging/deb/build-deb.sh)
//   dist/release/SHA256SUMS                            over the artifacts above
// Usage: node packaging/release.ts [--out DIR] [--build-dir DIR ...] [--no-deb] [--compression-level 1-9]
// (build dirs default to dist/linux-amd64 and dist/linux-arm64; level 6 by default, 1 is ~3x
// faster for ~10% more bytes, what the tests use)
// The tarball is reproducible: sorted names, owner 0:0, fixed modes, mtime of the release commit
// (or SOURCE_DATE_EPOCH), gzip without a timestamp.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  linkSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { createGzip } from "node:zlib";
import { PRIMARY, PROGRAMS } from "./programs.ts";
import { ARCHES } from "./runtimes.ts";

const root = resolve(import.meta.dirname, "..");
const here = import.meta.dirname;

/** Kubernetes and Debian name architectures this way (amd64, arm64), and so do container images. */
const ELF_MACHINES: Record<number, string> = { 62: "amd64", 183: "arm64" };

/** The architecture a binary was built for, read from its ELF header (e_machine), not assumed from the host. */
export function elfArch(file: string): string {
  const fd = openSync(file, "r");
  try {
    const head = Buffer.alloc(20);
    readSync(fd, head, 0, 20, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF executable`);
    const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
    const arch = ELF_MACHINES[machine];
    if (!arch) throw new Error(`${file}: unsupported ELF machine 0x${machine.toString(16)}`);
    return arch;
  } finally {
    closeSync(fd);
  }
}

export function sha256File(file: string): string {
  const h = createHash("sha256");
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

/** `sha256sum` output for every file under dir except SHA256SUMS itself, paths relative to dir. */
function sha256sums(dir: string): string {
  return filesUnder(dir)
    .map((f) => relative(dir, f))
    .filter((f) => f !== "SHA256SUMS")
    .sort()
    .map((f) => `${sha256File(join(dir, f))}  ${f}\n`)
    .join("");
}

function sourceDateEpoch(): number {
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env && /^\d+$/.test(env)) return Number(env);
  try {
    return (
      Number(
        execFileSync("git", ["log", "-1", "--format=%ct"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] })
          .toString()
          .trim(),
      ) || 0
    );
  } catch {
    return 0;
  }
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && existsSync(join(d, cmd)));
}

async function tarGz(parent: string, top: string, out: string, mtime: number, level: number): Promise<void> {
  const tmp = `${out}.tmp`;
  const tar = spawn(
    "tar",
    [
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      `--mtime=@${mtime}`,
      "--format=gnu",
      "-C",
      parent,
      "-cf",
      "-",
      top,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise<number>((done) => tar.on("close", (code) => done(code ?? 1)));
  await pipeline(tar.stdout, createGzip({ level }), createWriteStream(tmp));
  const code = await exited;
  if (code !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`tar exited with ${code}`);
  }
  renameSync(tmp, out);
}

/** Debian versions sort "~" before anything: 1.0.0-rc.1 (semver pre-release) becomes 1.0.0~rc.1. */
export const debianVersion = (v: string): string => v.replace("-", "~");

export type ReleaseResult = { arch: string; tarball: string; sbom: string; deb?: string; dir: string };

/** The build's one executable: every program name must be that same file. */
function buildBinary(buildDir: string): string {
  const primary = join(buildDir, "bin", PRIMARY.name);
  for (const p of PROGRAMS) {
    const file = join(buildDir, "bin", p.name);
    if (!existsSync(file)) throw new Error(`${file} missing: run npm run build first`);
    if (statSync(file).ino !== statSync(primary).ino && sha256File(file) !== sha256File(primary))
      throw new Error(`${file} is not the same executable as ${primary}`);
  }
  if (!existsSync(join(buildDir, "sbom.cdx.json")))
    throw new Error(`${buildDir}/sbom.cdx.json missing: run npm run build first`);
  return primary;
}

async function releaseOne(opts: {
  out: string;
  buildDir: string;
  version: string;
  deb: boolean;
  level: number;
  epoch: number;
}): Promise<ReleaseResult> {
  const primary = buildBinary(opts.buildDir);
  const arch = elfArch(primary);
  const top = `berth-${opts.version}-linux-${arch}`;
  const stage = join(opts.out, `.stage-${process.pid}-${arch}`);
  rmSync(stage, { recursive: true, force: true });
  const dir = join(stage, top);
  try {
    mkdirSync(join(dir, "bin"), { recursive: true });
    const bin = join(dir, "bin", PRIMARY.name);
    copyFileSync(primary, bin);
    chmodSync(bin, 0o755);
    // tar stores the other names as hard links: the tarball holds the executable once.
    for (const p of PROGRAMS) if (p !== PRIMARY) linkSync(bin, join(dir, "bin", p.name));
    copyFileSync(join(here, "install.sh"), join(dir, "install.sh"));
    chmodSync(join(dir, "install.sh"), 0o755);
    for (const [from, to] of [
      [join(here, "README.md"), "README.md"],
      [join(opts.buildDir, "sbom.cdx.json"), "sbom.cdx.json"],
    ] as const) {
      copyFileSync(from, join(dir, to));
      chmodSync(join(dir, to), 0o644);
    }
    const examples = join(here, "examples");
    for (const f of filesUnder(examples)) {
      const to = join(dir, "examples", relative(examples, f));
      mkdirSync(resolve(to, ".."), { recursive: true });
      copyFileSync(f, to);
      chmodSync(to, 0o644);
    }
    for (const d of [stage, dir, ...filesUnder(dir).map((f) => resolve(f, ".."))]) chmodSync(d, 0o755);
    writeFileSync(join(dir, "SHA256SUMS"), sha256sums(dir), { mode: 0o644 });

    const tarball = join(opts.out, `${top}.tar.gz`);
    await tarGz(stage, top, tarball, opts.epoch, opts.level);
    const sbom = join(opts.out, `${top}.cdx.json`);
    copyFileSync(join(dir, "sbom.cdx.json"), sbom);
    const result: ReleaseResult = { arch, tarball, sbom, dir: top };

    if (opts.deb) {
      if (onPath("dpkg-deb")) {
        const deb = join(opts.out, `berth_${debianVersion(opts.version)}_${arch}.deb`);
        execFileSync(
          "bash",
          [
            join(here, "deb", "build-deb.sh"),
            "--source",
            dir,
            "--version",
            debianVersion(opts.version),
            "--arch",
            arch,
            "--level",
            String(opts.level),
            "--out",
            deb,
          ],
          {
            stdio: ["ignore", "ignore", "inherit"],
            env: { ...process.env, SOURCE_DATE_EPOCH: String(opts.epoch) }, // dpkg-deb clamps mtimes to it
          },
        );
        result.deb = deb;
      } else {
        process.stderr.write("release: dpkg-deb not found; no .deb built\n");
      }
    }
    return result;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

export async function release(opts: {
  out: string;
  buildDirs: string[];
  deb: boolean;
  level: number;
}): Promise<ReleaseResult[]> {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  mkdirSync(opts.out, { recursive: true });
  const epoch = sourceDateEpoch();
  const results: ReleaseResult[] = [];
  for (const buildDir of opts.buildDirs) {
    const r = await releaseOne({
      out: opts.out,
      buildDir,
      version: pkg.version,
      deb: opts.deb,
      level: opts.level,
      epoch,
    });
    if (results.some((x) => x.arch === r.arch))
      throw new Error(`two builds for ${r.arch}: ${opts.buildDirs.join(", ")}`);
    results.push(r);
  }
  const artifacts = readdirSync(opts.out)
    .filter((f) => f.endsWith(".tar.gz") || f.endsWith(".deb") || f.endsWith(".cdx.json"))
    .sort();
  writeFileSync(
    join(opts.out, "SHA256SUMS"),
    artifacts.map((f) => `${sha256File(join(opts.out, f))}  ${f}\n`).join(""),
  );
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: join(root, "dist", "release") },
      "build-dir": { type: "string", multiple: true },
      "no-deb": { type: "boolean", default: false },
      "compression-level": { type: "string", default: "6" },
    },
  });
  const level = Number(values["compression-level"]);
  try {
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new Error("--compression-level must be 1 to 9");
    const buildDirs = values["build-dir"]?.length
      ? values["build-dir"]
      : ARCHES.map((a) => join(root, "dist", `linux-${a}`));
    const results = await release({
      out: resolve(values.out),
      buildDirs: buildDirs.map((d) => resolve(d)),
      deb: !values["no-deb"],
      level,
    });
    for (const r of results)
      for (const f of [r.tarball, r.sbom, ...(r.deb ? [r.deb] : [])])
        process.stdout.write(`wrote ${relative(process.cwd(), f)}\n`);
  } catch (e) {
    process.stderr.write(`release: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
