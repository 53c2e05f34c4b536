// Shared by the packaging suites (one process per stage): the built binaries, one release built
// with packaging/release.ts into a scratch directory, and small process helpers.
import { execFile, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN_DIR, ROOT } from "../helpers/exec.ts";
import { PROGRAMS } from "../../packaging/programs.ts";

export { ROOT, BIN_DIR };
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
 * install roots hold copies of two 112 MiB binaries), or with `keep` when the stage's process exits.
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

export type Release = {
  out: string;
  tarball: string;
  deb: string;
  top: string;
  /** The tarball unpacked: <unpacked>/<top>/install.sh … */
  unpacked: string;
  dir: string;
  arch: string;
  /** The binaries the release was made from. */
  binDir: string;
};

let snapshotDir: string | undefined;

/**
 * dist/bin copied once per stage: what every suite compares and runs, so a build running beside
 * the tests (a shared work tree) cannot swap one binary between two checks.
 */
export function binSnapshot(): string {
  if (!snapshotDir) {
    const dir = scratch("bin", { keep: true });
    for (const p of PROGRAM_NAMES) copyFileSync(builtBinary(p), join(dir, p));
    snapshotDir = dir;
  }
  return snapshotDir;
}

/** A program from the stage's snapshot. */
export const binary = (name: string): string => join(binSnapshot(), name);

let releasing: Promise<Release> | undefined;

/** `node packaging/release.ts` into a scratch directory, once per stage, and the tarball unpacked. */
export function releaseOnce(): Promise<Release> {
  releasing ??= (async () => {
    const binDir = binSnapshot();
    const out = scratch("release", { keep: true });
    const r = await run(
      process.execPath,
      [join(PACKAGING, "release.ts"), "--out", out, "--bin-dir", binDir, "--compression-level", "1"],
      {
        env: RELEASE_ENV,
      },
    );
    if (r.code !== 0) throw new Error(`release.ts failed (${r.code}): ${r.stderr}`);
    const arch = { x64: "amd64", arm64: "arm64" }[process.arch as "x64" | "arm64"];
    if (!arch) throw new Error(`unsupported test architecture ${process.arch}`);
    const top = `berth-${VERSION}-linux-${arch}`;
    const tarball = join(out, `${top}.tar.gz`);
    const unpacked = scratch("unpacked", { keep: true });
    await sh("tar", ["-xzf", tarball, "-C", unpacked]);
    return {
      out,
      tarball,
      deb: join(out, `berth_${VERSION.replace("-", "~")}_${arch}.deb`),
      top,
      unpacked,
      dir: join(unpacked, top),
      arch,
      binDir,
    };
  })();
  return releasing;
}
