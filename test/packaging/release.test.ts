// packaging/release.ts: the tarball a node installs from, its checksums, and the .deb.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  EXAMPLES,
  PROGRAM_NAMES,
  RELEASE_ENV,
  SHELL_ENV,
  VERSION,
  releaseOnce,
  run,
  scratch,
  sh,
  cleanScratch,
} from "./fixture.ts";

const test = suite("packaging: release");
test.after.each(cleanScratch);

function examplesList(dir: string, prefix = "examples"): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) =>
      statSync(join(dir, n)).isDirectory() ? examplesList(join(dir, n), `${prefix}/${n}`) : [`${prefix}/${n}`],
    );
}

/** Every file the tarball must hold, relative to its top directory. */
const expectedFiles = (): string[] =>
  ["README.md", "SHA256SUMS", "install.sh", ...PROGRAM_NAMES.map((p) => `bin/${p}`), ...examplesList(EXAMPLES)].sort();

type TarEntry = { mode: string; owner: string; mtime: string; path: string };

async function tarList(tarball: string): Promise<TarEntry[]> {
  const out = await sh("tar", ["--numeric-owner", "--full-time", "-tvzf", tarball]);
  return out
    .trim()
    .split("\n")
    .map((l) => {
      const f = l.split(/\s+/);
      return { mode: f[0]!, owner: f[1]!, mtime: `${f[3]} ${f[4]}`, path: f.slice(5).join(" ") };
    });
}

test("the tarball is berth-<version>-linux-<arch>.tar.gz with one top directory and exactly the release files", async () => {
  const rel = await releaseOnce();
  assert.ok(readdirSync(rel.out).includes(`${rel.top}.tar.gz`));
  const entries = await tarList(rel.tarball);
  const files = entries.filter((e) => !e.mode.startsWith("d")).map((e) => e.path.slice(rel.top.length + 1));
  assert.ok(
    entries.every((e) => e.path === `${rel.top}/` || e.path.startsWith(`${rel.top}/`)),
    "one top directory",
  );
  assert.equal(files.sort(), expectedFiles());
});

test("modes, owners and times are fixed: executables 0755, the rest 0644, directories 0755, 0/0, SOURCE_DATE_EPOCH", async () => {
  const rel = await releaseOnce();
  for (const e of await tarList(rel.tarball)) {
    assert.is(e.owner, "0/0", e.path);
    assert.is(e.mtime, "2025-11-27 00:00:00", `${e.path}: the mtime of RELEASE_ENV's SOURCE_DATE_EPOCH`);
    const rel2 = e.path.slice(rel.top.length + 1);
    const want = e.mode.startsWith("d")
      ? "drwxr-xr-x"
      : rel2 === "install.sh" || rel2.startsWith("bin/")
        ? "-rwxr-xr-x"
        : "-rw-r--r--";
    assert.is(e.mode, want, e.path);
  }
});

test("the binaries, install.sh and examples are byte-identical to the tree's", async () => {
  const rel = await releaseOnce();
  for (const p of PROGRAM_NAMES)
    assert.ok(readFileSync(join(rel.dir, "bin", p)).equals(readFileSync(join(rel.binDir, p))), p);
  assert.is(
    readFileSync(join(rel.dir, "install.sh"), "utf8"),
    readFileSync(join(EXAMPLES, "..", "install.sh"), "utf8"),
  );
  for (const f of examplesList(EXAMPLES)) {
    assert.is(readFileSync(join(rel.dir, f), "utf8"), readFileSync(join(EXAMPLES, "..", f), "utf8"), f);
  }
});

test("SHA256SUMS lists every other file and sha256sum --check --strict verifies it", async () => {
  const rel = await releaseOnce();
  const listed = readFileSync(join(rel.dir, "SHA256SUMS"), "utf8")
    .trim()
    .split("\n")
    .map((l) => {
      const m = /^([0-9a-f]{64}) {2}(\S.*)$/.exec(l);
      assert.ok(m, `sha256sum format: ${l}`);
      return m[2]!;
    });
  assert.equal(
    listed,
    expectedFiles().filter((f) => f !== "SHA256SUMS"),
  );
  const r = await run("/usr/bin/sha256sum", ["--check", "--strict", "SHA256SUMS"], { env: SHELL_ENV, cwd: rel.dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is(r.stdout.split("\n").filter((l) => l.endsWith(": OK")).length, listed.length);
});

test("dist/release/SHA256SUMS covers the tarball and the .deb", async () => {
  const rel = await releaseOnce();
  const r = await run("/usr/bin/sha256sum", ["--check", "--strict", "SHA256SUMS"], { env: SHELL_ENV, cwd: rel.out });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.equal(
    r.stdout.trim().split("\n").sort(),
    [`${rel.top}.tar.gz: OK`, `${rel.deb.split("/").pop()!}: OK`].sort(),
  );
});

test("the tarball is reproducible: the same binaries and tree give the same bytes", async () => {
  const rel = await releaseOnce();
  const out = scratch("again");
  const r = await run(
    process.execPath,
    [join(EXAMPLES, "..", "release.ts"), "--out", out, "--bin-dir", rel.binDir, "--compression-level", "1", "--no-deb"],
    {
      env: RELEASE_ENV,
    },
  );
  assert.is(r.code, 0, r.stderr);
  assert.ok(
    readFileSync(join(out, `${rel.top}.tar.gz`)).equals(readFileSync(rel.tarball)),
    "sorted names, 0:0, fixed modes and mtime, gzip without a timestamp",
  );
});

test("release.ts fails clearly when a binary is missing", async () => {
  const empty = scratch("nobin");
  const r = await run(
    process.execPath,
    [join(EXAMPLES, "..", "release.ts"), "--out", scratch("out"), "--bin-dir", empty],
    { env: SHELL_ENV },
  );
  assert.is(r.code, 1);
  assert.match(r.stderr, `${join(empty, "berth-ipam")} missing: run npm run build first`);
});

// --- the Debian package ---
const DEB_FILES: Record<string, string> = {
  "berth-ipam": "./opt/cni/bin/berth-ipam",
  "berth-credential-provider":
    "./usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/berth-credential-provider",
};

test("the .deb holds the binaries in their host paths (0755 root) and the examples as documentation", async () => {
  const rel = await releaseOnce();
  const listing = (await sh("dpkg-deb", ["-c", rel.deb])).trim().split("\n");
  const files = new Map(
    listing
      .map((l) => l.split(/\s+/))
      .filter((f) => !f[0]!.startsWith("d"))
      .map((f) => [f.slice(5).join(" "), `${f[0]} ${f[1]}`] as const),
  );
  const want = new Map<string, string>([
    ...PROGRAM_NAMES.map((p) => [DEB_FILES[p]!, "-rwxr-xr-x root/root"] as const),
    ["./usr/share/doc/berth/README.md", "-rw-r--r-- root/root"],
    ["./usr/share/doc/berth/copyright", "-rw-r--r-- root/root"],
    ...examplesList(EXAMPLES).map((f) => [`./usr/share/doc/berth/${f}`, "-rw-r--r-- root/root"] as const),
  ]);
  assert.equal([...files.entries()].sort(), [...want.entries()].sort());
});

test("the .deb's control fields: version, architecture, run-time libraries", async () => {
  const rel = await releaseOnce();
  const field = async (f: string) => (await sh("dpkg-deb", ["-f", rel.deb, f])).trim();
  assert.is(await field("Package"), "berth");
  assert.is(await field("Version"), VERSION.replace("-", "~"));
  assert.is(await field("Architecture"), rel.arch);
  const depends = await field("Depends");
  for (const lib of ["libc6", "libstdc++6", "libgcc-s1", "libatomic1"]) assert.match(depends, lib);
});

test("the .deb's binaries, unpacked with dpkg-deb -x, are the release's and run", async () => {
  const rel = await releaseOnce();
  const root = scratch("deb-x");
  await sh("dpkg-deb", ["-x", rel.deb, root]);
  for (const p of PROGRAM_NAMES) {
    const f = join(root, DEB_FILES[p]!);
    assert.ok(readFileSync(f).equals(readFileSync(join(rel.dir, "bin", p))), p);
    const r = await run("/usr/bin/env", ["-i", f, "--version"]);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, `${p} `);
  }
});

test("dpkg installs the .deb into a scratch root and removes it without leaving a file", async () => {
  const rel = await releaseOnce();
  const root = scratch("dpkg-root");
  const admin = join(root, "var/lib/dpkg");
  for (const d of ["info", "updates"]) mkdirSync(join(admin, d), { recursive: true });
  writeFileSync(join(admin, "status"), "");
  // The scratch root has no libc6 package registered: dependencies are the host's business here.
  const dpkg = (...args: string[]) =>
    run(
      "/usr/bin/dpkg",
      [
        `--root=${root}`,
        `--log=${join(admin, "dpkg.log")}`,
        "--force-depends",
        "--force-not-root",
        "--force-script-chrootless",
        ...args,
      ],
      { env: SHELL_ENV },
    );
  const inst = await dpkg("-i", rel.deb);
  assert.is(inst.code, 0, inst.stderr);
  const listed = (await dpkg("-L", "berth")).stdout.split("\n");
  for (const p of PROGRAM_NAMES) {
    const f = DEB_FILES[p]!.slice(1);
    assert.ok(listed.includes(f), `dpkg -L lists ${f}`);
    assert.is((statSync(join(root, f)).mode & 0o7777).toString(8), "755", f);
  }
  const rm = await dpkg("--purge", "berth");
  assert.is(rm.code, 0, rm.stderr);
  const left: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (!p.startsWith(admin)) left.push(p);
    }
  };
  walk(root);
  assert.equal(left, []);
});

test.run();
