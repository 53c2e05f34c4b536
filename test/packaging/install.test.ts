// packaging/install.sh run from an unpacked release into a scratch root, as a new user would.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join, relative } from "node:path";
import {
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_PROVIDER_BIN_DIR,
  KUBELET_CONFIG_PATH,
  KUBELET_DROPIN_PATH,
  PACKAGING,
  PROGRAM_NAMES,
  SHELL_ENV,
  releaseOnce,
  run,
  scratch,
  cleanScratch,
} from "./fixture.ts";

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
  return run("/bin/bash", [join(dir, "install.sh"), ...args], { env: SHELL_ENV });
}

type Entry = { path: string; type: string; mode: string; ino: number; size: number; mtimeNs: bigint };

/** Every file and directory under root with what a change would alter (a write moves mtime, a rename the inode). */
function snapshot(root: string): Entry[] {
  const out: Entry[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p, { bigint: true });
      const type = st.isDirectory() ? "dir" : st.isSymbolicLink() ? "link" : "file";
      out.push({
        path: relative(root, p),
        type,
        mode: (Number(st.mode) & 0o7777).toString(8),
        ino: Number(st.ino),
        size: Number(st.size),
        mtimeNs: st.mtimeNs,
      });
      if (type === "dir") walk(p);
    }
  };
  walk(root);
  return out;
}

const sha256 = (f: string): string => createHash("sha256").update(readFileSync(f)).digest("hex");
const sameBytes = (a: string, b: string): boolean => readFileSync(a).equals(readFileSync(b));

test("the release's install.sh and build-deb.sh pass shellcheck", async () => {
  const r = await run("/usr/bin/shellcheck", [join(PACKAGING, "install.sh"), join(PACKAGING, "deb", "build-deb.sh")], {
    env: SHELL_ENV,
  }).catch((e: Error) => ({
    code: -1,
    stdout: "",
    stderr: `shellcheck not installed (.ci/apt-packages lists it): ${e.message}`,
  }));
  assert.is(r.code, 0, r.stdout + r.stderr);
});

test("installs every program where it belongs, mode 0755, byte-identical to the release", async () => {
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
  for (const p of PROGRAM_NAMES) {
    const dest = join(root, DEST[p]!);
    assert.is((statSync(dest).mode & 0o7777).toString(8), "755", p);
    assert.ok(sameBytes(dest, join(rel.dir, "bin", p)), `${p} differs from the release's`);
    assert.match(r.stdout, `installed ${dest}`);
  }
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
  const r = await run("/bin/bash", [join(rel.dir, "install.sh"), "--root", basename(root), "--only", "ipam"], {
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

test.run();
