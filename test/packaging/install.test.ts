// packaging/install.sh run from an unpacked release into a scratch root, as a new user would:
// with the machine's /bin/sh (dash here), and with nothing but busybox (sh and its applets), as
// the installer image runs it.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { basename, dirname, join, relative } from "node:path";
import {
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_PROVIDER_BIN_DIR,
  KUBELET_CONFIG_PATH,
  PRIMARY,
  KUBELET_DROPIN_PATH,
  PACKAGING,
  PROGRAM_NAMES,
  SHELL_ENV,
  releaseOnce,
  run,
  scratch,
  cleanScratch,
} from "./fixture.ts";
import { privateMountArgs, UNSHARE } from "../helpers/mount-ns.ts";
import { lstatTree } from "../helpers/tree.ts";

const test = suite("packaging: install.sh");
test.after.each(cleanScratch);

/** Where install.sh puts each program by default. */
const DEST: Record<string, string> = {
  "berth-ipam": join(DEFAULT_CNI_BIN_DIR, "berth-ipam"),
  "berth-credential-provider": join(DEFAULT_PROVIDER_BIN_DIR, "berth-credential-provider"),
};

async function install(args: string[], source?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const rel = await releaseOnce();
  const dir = source ?? rel.dir;
  return run("/bin/sh", [join(dir, "install.sh"), ...args], { env: SHELL_ENV });
}

const BUSYBOX = "/bin/busybox";

/** A directory holding busybox and a link per applet: a PATH with nothing else on it. */
function busyboxPath(): string {
  const dir = scratch("busybox");
  copyFileSync(BUSYBOX, join(dir, "busybox"));
  const list = spawnSync(BUSYBOX, ["--list"], { encoding: "utf8" }).stdout.split("\n");
  for (const applet of list) if (applet !== "" && applet !== "busybox") symlinkSync("busybox", join(dir, applet));
  return dir;
}

/** The node path of the one file (the first program); the other names link to it. */
const PRIMARY_PATH = join(DEFAULT_CNI_BIN_DIR, PRIMARY.name);

type Entry = { path: string; type: string; mode: string; ino: number; size: number; mtimeNs: bigint };

/** Every file and directory under root with what a change would alter (a write moves mtime, a rename the inode). */
function snapshot(root: string): Entry[] {
  return lstatTree(root).map(({ path: p, type, st }) => ({
    path: relative(root, p),
    type,
    mode: (Number(st.mode) & 0o7777).toString(8),
    ino: Number(st.ino),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
  }));
}

const sha256 = (f: string): string => createHash("sha256").update(readFileSync(f)).digest("hex");
const sameBytes = (a: string, b: string): boolean => readFileSync(a).equals(readFileSync(b));

test("install.sh (POSIX sh), build-deb.sh and the .deb's maintainer scripts pass shellcheck", async () => {
  const scripts = ["install.sh", "deb/build-deb.sh", "deb/postinst", "deb/prerm"].map((f) => join(PACKAGING, f));
  const r = await run("/usr/bin/shellcheck", scripts, {
    env: SHELL_ENV,
  }).catch((e: Error) => ({
    code: -1,
    stdout: "",
    stderr: `shellcheck not installed (.ci/apt-packages lists it): ${e.message}`,
  }));
  assert.is(r.code, 0, r.stdout + r.stderr);
});

test("installs the executable once and links the other name to it (one file system: a hard link)", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  const r = await install(["--root", root]);
  assert.is(r.code, 0, r.stderr);
  const files = snapshot(root).filter((e) => e.type === "file");
  assert.equal(
    files.map((f) => `/${f.path}`),
    PROGRAM_NAMES.map((p) => DEST[p]!).sort(),
    "exactly the programs, nothing else (no temp file left)",
  );
  assert.is(new Set(files.map((f) => f.ino)).size, 1, "one inode under both names");
  for (const p of PROGRAM_NAMES) {
    const dest = join(root, DEST[p]!);
    assert.is((statSync(dest).mode & 0o7777).toString(8), "755", p);
    assert.ok(sameBytes(dest, join(rel.dir, "bin", p)), `${p} differs from the release's`);
  }
  assert.match(r.stdout, `installed ${join(root, PRIMARY_PATH)}\n`);
  assert.match(
    r.stdout,
    `installed ${join(root, DEST["berth-credential-provider"]!)} (hard link to ${PRIMARY_PATH})\n`,
  );
  for (const p of PROGRAM_NAMES) {
    const v = await run("/usr/bin/env", ["-i", join(root, DEST[p]!), "--version"]);
    assert.is(v.code, 0, v.stderr);
    assert.ok(v.stdout.startsWith(`${p} `), `${p} runs as itself: ${v.stdout}`);
  }
});

test("install.sh with busybox alone (its sh and applets the only commands on PATH), as in the installer image", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  const path = busyboxPath();
  const bb = (...args: string[]) =>
    run(join(path, "sh"), [join(rel.dir, "install.sh"), "--root", root, "--kubelet-config", ...args], {
      env: { PATH: path },
    });
  const r = await bb();
  assert.is(r.code, 0, r.stderr);
  const files = snapshot(root).filter((e) => e.type === "file");
  assert.is(files.length, PROGRAM_NAMES.length + 2);
  assert.is(new Set(files.filter((f) => f.mode === "755").map((f) => f.ino)).size, 1);
  const before = snapshot(root);
  const again = await bb();
  assert.is(again.code, 0, again.stderr);
  assert.equal(snapshot(root), before, "busybox's second run changes nothing");
  const un = await bb("--uninstall");
  assert.is(un.code, 0, un.stderr);
  assert.equal(
    snapshot(root).filter((e) => e.type !== "dir"),
    [],
  );
});

test("a second run changes nothing: same inodes, mtimes, modes and contents", async () => {
  const root = scratch("root");
  assert.is((await install(["--root", root, "--kubelet-config"])).code, 0);
  const before = snapshot(root);
  const again = await install(["--root", root, "--kubelet-config"]);
  assert.is(again.code, 0, again.stderr);
  assert.equal(snapshot(root), before);
  assert.is(
    again.stdout.split("\n").filter((l) => l.startsWith("unchanged ")).length,
    PROGRAM_NAMES.length + 2,
    again.stdout,
  );
  assert.not.match(again.stdout, /installed|replaced|systemctl/);
});

test("a release missing one program is refused as a whole unless --only names the other", async () => {
  const rel = await releaseOnce();
  const partial = join(scratch("partial"), rel.top);
  cpSync(rel.dir, partial, { recursive: true });
  rmSync(join(partial, "bin", "berth-credential-provider"));
  const root = scratch("root");
  const r = await install(["--root", root], partial);
  assert.is(r.code, 1);
  assert.match(r.stderr, "bin/berth-credential-provider not found");
  assert.equal(readdirSync(root), [], "nothing installed, not even berth-ipam");
  const only = await install(["--root", root, "--only", "ipam"], partial);
  assert.is(only.code, 0, only.stderr);
  assert.ok(existsSync(join(root, DEST["berth-ipam"]!)));
});

test("--kubelet-config installs the kubelet config and drop-in 0644, unchanged from the examples", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  const r = await install(["--root", root, "--only", "ipam", "--kubelet-config"]);
  assert.is(r.code, 0, r.stderr);
  for (const [dest, example] of [
    [KUBELET_CONFIG_PATH, "examples/kubelet/image-credential-provider-config.yaml"],
    [KUBELET_DROPIN_PATH, "examples/kubelet/20-berth-credential-provider.conf"],
  ] as const) {
    assert.is((statSync(join(root, dest)).mode & 0o7777).toString(8), "644", dest);
    assert.is(readFileSync(join(root, dest), "utf8"), readFileSync(join(rel.dir, example), "utf8"));
  }
  assert.match(r.stdout, "systemctl daemon-reload && systemctl restart kubelet");
  const other = await install([
    "--root",
    root,
    "--only",
    "ipam",
    "--kubelet-config",
    "--credential-provider-bin-dir",
    "/opt/elsewhere",
  ]);
  assert.is(other.code, 1, "a drop-in naming the default dir must not go with another bin dir");
  assert.match(other.stderr, "--kubelet-config installs a drop-in for");
});

test("refuses a corrupted binary and leaves the installed one untouched", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  assert.is((await install(["--root", root, "--only", "ipam"])).code, 0);
  const before = snapshot(root);
  const bad = join(scratch("corrupt"), rel.top);
  cpSync(rel.dir, bad, { recursive: true });
  appendFileSync(join(bad, "bin", "berth-ipam"), "x");
  const r = await install(["--root", root, "--only", "ipam"], bad);
  assert.is(r.code, 1);
  assert.match(r.stderr, "checksum mismatch for bin/berth-ipam");
  assert.equal(snapshot(root), before, "the old binary stays, no temp file left");

  const fresh = scratch("root");
  assert.is((await install(["--root", fresh, "--only", "ipam"], bad)).code, 1);
  assert.equal(readdirSync(fresh), [], "nothing created on a fresh root");
});

test("refuses a release whose SHA256SUMS lacks the binary", async () => {
  const rel = await releaseOnce();
  const bad = join(scratch("nosum"), rel.top);
  cpSync(rel.dir, bad, { recursive: true });
  const sums = readFileSync(join(bad, "SHA256SUMS"), "utf8")
    .split("\n")
    .filter((l) => !l.endsWith(" bin/berth-ipam"));
  writeFileSync(join(bad, "SHA256SUMS"), sums.join("\n"));
  const root = scratch("root");
  const r = await install(["--root", root, "--only", "ipam"], bad);
  assert.is(r.code, 1);
  assert.match(r.stderr, "SHA256SUMS has no entry for bin/berth-ipam");
  assert.equal(readdirSync(root), []);
});

test("refuses a binary that does not run here (exec check before the rename)", async () => {
  const rel = await releaseOnce();
  const bad = join(scratch("norun"), rel.top);
  cpSync(rel.dir, bad, { recursive: true });
  // A valid checksum over a file that is not an executable for this machine.
  writeFileSync(join(bad, "bin", "berth-ipam"), "\x7fELF not really\n");
  const lines = readFileSync(join(bad, "SHA256SUMS"), "utf8")
    .split("\n")
    .map((l) => (l.endsWith("  bin/berth-ipam") ? `${sha256(join(bad, "bin", "berth-ipam"))}  bin/berth-ipam` : l));
  writeFileSync(join(bad, "SHA256SUMS"), lines.join("\n"));
  const root = scratch("root");
  const r = await install(["--root", root, "--only", "ipam"], bad);
  assert.is(r.code, 1);
  assert.match(r.stderr, "bin/berth-ipam does not run on this machine");
  assert.equal(readdirSync(join(root, "opt/cni/bin")), [], "no temp file left behind");
  const skipped = await install(["--root", root, "--only", "ipam", "--skip-exec-check"], bad);
  assert.is(skipped.code, 0, "--skip-exec-check installs it anyway (another architecture into --root)");
});

test("--dry-run reports and changes nothing, on a fresh root and on an installed one", async () => {
  const root = scratch("root");
  const dry = await install(["--root", root, "--kubelet-config", "--dry-run"]);
  assert.is(dry.code, 0, dry.stderr);
  assert.equal(readdirSync(root), []);
  for (const p of PROGRAM_NAMES) assert.match(dry.stdout, `would install ${join(root, DEST[p]!)}`);
  assert.match(dry.stdout, `would create directory ${join(root, DEFAULT_CNI_BIN_DIR)}`);

  assert.is((await install(["--root", root, "--only", "ipam"])).code, 0);
  copyFileSync("/bin/true", join(root, DEST["berth-ipam"]!)); // an older version installed
  const before = snapshot(root);
  const dry2 = await install(["--root", root, "--only", "ipam", "--dry-run"]);
  assert.is(dry2.code, 0, dry2.stderr);
  assert.match(dry2.stdout, `would replace ${join(root, DEST["berth-ipam"]!)}`);
  assert.equal(snapshot(root), before);
  const dry3 = await install(["--root", root, "--only", "ipam", "--uninstall", "--dry-run"]);
  assert.match(dry3.stdout, `would remove ${join(root, DEST["berth-ipam"]!)}`);
  assert.equal(snapshot(root), before);
});

test("replaces an older binary by rename (new inode), never in place", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  assert.is((await install(["--root", root, "--only", "ipam"])).code, 0);
  const dest = join(root, DEST["berth-ipam"]!);
  copyFileSync("/bin/true", dest);
  const oldIno = statSync(dest).ino;
  const r = await install(["--root", root, "--only", "ipam"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `replaced ${dest}`);
  assert.is.not(statSync(dest).ino, oldIno, "a process exec'ing the old file keeps it whole");
  assert.ok(sameBytes(dest, join(rel.dir, "bin", "berth-ipam")));
});

test("--uninstall removes the programs and unmodified configs, keeps edited ones and the shared dirs", async () => {
  const root = scratch("root");
  assert.is((await install(["--root", root, "--kubelet-config"])).code, 0);
  appendFileSync(join(root, KUBELET_CONFIG_PATH), "# edited by the admin\n");
  const r = await install(["--root", root, "--kubelet-config", "--uninstall"]);
  assert.is(r.code, 0, r.stderr);
  const files = snapshot(root)
    .filter((e) => e.type === "file")
    .map((e) => `/${e.path}`);
  assert.equal(files, [KUBELET_CONFIG_PATH]);
  assert.match(r.stdout, `kept ${join(root, KUBELET_CONFIG_PATH)} (modified)`);
  assert.ok(existsSync(join(root, DEFAULT_CNI_BIN_DIR)), "/opt/cni/bin belongs to every plugin: kept");
  const again = await install(["--root", root, "--uninstall"]);
  assert.is(again.code, 0);
  for (const p of PROGRAM_NAMES) assert.match(again.stdout, `absent ${join(root, DEST[p]!)}`);
});

test("--root may be relative to the current directory, as a user types it", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  const r = await run("/bin/sh", [join(rel.dir, "install.sh"), "--root", basename(root), "--only", "ipam"], {
    env: SHELL_ENV,
    cwd: dirname(root),
  });
  assert.is(r.code, 0, r.stderr);
  assert.ok(existsSync(join(root, DEST["berth-ipam"]!)));
});

test("rejects unknown options and relative directories with a usage message", async () => {
  const root = scratch("root");
  for (const args of [["--bogus"], ["--cni-bin-dir", "opt/cni/bin"], ["--only", "kubelet"], ["--root"]]) {
    const r = await install(["--root", root, ...args]);
    assert.is(r.code, 1, args.join(" "));
    assert.match(r.stderr, /^install\.sh: /m, args.join(" "));
  }
  assert.equal(readdirSync(root), []);
  const help = await install(["--help"]);
  assert.is(help.code, 0);
  assert.match(help.stdout, "--cni-bin-dir DIR");
});

const PROVIDER_DEST = DEST["berth-credential-provider"]!;
const canMount = process.getuid?.() === 0 && existsSync(UNSHARE);

/**
 * install.sh in a private mount namespace where the credential provider's directory is a bind
 * mount of `mounted`: another mount, across which link(2) fails with EXDEV as it does between a
 * node's file systems or a container's two hostPath volumes. The namespace ends with the command.
 */
async function installAcrossMounts(root: string, mounted: string, args: string[] = []) {
  const rel = await releaseOnce();
  const target = join(root, DEFAULT_PROVIDER_BIN_DIR);
  mkdirSync(target, { recursive: true });
  return run(
    UNSHARE,
    privateMountArgs('mount --bind "$1" "$2" && shift 2 && exec /bin/sh "$@"', [
      mounted,
      target,
      join(rel.dir, "install.sh"),
      "--root",
      root,
      ...args,
    ]),
    { env: SHELL_ENV },
  );
}

(canMount ? test : test.skip)(
  "across file systems the other name is a symbolic link to the file's node path; a second run changes nothing",
  async () => {
    const root = scratch("root");
    const mounted = scratch("other-fs");
    const r = await installAcrossMounts(root, mounted);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, `(symbolic link to ${PRIMARY_PATH})`);
    const link = join(mounted, PRIMARY.name === "berth-ipam" ? "berth-credential-provider" : "berth-ipam");
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.is(readlinkSync(link), PRIMARY_PATH, "the node's path, not the --root one");
    assert.ok(statSync(join(root, PRIMARY_PATH)).isFile());
    const before = [...snapshot(root), ...snapshot(mounted)];
    const again = await installAcrossMounts(root, mounted);
    assert.is(again.code, 0, again.stderr);
    assert.not.match(again.stdout, /installed|replaced/);
    assert.equal([...snapshot(root), ...snapshot(mounted)], before);
    const un = await installAcrossMounts(root, mounted, ["--uninstall"]);
    assert.is(un.code, 0, un.stderr);
    assert.equal(readdirSync(mounted), [], "the link is removed with the file");
    assert.not.ok(existsSync(join(root, PRIMARY_PATH)));
  },
);

test("an upgrade renames the new file into place and re-links the other name to it", async () => {
  const rel = await releaseOnce();
  const root = scratch("root");
  assert.is((await install(["--root", root])).code, 0);
  // An older version: written in place, so both hard-linked names hold it.
  copyFileSync("/bin/true", join(root, PRIMARY_PATH));
  const oldIno = statSync(join(root, PRIMARY_PATH)).ino;
  assert.is(statSync(join(root, PROVIDER_DEST)).ino, oldIno);
  const r = await install(["--root", root]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `replaced ${join(root, PRIMARY_PATH)}\n`);
  assert.match(r.stdout, `replaced ${join(root, PROVIDER_DEST)} (hard link to ${PRIMARY_PATH})`);
  const ino = statSync(join(root, PRIMARY_PATH)).ino;
  assert.is.not(ino, oldIno);
  assert.is(statSync(join(root, PROVIDER_DEST)).ino, ino);
  assert.ok(sameBytes(join(root, PROVIDER_DEST), join(rel.dir, "bin", "berth-credential-provider")));
});

test("two separate files from an earlier release become one file and a link", async () => {
  const root = scratch("root");
  for (const p of PROGRAM_NAMES) {
    mkdirSync(dirname(join(root, DEST[p]!)), { recursive: true });
    copyFileSync("/bin/true", join(root, DEST[p]!));
  }
  const r = await install(["--root", root]);
  assert.is(r.code, 0, r.stderr);
  const files = snapshot(root).filter((e) => e.type === "file");
  assert.is(files.length, 2);
  assert.is(new Set(files.map((f) => f.ino)).size, 1);
});

test("--uninstall removes exactly what install.sh installed: other plugins, configs and links stay as they were", async () => {
  const root = scratch("root");
  // A node with other plugins and files in the same directories, installed before berth.
  for (const [f, text] of [
    [join(DEFAULT_CNI_BIN_DIR, "host-local"), "#!/bin/sh\n"],
    [join(DEFAULT_PROVIDER_BIN_DIR, "ecr-credential-provider"), "#!/bin/sh\n"],
    ["/etc/kubernetes/kubelet.conf", "apiVersion: v1\n"],
  ] as const) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    writeFileSync(join(root, f), text, { mode: 0o755 });
  }
  symlinkSync("host-local", join(root, DEFAULT_CNI_BIN_DIR, "static"));
  const before = snapshot(root);
  assert.is((await install(["--root", root, "--kubelet-config"])).code, 0);
  const r = await install(["--root", root, "--kubelet-config", "--uninstall"]);
  assert.is(r.code, 0, r.stderr);
  const after = snapshot(root);
  const key = (e: Entry) => e.path;
  const created = after.filter((e) => !before.some((b) => key(b) === key(e)));
  assert.equal(
    created.filter((e) => e.type !== "dir"),
    [],
    "nothing but the directories install.sh made is left",
  );
  for (const b of before.filter((e) => e.type !== "dir")) {
    assert.equal(
      after.find((e) => key(e) === key(b)),
      b,
      `${b.path} untouched`,
    );
  }
  assert.is(r.stdout.split("\n").filter((l) => l.startsWith("removed ")).length, PROGRAM_NAMES.length + 2);
});

test("--uninstall keeps a symbolic link under a program's name that points elsewhere", async () => {
  const root = scratch("root");
  assert.is((await install(["--root", root, "--only", "ipam"])).code, 0);
  mkdirSync(join(root, DEFAULT_PROVIDER_BIN_DIR), { recursive: true });
  symlinkSync("/usr/bin/ecr-credential-provider", join(root, PROVIDER_DEST));
  const r = await install(["--root", root, "--uninstall"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `kept ${join(root, PROVIDER_DEST)} (a link to /usr/bin/ecr-credential-provider`);
  assert.is(readlinkSync(join(root, PROVIDER_DEST)), "/usr/bin/ecr-credential-provider");
  assert.not.ok(existsSync(join(root, PRIMARY_PATH)));
});

test("--uninstall --only ipam refuses, changing nothing, while the other name is a symbolic link to it", async () => {
  const root = scratch("root");
  assert.is((await install(["--root", root, "--only", "ipam"])).code, 0);
  mkdirSync(join(root, DEFAULT_PROVIDER_BIN_DIR), { recursive: true });
  symlinkSync(PRIMARY_PATH, join(root, PROVIDER_DEST));
  const before = snapshot(root);
  const r = await install(["--root", root, "--uninstall", "--only", "ipam"]);
  assert.is(r.code, 1);
  assert.match(r.stderr, `is a symbolic link to ${PRIMARY_PATH}: uninstall both`);
  assert.equal(snapshot(root), before);
  // Installing the credential provider on its own turns its name into a file; then ipam can go.
  assert.is((await install(["--root", root, "--only", "credential-provider"])).code, 0);
  assert.not.ok(lstatSync(join(root, PROVIDER_DEST)).isSymbolicLink());
  assert.is((await install(["--root", root, "--uninstall", "--only", "ipam"])).code, 0);
  const v = await run("/usr/bin/env", ["-i", join(root, PROVIDER_DEST), "--version"]);
  assert.is(v.code, 0, v.stderr);
});

test.run();
