// The single-file executables as a node gets them: copied to another directory, run with an
// empty environment (as runtimes and the kubelet may run them), immune to NODE_OPTIONS, and
// reporting one version and commit.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { PROGRAM_NAMES, VERSION, binary, builtBinary, run, scratch, cleanScratch } from "./fixture.ts";

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
