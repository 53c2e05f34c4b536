// The single-file executable as a node gets it: one file holding both programs, run under each
// program's name (copied to another directory, hard-linked, symlinked) with an empty environment
// (as runtimes and the kubelet may run them), immune to NODE_OPTIONS, reporting one version and
// commit, and printing the usage under any other name.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, linkSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Metafile } from "../../packaging/sbom.ts";
import {
  BIN_DIR,
  PRIMARY,
  PROGRAM_NAMES,
  VERSION,
  binary,
  buildSnapshot,
  builtBinary,
  run,
  scratch,
  cleanScratch,
} from "./fixture.ts";

const test = suite("packaging: binaries");
test.after.each(cleanScratch);

/** Each built binary (the stage's snapshot of dist/bin) copied alone into a fresh directory. */
function copied(): Map<string, string> {
  const dir = scratch("copied");
  const out = new Map<string, string>();
  for (const p of PROGRAM_NAMES) {
    copyFileSync(binary(p), join(dir, p));
    statSync(join(dir, p));
    out.set(p, join(dir, p));
  }
  return out;
}

const LINE = /^(berth-[a-z-]+) (\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?) \(commit ([0-9a-f]{12}(?:-dirty)?|unknown)\)\n$/;

/** `env -i BIN --version`: the literal clean environment, through env(1). */
const version = (bin: string) => run("/usr/bin/env", ["-i", bin, "--version"]);

test("npm run build made both programs, executable", () => {
  assert.equal(PROGRAM_NAMES, ["berth-ipam", "berth-credential-provider"]);
  for (const p of PROGRAM_NAMES) assert.is(statSync(builtBinary(p)).mode & 0o777, 0o755, p);
});

test("both programs are one file: dist/bin's names are hard links to one inode", () => {
  const inodes = new Set(PROGRAM_NAMES.map((p) => statSync(join(BIN_DIR, p)).ino));
  assert.is(inodes.size, 1, "one executable under both names");
  assert.ok(statSync(join(BIN_DIR, PRIMARY.name)).nlink >= PROGRAM_NAMES.length);
});

test("the program is chosen by the name it runs as: a hard link and a symbolic link each run their own", async () => {
  const real = join(scratch("real"), "berth-real-file");
  copyFileSync(binary(PRIMARY.name), real);
  const hard = scratch("hard");
  const soft = scratch("soft");
  for (const p of PROGRAM_NAMES) {
    linkSync(real, join(hard, p));
    symlinkSync(real, join(soft, p));
    for (const bin of [join(hard, p), join(soft, p)]) {
      const r = await run("/usr/bin/env", ["-i", bin, "--version"]);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stderr, "", bin);
      assert.ok(r.stdout.startsWith(`${p} ${VERSION} `), `${bin}: ${r.stdout}`);
    }
  }
});

test("under any other name it prints the usage naming both programs, exit 2, nothing on stdout", async () => {
  const dir = scratch("othername");
  for (const name of ["berth", "host-local", "berth-ipam.old", "Berth-Ipam"]) {
    copyFileSync(binary(PRIMARY.name), join(dir, name));
    for (const [args, env] of [
      [["--version"], {}],
      [[], { CNI_COMMAND: "VERSION" }],
    ] as const) {
      const r = await run(join(dir, name), [...args], { env, stdin: '{"cniVersion":"1.0.0"}' });
      assert.is(r.code, 2, `${name}: ${r.stderr}`);
      assert.is(r.stdout, "", name);
      for (const p of PROGRAM_NAMES) assert.match(r.stderr, p);
      assert.match(r.stderr, `${join(dir, name)}: berth runs as the program it is named`);
    }
  }
});

test("each program's bundle holds none of the other's code (esbuild's metafiles)", () => {
  const inputs = (p: string): string[] => {
    const m = JSON.parse(readFileSync(join(buildSnapshot().dir, "meta", `${p}.json`), "utf8")) as Metafile;
    return Object.values(m.outputs).flatMap((o) => Object.keys(o.inputs));
  };
  const ipam = inputs("berth-ipam");
  const provider = inputs("berth-credential-provider");
  assert.ok(ipam.includes("cni/main.ts"));
  assert.ok(provider.includes("credential-provider/main.ts"));
  assert.equal(
    ipam.filter((f) => f.startsWith("credential-provider/") || f.includes("node_modules/")),
    [],
    "berth-ipam bundles neither the credential provider nor any npm package",
  );
  assert.equal(
    provider.filter((f) => f.startsWith("cni/")),
    [],
  );
  // berth-ipam's operator CLI is a lazy module of its own (packaging/programs.ts): yargs is there.
  const cli = inputs("berth-ipam-cli");
  assert.ok(cli.includes("cni/cli/main.ts") && cli.some((f) => f.includes("node_modules/yargs/")));
  assert.equal(
    cli.filter((f) => f.startsWith("credential-provider/")),
    [],
  );
});

test("--version under env -i, copied elsewhere: '<program> <package version> (commit <sha>)', same for all", async () => {
  const commits = new Set<string>();
  for (const [name, bin] of copied()) {
    const r = await version(bin);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, "", `${name} prints nothing on stderr (no experimental SEA warning)`);
    const m = LINE.exec(r.stdout);
    assert.ok(m, `${name}: ${JSON.stringify(r.stdout)}`);
    assert.is(m[1], name);
    assert.is(m[2], VERSION, "package.json's version");
    commits.add(m[3]!);
  }
  assert.is(commits.size, 1, `one commit for all binaries: ${[...commits].join(", ")}`);
});

test("berth-ipam under env -i: CNI VERSION answers per the spec, and its about text carries the same version line", async () => {
  const bin = copied().get("berth-ipam")!;
  const v = await run(bin, [], { env: { CNI_COMMAND: "VERSION" }, stdin: '{"cniVersion":"1.0.0"}' });
  assert.is(v.code, 0, v.stderr);
  const out = JSON.parse(v.stdout) as { cniVersion: string; supportedVersions: string[] };
  assert.is(out.cniVersion, "1.0.0", "VERSION echoes the cniVersion it was given");
  assert.ok(out.supportedVersions.includes("1.1.0") && out.supportedVersions.includes("0.1.0"));
  const about = await run(bin, [], { env: {} });
  assert.is(about.code, 0);
  const line = (await version(bin)).stdout.trim();
  assert.ok(
    about.stderr.includes(line),
    `no CNI_COMMAND: the about text names ${line}: ${JSON.stringify(about.stderr)}`,
  );
});

test("NODE_OPTIONS from a runtime's environment does not reach the binaries (it stops a plain node)", async () => {
  const hostile = {
    NODE_OPTIONS: "--require=/nonexistent/berth-hook.js",
    NODE_EXTRA_CA_CERTS: "/nonexistent/ca.pem",
    NODE_PENDING_DEPRECATION: "1",
  };
  const control = await run(process.execPath, ["-e", "0"], { env: hostile });
  assert.is.not(control.code, 0, "the same environment breaks node itself");
  for (const [name, bin] of copied()) {
    const clean = await version(bin);
    const r = await run(bin, ["--version"], { env: hostile });
    assert.is(r.code, 0, `${name}: ${r.stderr}`);
    assert.is(r.stdout, clean.stdout, name);
    assert.is(r.stderr, "", name);
    // NODE_DEBUG is read by Node's core, not as an option: it adds stderr lines, never stdout.
    const debug = await run(bin, ["--version"], { env: { NODE_DEBUG: "module" } });
    assert.is(debug.code, 0);
    assert.is(debug.stdout, clean.stdout, `${name}: NODE_DEBUG leaves stdout alone`);
  }
});

test("the binaries need no Node and no files beside them: only the system's shared libraries", async () => {
  for (const p of PROGRAM_NAMES) {
    const r = await run("/usr/bin/ldd", [binary(p)], { env: { PATH: "/usr/bin:/bin" } });
    assert.is(r.code, 0, r.stderr);
    const libs = r.stdout
      .split("\n")
      .map((l) => l.trim().split(" ")[0] ?? "")
      .filter((l) => l !== "" && !l.startsWith("linux-vdso") && !l.startsWith("/lib64/ld-linux"));
    assert.not.match(r.stdout, "not found", p);
    // What packaging/deb/control.in and the README list as run-time dependencies.
    for (const lib of libs) {
      assert.ok(
        /^lib(c|m|dl|pthread|stdc\+\+|gcc_s|atomic|rt)\.so\.\d+$/.test(lib),
        `${p} needs ${lib}: add it to the .deb Depends and the README`,
      );
    }
  }
});

test.run();
