// Shared by the packaging suites (one process per stage): the built executable (this machine's
// architecture from npm run build, arm64 built here into a scratch directory), one release of
// both architectures built with packaging/release.ts into a scratch directory, and small process
// helpers.
import { execFile, spawn } from "node:child_process";
import { cpSync, copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN_DIR, ROOT } from "../helpers/exec.ts";
import { PRIMARY, PROGRAMS } from "../../packaging/programs.ts";
import { type Arch, hostArch, runner } from "../../packaging/runtimes.ts";

export { ROOT, BIN_DIR, PRIMARY };
export const HOST_ARCH: Arch = hostArch();
/** The architecture built on this machine and run under qemu-user: the other of amd64 and arm64. */
export const CROSS_ARCH: Arch = HOST_ARCH === "amd64" ? "arm64" : "amd64";
export const PACKAGING = join(ROOT, "packaging");
export const EXAMPLES = join(PACKAGING, "examples");
export const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
export const DEFAULT_CNI_BIN_DIR = "/opt/cni/bin";
export const DEFAULT_PROVIDER_BIN_DIR = "/usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec";
export const KUBELET_CONFIG_PATH = "/etc/kubernetes/image-credential-provider-config.yaml";
export const KUBELET_DROPIN_PATH = "/etc/systemd/system/kubelet.service.d/20-berth-credential-provider.conf";

/** Every program of a release (packaging/programs.ts): each must be built, and the release carries both. */
export const PROGRAM_NAMES: string[] = PROGRAMS.map((p) => p.name);

export function builtBinary(name: string): string {
  const f = join(BIN_DIR, name);
  if (!existsSync(f)) throw new Error(`${f} is not built: run npm run build (npm test does)`);
  return f;
}

const scratchRoot = join(tmpdir(), `berth-packaging-${process.pid}`);
process.on("exit", () => rmSync(scratchRoot, { recursive: true, force: true }));

const perTest: string[] = [];

/**
 * A fresh directory. Removed after the current test by cleanScratch() (each suite's after.each:
 * install roots hold copies of a 112 MiB binary), or with `keep` when the stage's process exits.
 */
export function scratch(label: string, opts: { keep?: boolean } = {}): string {
  mkdirSync(scratchRoot, { recursive: true });
  const dir = mkdtempSync(join(scratchRoot, `${label}-`));
  if (!opts.keep) perTest.push(dir);
  return dir;
}

export function cleanScratch(): void {
  for (const d of perTest.splice(0)) rmSync(d, { recursive: true, force: true });
}

export type Run = { code: number; stdout: string; stderr: string };

/** Runs a command with exactly the environment given (none unless passed). */
export function run(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { env: opts.env ?? {}, cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("error", fail);
    child.on("close", (code) =>
      done({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    child.stdin.on("error", () => {});
    child.stdin.end(opts.stdin ?? "");
  });
}

export const SHELL_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", TZ: "UTC" };

/** Runs a command that must succeed; its stdout. */
export function sh(file: string, args: string[], cwd?: string): Promise<string> {
  return new Promise((done, fail) => {
    execFile(file, args, { cwd, env: SHELL_ENV, maxBuffer: 64 * 1024 * 1024 }, (e, stdout, stderr) => {
      if (e) fail(new Error(`${file} ${args.join(" ")}: ${e.message}\n${stderr}`));
      else done(stdout);
    });
  });
}

/** A fixed SOURCE_DATE_EPOCH: two releases made seconds apart must not differ by a commit made between them. */
export const RELEASE_ENV = { ...SHELL_ENV, SOURCE_DATE_EPOCH: "1764201600" };

/** What packaging/build.ts writes for one architecture: bin/ (one file, every program name), sbom.cdx.json, meta/. */
export type Build = { arch: Arch; dir: string; bin: string };

let hostBuild: Build | undefined;

/**
 * dist/linux-<arch> of npm run build copied once per stage: what every suite compares and runs,
 * so a build running beside the tests (a shared work tree) cannot swap one binary between two
 * checks. The program names stay one file (hard links), as the build made them.
 */
export function buildSnapshot(): Build {
  if (!hostBuild) {
    const from = join(ROOT, "dist", `linux-${HOST_ARCH}`);
    const dir = scratch(`build-${HOST_ARCH}`, { keep: true });
    mkdirSync(join(dir, "bin"));
    const primary = join(dir, "bin", PRIMARY.name);
    copyFileSync(builtBinary(PRIMARY.name), primary);
    for (const p of PROGRAMS) if (p !== PRIMARY) linkSync(primary, join(dir, "bin", p.name));
    for (const extra of ["sbom.cdx.json", "meta"]) {
      if (!existsSync(join(from, extra))) throw new Error(`${join(from, extra)} missing: run npm run build`);
      cpSync(join(from, extra), join(dir, extra), { recursive: true });
    }
    hostBuild = { arch: HOST_ARCH, dir, bin: join(dir, "bin") };
  }
  return hostBuild;
}

/** The stage's snapshot of the built programs (see buildSnapshot). */
export const binSnapshot = (): string => buildSnapshot().bin;

/** A program from the stage's snapshot. */
export const binary = (name: string): string => join(binSnapshot(), name);

let crossBuilding: Promise<Build> | undefined;

/** `node packaging/build.ts --arch <the other architecture>` into a scratch directory, once per stage. */
export function crossBuild(): Promise<Build> {
  crossBuilding ??= (async () => {
    const out = scratch(`build-${CROSS_ARCH}`, { keep: true });
    const r = await run(process.execPath, [join(PACKAGING, "build.ts"), "--arch", CROSS_ARCH, "--out", out], {
      env: { PATH: process.env.PATH ?? SHELL_ENV.PATH, HOME: process.env.HOME ?? "/root" },
    });
    if (r.code !== 0) throw new Error(`build.ts --arch ${CROSS_ARCH} failed (${r.code}): ${r.stderr}`);
    const dir = join(out, `linux-${CROSS_ARCH}`);
    return { arch: CROSS_ARCH, dir, bin: join(dir, "bin") };
  })();
  return crossBuilding;
}

/** argv to run a binary of arch here: itself, or under qemu-user with the cross sysroot. */
export const runAs = (arch: Arch, file: string): string[] => runner(arch, file);

export type Release = {
  out: string;
  tarball: string;
  deb: string;
  /** The SBOM beside the tarball. */
  sbom: string;
  top: string;
  /** The tarball unpacked: <unpacked>/<top>/install.sh … */
  unpacked: string;
  dir: string;
  arch: Arch;
  /** The build the release was made from. */
  build: Build;
  /** Its bin/ directory. */
  binDir: string;
};

export type Releases = { out: string; host: Release; cross: Release };

let releasing: Promise<Releases> | undefined;

/** `node packaging/release.ts` of both architectures into a scratch directory, once per stage, each tarball unpacked. */
export function releasesOnce(): Promise<Releases> {
  releasing ??= (async () => {
    const builds = [buildSnapshot(), await crossBuild()];
    const out = scratch("release", { keep: true });
    const r = await run(
      process.execPath,
      [
        join(PACKAGING, "release.ts"),
        "--out",
        out,
        ...builds.flatMap((b) => ["--build-dir", b.dir]),
        "--compression-level",
        "1",
      ],
      { env: RELEASE_ENV },
    );
    if (r.code !== 0) throw new Error(`release.ts failed (${r.code}): ${r.stderr}`);
    const one = async (build: Build): Promise<Release> => {
      const top = `berth-${VERSION}-linux-${build.arch}`;
      const tarball = join(out, `${top}.tar.gz`);
      const unpacked = scratch(`unpacked-${build.arch}`, { keep: true });
      await sh("tar", ["-xzf", tarball, "-C", unpacked]);
      return {
        out,
        tarball,
        deb: join(out, `berth_${VERSION.replace("-", "~")}_${build.arch}.deb`),
        sbom: join(out, `${top}.cdx.json`),
        top,
        unpacked,
        dir: join(unpacked, top),
        arch: build.arch,
        build,
        binDir: build.bin,
      };
    };
    return { out, host: await one(builds[0] as Build), cross: await one(builds[1] as Build) };
  })();
  return releasing;
}

/** This machine's architecture's release (see releasesOnce). */
export const releaseOnce = async (): Promise<Release> => (await releasesOnce()).host;
