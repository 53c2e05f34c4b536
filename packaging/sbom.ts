// The release's bill of materials (CycloneDX 1.5 JSON): every npm package esbuild put bytes of
// into a program's bundle, as its metafile reports them, with the version and license its
// package.json declares and the lockfile's integrity, plus the Node runtime the executable embeds.
// Spec: https://cyclonedx.org/docs/1.5/json/
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The part of esbuild's metafile this reads (https://esbuild.github.io/api/#metafile). */
export type Metafile = { outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> };

/** dir: the package's directory relative to the project root, as esbuild and the lockfile name it. */
export type BundledPackage = { name: string; version: string; license: string; dir: string };

/** node_modules/<name> or node_modules/@scope/<name>, the innermost one, of a path esbuild reports. */
function packageDir(input: string): string | undefined {
  const at = input.lastIndexOf("node_modules/");
  if (at < 0) return undefined;
  const parts = input.slice(at + "node_modules/".length).split("/");
  const n = parts[0]?.startsWith("@") ? 2 : 1;
  return `${input.slice(0, at)}node_modules/${parts.slice(0, n).join("/")}`;
}

/** Packages with at least one byte in the bundle (tree-shaken ones are not in the binary), by directory. */
export function bundledPackages(metafile: Metafile, root: string): BundledPackage[] {
  const dirs = new Set<string>();
  for (const out of Object.values(metafile.outputs))
    for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
      const dir = bytesInOutput > 0 ? packageDir(input) : undefined;
      if (dir) dirs.add(dir);
    }
  return [...dirs].sort().map((dir) => {
    const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: unknown;
    };
    return {
      name: pkg.name,
      version: pkg.version,
      license: typeof pkg.license === "string" ? pkg.license : "NOASSERTION",
      dir,
    };
  });
}

export type RuntimeComponent = { npmPackage: string; version: string; license: string; integrity: string };

type Lockfile = { packages: Record<string, { version?: string; integrity?: string }> };

/** pkg:npm purl (https://github.com/package-url/purl-spec): a scope's "@" is percent-encoded. */
export const npmPurl = (name: string, version: string): string =>
  `pkg:npm/${name.startsWith("@") ? `%40${name.slice(1)}` : name}@${version}`;

const sha512Hex = (integrity: string): string | undefined =>
  integrity.startsWith("sha512-") ? Buffer.from(integrity.slice(7), "base64").toString("hex") : undefined;

/** An SPDX id as a license object, anything else (an expression such as "MIT OR Apache-2.0") as an expression. */
const licenses = (spdx: string) =>
  /^[A-Za-z0-9.+-]+$/.test(spdx) && spdx !== "NOASSERTION" ? [{ license: { id: spdx } }] : [{ expression: spdx }];

export function cycloneDx(opts: {
  root: string;
  version: string;
  arch: string;
  runtime: RuntimeComponent;
  /** Each program's bundled packages. */
  programs: Record<string, BundledPackage[]>;
  esbuildVersion: string;
}): object {
  const lock = JSON.parse(readFileSync(join(opts.root, "package-lock.json"), "utf8")) as Lockfile;
  const byRef = new Map<string, { pkg: BundledPackage; programs: string[] }>();
  for (const [program, pkgs] of Object.entries(opts.programs))
    for (const pkg of pkgs) {
      const ref = npmPurl(pkg.name, pkg.version);
      // One name@version may sit in two directories (npm nests a copy where versions conflict).
      const seen = byRef.get(ref) ?? { pkg, programs: [] };
      if (!seen.programs.includes(program)) seen.programs.push(program);
      byRef.set(ref, seen);
    }
  const components = [...byRef.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([ref, { pkg, programs }]) => {
      const locked = lock.packages[pkg.dir];
      const hash = locked?.integrity ? sha512Hex(locked.integrity) : undefined;
      return {
        type: "library",
        "bom-ref": ref,
        name: pkg.name,
        version: pkg.version,
        licenses: licenses(pkg.license),
        purl: ref,
        ...(hash ? { hashes: [{ alg: "SHA-512", content: hash }] } : {}),
        properties: programs.sort().map((p) => ({ name: "berth:bundled-into", value: p })),
      };
    });
  const runtimeRef = npmPurl(opts.runtime.npmPackage, opts.runtime.version);
  const runtimeHash = sha512Hex(opts.runtime.integrity);
  const runtime = {
    type: "platform",
    "bom-ref": runtimeRef,
    name: "node",
    version: opts.runtime.version,
    description: `the Node.js runtime the executable is built on (npm package ${opts.runtime.npmPackage})`,
    licenses: licenses(opts.runtime.license),
    purl: runtimeRef,
    ...(runtimeHash ? { hashes: [{ alg: "SHA-512", content: runtimeHash }] } : {}),
  };
  return {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    version: 1,
    metadata: {
      tools: { components: [{ type: "application", name: "esbuild", version: opts.esbuildVersion }] },
      component: {
        type: "application",
        "bom-ref": "berth",
        name: "berth",
        version: opts.version,
        licenses: [{ license: { id: "Apache-2.0" } }],
        properties: [
          { name: "berth:arch", value: opts.arch },
          ...Object.keys(opts.programs).map((p) => ({ name: "berth:program", value: p })),
        ],
      },
    },
    components: [runtime, ...components],
    dependencies: [
      { ref: "berth", dependsOn: [runtimeRef, ...components.map((c) => c["bom-ref"])] },
      { ref: runtimeRef, dependsOn: [] },
      ...components.map((c) => ({ ref: c["bom-ref"], dependsOn: [] })),
    ],
  };
}
