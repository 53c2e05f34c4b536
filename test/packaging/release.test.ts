// packaging/release.ts: per architecture (this machine's and the one built here for qemu-user)
// the tarball a node installs from, its checksums, its SBOM, and the .deb.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  EXAMPLES,
  PRIMARY,
  PROGRAM_NAMES,
  RELEASE_ENV,
  type Release,
  SHELL_ENV,
  VERSION,
  releasesOnce,
  run,
  scratch,
  sh,
  cleanScratch,
} from "./fixture.ts";

/** Both architectures' releases, this machine's first. */
const both = async (): Promise<Release[]> => {
  const r = await releasesOnce();
  return [r.host, r.cross];
};
const releaseOnce = async (): Promise<Release> => (await releasesOnce()).host;

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
  [
    "README.md",
    "SHA256SUMS",
    "install.sh",
    "sbom.cdx.json",
    ...PROGRAM_NAMES.map((p) => `bin/${p}`),
    ...examplesList(EXAMPLES),
  ].sort();

type TarEntry = { mode: string; owner: string; mtime: string; path: string; size: number; linkTo?: string };

async function tarList(tarball: string): Promise<TarEntry[]> {
  const out = await sh("tar", ["--numeric-owner", "--full-time", "-tvzf", tarball]);
  return out
    .trim()
    .split("\n")
    .map((l) => {
      const f = l.split(/\s+/);
      const rest = f.slice(5).join(" ");
      const [path, linkTo] = rest.split(" link to ");
      return {
        mode: f[0]!,
        owner: f[1]!,
        size: Number(f[2]),
        mtime: `${f[3]} ${f[4]}`,
        path: path!,
        ...(linkTo ? { linkTo } : {}),
      };
    });
}

test("npm run release's artifacts: a tarball, an SBOM and a .deb per architecture, and SHA256SUMS", async () => {
  const { out, host, cross } = await releasesOnce();
  assert.equal([host.arch, cross.arch].sort(), ["amd64", "arm64"]);
  const names = [host, cross].flatMap((r) => [`${r.top}.tar.gz`, `${r.top}.cdx.json`, r.deb.split("/").pop()!]);
  assert.equal(readdirSync(out).sort(), [...names, "SHA256SUMS"].sort());
});

test("each tarball is berth-<version>-linux-<arch>.tar.gz with one top directory and exactly the release files", async () => {
  for (const rel of await both()) {
    const entries = await tarList(rel.tarball);
    const files = entries.filter((e) => !e.mode.startsWith("d")).map((e) => e.path.slice(rel.top.length + 1));
    assert.ok(
      entries.every((e) => e.path === `${rel.top}/` || e.path.startsWith(`${rel.top}/`)),
      "one top directory",
    );
    assert.equal(files.sort(), expectedFiles(), rel.arch);
  }
});

test("each tarball holds the executable once: the other program name is a hard link entry to it", async () => {
  for (const rel of await both()) {
    const bins = (await tarList(rel.tarball)).filter(
      (e) => e.path.startsWith(`${rel.top}/bin/`) && !e.mode.startsWith("d"),
    );
    const real = bins.filter((e) => e.linkTo === undefined);
    const links = bins.filter((e) => e.linkTo !== undefined);
    assert.is(real.length, 1, rel.arch);
    assert.is(links.length, PROGRAM_NAMES.length - 1, rel.arch);
    assert.ok(real[0]!.size > 50 * 1024 * 1024, "a whole Node");
    for (const l of links) assert.is(l.linkTo, real[0]!.path);
    // Unpacked, tar makes it a hard link again.
    assert.is(
      new Set(PROGRAM_NAMES.map((p) => statSync(join(rel.dir, "bin", p)).ino)).size,
      1,
      `${rel.arch}: one inode after tar -x`,
    );
  }
});

test("modes, owners and times are fixed: executables 0755, the rest 0644, directories 0755, 0/0, SOURCE_DATE_EPOCH", async () => {
  for (const rel of await both()) {
    for (const e of await tarList(rel.tarball)) {
      assert.is(e.owner, "0/0", e.path);
      assert.is(e.mtime, "2025-11-27 00:00:00", `${e.path}: the mtime of RELEASE_ENV's SOURCE_DATE_EPOCH`);
      const rel2 = e.path.slice(rel.top.length + 1);
      const want = e.mode.startsWith("d")
        ? "drwxr-xr-x"
        : rel2 === "install.sh" || rel2.startsWith("bin/")
          ? `${e.linkTo ? "h" : "-"}rwxr-xr-x`
          : "-rw-r--r--";
      assert.is(e.mode, want, e.path);
    }
  }
});

test("each tarball's executable is its architecture's (ELF e_machine) and the build's bytes", async () => {
  const machine = { amd64: 62, arm64: 183 } as const;
  for (const rel of await both()) {
    const head = readFileSync(join(rel.dir, "bin", PRIMARY.name)).subarray(0, 20);
    assert.is(head.readUInt16LE(18), machine[rel.arch], rel.arch);
    assert.ok(readFileSync(join(rel.dir, "bin", PRIMARY.name)).equals(readFileSync(join(rel.binDir, PRIMARY.name))));
    assert.is(
      readFileSync(join(rel.dir, "sbom.cdx.json"), "utf8"),
      readFileSync(rel.sbom, "utf8"),
      "the SBOM inside is the one beside",
    );
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
  for (const rel of await both()) {
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
  }
});

test("dist/release/SHA256SUMS covers both tarballs, both SBOMs and both .debs", async () => {
  const { out, host, cross } = await releasesOnce();
  const r = await run("/usr/bin/sha256sum", ["--check", "--strict", "SHA256SUMS"], { env: SHELL_ENV, cwd: out });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.equal(
    r.stdout.trim().split("\n").sort(),
    [host, cross]
      .flatMap((rel) => [`${rel.top}.tar.gz: OK`, `${rel.top}.cdx.json: OK`, `${rel.deb.split("/").pop()!}: OK`])
      .sort(),
  );
});

test("the tarball is reproducible: the same binaries and tree give the same bytes", async () => {
  const rel = await releaseOnce();
  const out = scratch("again");
  const r = await run(
    process.execPath,
    [
      join(EXAMPLES, "..", "release.ts"),
      "--out",
      out,
      "--build-dir",
      rel.build.dir,
      "--compression-level",
      "1",
      "--no-deb",
    ],
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
    [join(EXAMPLES, "..", "release.ts"), "--out", scratch("out"), "--build-dir", empty],
    { env: SHELL_ENV },
  );
  assert.is(r.code, 1);
  assert.match(r.stderr, `${join(empty, "bin", "berth-ipam")} missing: run npm run build first`);
});

// --- the Debian package ---
const DEB_FILES: Record<string, string> = {
  "berth-ipam": "./opt/cni/bin/berth-ipam",
  "berth-credential-provider":
    "./usr/libexec/kubernetes/kubelet-plugins/credential-provider/exec/berth-credential-provider",
};
const PRIMARY_FILE = DEB_FILES[PRIMARY.name]!;
const LINK_FILE = DEB_FILES["berth-credential-provider"]!;

test("each .deb holds the executable once (0755 root), the link's directory, the examples and the SBOM as documentation", async () => {
  for (const rel of await both()) {
    const listing = (await sh("dpkg-deb", ["-c", rel.deb])).trim().split("\n");
    const entries = listing.map((l) => l.split(/\s+/));
    const files = new Map(
      entries.filter((f) => !f[0]!.startsWith("d")).map((f) => [f.slice(5).join(" "), `${f[0]} ${f[1]}`] as const),
    );
    const want = new Map<string, string>([
      [PRIMARY_FILE, "-rwxr-xr-x root/root"],
      ["./usr/share/doc/berth/README.md", "-rw-r--r-- root/root"],
      ["./usr/share/doc/berth/copyright", "-rw-r--r-- root/root"],
      ["./usr/share/doc/berth/sbom.cdx.json", "-rw-r--r-- root/root"],
      ...examplesList(EXAMPLES).map((f) => [`./usr/share/doc/berth/${f}`, "-rw-r--r-- root/root"] as const),
    ]);
    assert.equal([...files.entries()].sort(), [...want.entries()].sort(), rel.arch);
    assert.ok(
      entries.some((f) => f[0]!.startsWith("d") && f.slice(5).join(" ") === `${dirname(LINK_FILE)}/`),
      "the credential provider's directory is the package's",
    );
  }
});

test("the .deb's control fields: version, architecture, run-time libraries, maintainer scripts", async () => {
  for (const rel of await both()) {
    const field = async (f: string) => (await sh("dpkg-deb", ["-f", rel.deb, f])).trim();
    assert.is(await field("Package"), "berth");
    assert.is(await field("Version"), VERSION.replace("-", "~"));
    assert.is(await field("Architecture"), rel.arch);
    const depends = await field("Depends");
    for (const lib of ["libc6", "libstdc++6", "libgcc-s1", "libatomic1"]) assert.match(depends, lib);
    const control = (await sh("dpkg-deb", ["-I", rel.deb])).split("\n");
    for (const script of ["postinst", "prerm"])
      assert.ok(
        control.some((l) => /\s\d+ bytes,\s+\d+ lines\s+\*\s+(\S+)/.exec(l)?.[1] === script),
        `${rel.arch}: executable ${script}`,
      );
  }
});

test("each .deb's executable, unpacked with dpkg-deb -x, is the release's; this machine's runs", async () => {
  for (const rel of await both()) {
    const root = scratch("deb-x");
    await sh("dpkg-deb", ["-x", rel.deb, root]);
    assert.ok(readFileSync(join(root, PRIMARY_FILE)).equals(readFileSync(join(rel.dir, "bin", PRIMARY.name))));
  }
  const rel = await releaseOnce();
  const root = scratch("deb-x");
  await sh("dpkg-deb", ["-x", rel.deb, root]);
  const r = await run("/usr/bin/env", ["-i", join(root, PRIMARY_FILE), "--version"]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, `${PRIMARY.name} `);
});

/** dpkg on a scratch root, its maintainer scripts run outside a chroot with DPKG_ROOT set. */
function scratchDpkg(): { root: string; admin: string; dpkg: (...args: string[]) => ReturnType<typeof run> } {
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
        "--force-architecture",
        ...args,
      ],
      { env: SHELL_ENV },
    );
  return { root, admin, dpkg };
}

function filesLeft(root: string, admin: string): string[] {
  const left: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (lstatSync(p).isDirectory()) walk(p);
      else if (!p.startsWith(admin)) left.push(p);
    }
  };
  walk(root);
  return left;
}

test("dpkg installs the .deb into a scratch root: postinst hard-links the credential provider's name; purge leaves no file", async () => {
  for (const rel of await both()) {
    const { root, admin, dpkg } = scratchDpkg();
    const inst = await dpkg("-i", rel.deb);
    assert.is(inst.code, 0, inst.stderr);
    const listed = (await dpkg("-L", "berth")).stdout.split("\n");
    assert.ok(listed.includes(PRIMARY_FILE.slice(1)), `dpkg -L lists ${PRIMARY_FILE}`);
    assert.is((statSync(join(root, PRIMARY_FILE)).mode & 0o7777).toString(8), "755");
    assert.is(
      statSync(join(root, LINK_FILE)).ino,
      statSync(join(root, PRIMARY_FILE)).ino,
      `${rel.arch}: one file system, so a hard link`,
    );
    // Reinstalling (an upgrade to the same version) keeps one file under both names.
    const again = await dpkg("-i", rel.deb);
    assert.is(again.code, 0, again.stderr);
    assert.is(statSync(join(root, LINK_FILE)).ino, statSync(join(root, PRIMARY_FILE)).ino);
    const rm = await dpkg("--purge", "berth");
    assert.is(rm.code, 0, rm.stderr);
    assert.equal(filesLeft(root, admin), [], rel.arch);
  }
});

test("across file systems postinst makes a symbolic link to the node path, and prerm removes it", async () => {
  const rel = await releaseOnce();
  const { root, admin } = scratchDpkg();
  const mounted = scratch("deb-other-fs");
  const target = join(root, dirname(LINK_FILE));
  mkdirSync(target, { recursive: true });
  const inNs = (...args: string[]) =>
    run(
      "/usr/bin/unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        'mount --bind "$1" "$2" && shift 2 && exec /usr/bin/dpkg "$@"',
        "sh",
        mounted,
        target,
        `--root=${root}`,
        `--log=${join(admin, "dpkg.log")}`,
        "--force-depends",
        "--force-not-root",
        "--force-script-chrootless",
        ...args,
      ],
      { env: SHELL_ENV },
    );
  if (process.getuid?.() !== 0) return; // bind mounts need root (CI runs as root)
  const inst = await inNs("-i", rel.deb);
  assert.is(inst.code, 0, inst.stderr);
  const link = join(mounted, "berth-credential-provider");
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.is(readlinkSync(link), PRIMARY_FILE.slice(1));
  const rm = await inNs("--purge", "berth");
  assert.is(rm.code, 0, rm.stderr);
  assert.equal(readdirSync(mounted), []);
  assert.equal(filesLeft(root, admin), []);
});

test.run();
