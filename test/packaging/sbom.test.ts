// Each release's SBOM (CycloneDX 1.5 JSON) against what esbuild reports it bundled: the packages
// are derived here from the build's metafiles on their own terms (each bundled file's nearest
// package.json), and the SBOM must list exactly those, with the installed version and license
// and the lockfile's integrity, plus the Node runtime the executable embeds.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Metafile } from "../../packaging/sbom.ts";
import { PROGRAMS } from "../../packaging/programs.ts";
import { RUNTIMES } from "../../packaging/runtimes.ts";
import { PROGRAM_NAMES, ROOT, VERSION, type Release, releasesOnce } from "./fixture.ts";

const test = suite("packaging: SBOM");

type Component = {
  type: string;
  name: string;
  version: string;
  purl: string;
  licenses: ({ license: { id: string } } | { expression: string })[];
  hashes?: { alg: string; content: string }[];
  properties?: { name: string; value: string }[];
};
type Bom = {
  bomFormat: string;
  specVersion: string;
  metadata: { component: { name: string; version: string; properties: { name: string; value: string }[] } };
  components: Component[];
  dependencies: { ref: string; dependsOn: string[] }[];
};

type Pkg = { name: string; version: string; license: string; dir: string };

/** The package a bundled file belongs to: the nearest enclosing package.json that names one. */
function owningPackage(file: string): Pkg {
  for (let dir = dirname(join(ROOT, file)); dir.startsWith(ROOT) && dir !== ROOT; dir = dirname(dir)) {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) continue;
    const m = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string; version?: string; license?: string };
    if (m.name && m.version) return { name: m.name, version: m.version, license: m.license ?? "", dir };
  }
  throw new Error(`no package.json above ${file}`);
}

/** The metafiles of a program: its own bundle's and its lazy modules' (packaging/programs.ts). */
const metafilesOf = (program: string): string[] => [
  program,
  ...(PROGRAMS.find((p) => p.name === program)?.lazy ?? []).map((l) => l.name),
];

type Bundled = Map<string, { pkg: Pkg; programs: Set<string> }>;

/** name@version -> the programs whose bundle (or lazy module) holds at least one byte of it. */
function bundled(rel: Release, only?: (metafile: string) => boolean): Bundled {
  const out: Bundled = new Map();
  for (const program of PROGRAM_NAMES) {
    for (const name of metafilesOf(program)) {
      if (only && !only(name)) continue;
      const meta = JSON.parse(readFileSync(join(rel.build.dir, "meta", `${name}.json`), "utf8")) as Metafile;
      for (const o of Object.values(meta.outputs))
        for (const [file, { bytesInOutput }] of Object.entries(o.inputs)) {
          if (bytesInOutput === 0 || !file.includes("node_modules/")) continue;
          const pkg = owningPackage(file);
          const key = `${pkg.name}@${pkg.version}`;
          const seen = out.get(key) ?? { pkg, programs: new Set<string>() };
          seen.programs.add(program);
          out.set(key, seen);
        }
    }
  }
  return out;
}

const bom = (rel: Release): Bom => JSON.parse(readFileSync(rel.sbom, "utf8")) as Bom;
const licenseOf = (c: Component): string =>
  c.licenses.map((l) => ("license" in l ? l.license.id : l.expression)).join(" AND ");

test("every release has a CycloneDX 1.5 SBOM naming berth, its version and its architecture", async () => {
  const { host, cross } = await releasesOnce();
  for (const rel of [host, cross]) {
    const b = bom(rel);
    assert.is(b.bomFormat, "CycloneDX");
    assert.is(b.specVersion, "1.5");
    assert.is(b.metadata.component.name, "berth");
    assert.is(b.metadata.component.version, VERSION);
    assert.ok(b.metadata.component.properties.some((p) => p.name === "berth:arch" && p.value === rel.arch));
  }
});

test("the libraries are exactly the npm packages esbuild bundled, with their programs, versions, licenses and lockfile hashes", async () => {
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { integrity?: string }>;
  };
  const { host, cross } = await releasesOnce();
  for (const rel of [host, cross]) {
    const want = bundled(rel);
    assert.ok(want.size > 10, `${rel.arch}: the AWS SDK, yargs and yaml are bundled (${want.size} packages)`);
    const libraries = bom(rel).components.filter((c) => c.type === "library");
    assert.equal(libraries.map((c) => `${c.name}@${c.version}`).sort(), [...want.keys()].sort(), rel.arch);
    for (const c of libraries) {
      const { pkg, programs } = want.get(`${c.name}@${c.version}`)!;
      assert.is(licenseOf(c), pkg.license, `${c.name}: the license its package.json declares`);
      assert.equal(
        (c.properties ?? []).filter((p) => p.name === "berth:bundled-into").map((p) => p.value),
        PROGRAM_NAMES.filter((p) => programs.has(p)).sort(),
        c.name,
      );
      const integrity = lock.packages[pkg.dir.slice(ROOT.length + 1)]?.integrity ?? "";
      assert.equal(
        c.hashes,
        [{ alg: "SHA-512", content: Buffer.from(integrity.replace(/^sha512-/, ""), "base64").toString("hex") }],
        `${c.name}: the lockfile's integrity`,
      );
      assert.is(c.purl, `pkg:npm/${c.name.replace(/^@/, "%40")}@${c.version}`);
    }
    // berth-ipam's own bundle, the CNI path, holds no npm package (node: built-ins only); its
    // operator CLI, a lazy module of its own, brings yargs.
    const cniPath = bundled(rel, (name) => name === "berth-ipam");
    assert.not.ok([...cniPath.values()].some((v) => v.programs.has("berth-ipam")));
    assert.ok(libraries.some((c) => c.name === "yargs" && c.properties?.some((p) => p.value === "berth-ipam")));
  }
});

test("the Node runtime: one platform component, the pinned version, from that architecture's npm package", async () => {
  const pinned = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies: { node: string } })
    .devDependencies.node;
  assert.is(`v${pinned}`, process.version, "the tests run on the pinned Node");
  const { host, cross } = await releasesOnce();
  for (const rel of [host, cross]) {
    const platforms = bom(rel).components.filter((c) => c.type === "platform");
    assert.is(platforms.length, 1);
    const node = platforms[0]!;
    assert.is(node.name, "node");
    assert.is(node.version, pinned);
    assert.is(node.purl, `pkg:npm/node-linux-${RUNTIMES[rel.arch].cpu}@${pinned}`);
    assert.is(licenseOf(node), "MIT");
    const integrity = RUNTIMES[rel.arch].integrity[pinned]!;
    assert.equal(node.hashes, [{ alg: "SHA-512", content: Buffer.from(integrity.slice(7), "base64").toString("hex") }]);
    assert.is(bom(rel).components.length, bundled(rel).size + 1, "nothing else");
  }
});

test("the dependency graph: berth depends on the runtime and every library, each listed once", async () => {
  const b = bom((await releasesOnce()).host);
  const top = b.dependencies.find((d) => d.ref === "berth")!;
  assert.equal(top.dependsOn.sort(), b.components.map((c) => c.purl).sort());
  assert.is(new Set(b.dependencies.map((d) => d.ref)).size, b.dependencies.length);
});

test.run();
