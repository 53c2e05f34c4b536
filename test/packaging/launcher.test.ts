// packaging/launcher.ts, the single executable's entry, with its SEA assets and V8 compiler
// replaced by recorders: which assets it reads and what it compiles, per name it runs as.
// (The binaries suite runs the real executable under each name.)
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type LaunchDeps, launch, programNamed, wrapBundle } from "../../packaging/launcher.ts";
import { PROGRAMS, cacheAsset, sourceAsset } from "../../packaging/programs.ts";

const test = suite("packaging: launcher");

type Seen = { assets: string[]; compiled: string[]; ran: string[]; stderr: string };

function fakeExecutable(
  argv0: string,
  opts: { rejectCache?: boolean; missing?: string } = {},
): {
  deps: LaunchDeps;
  seen: Seen;
} {
  const seen: Seen = { assets: [], compiled: [], ran: [], stderr: "" };
  const assets = new Map<string, Uint8Array>();
  for (const p of PROGRAMS) {
    const marker = `globalThis.__ran = ${JSON.stringify(p.name)};`;
    assets.set(sourceAsset(p.name), new TextEncoder().encode(wrapBundle(marker)));
    assets.set(cacheAsset(p.name), new Uint8Array([1, 2, 3]));
  }
  if (opts.missing) assets.delete(opts.missing);
  const deps: LaunchDeps = {
    argv0,
    asset: (key) => {
      seen.assets.push(key);
      return assets.get(key);
    },
    compile: (source, filename, cache) => {
      seen.compiled.push(filename);
      assert.ok(cache, "the program's code cache is passed to V8");
      return {
        run: (...args: unknown[]) => {
          assert.is(args.length, 5, "exports, require, module, __filename, __dirname");
          seen.ran.push(/__ran = "([^"]+)"/.exec(source)?.[1] ?? "?");
        },
        cacheRejected: opts.rejectCache === true,
      };
    },
    moduleArgs: { require: () => undefined, filename: "/bin/x", dirname: "/bin" },
    stderr: (t) => {
      seen.stderr += t;
    },
  };
  return { deps, seen };
}

for (const p of PROGRAMS) {
  const other = PROGRAMS.filter((o) => o !== p).map((o) => o.name);
  test(`as ${p.name}: reads and compiles only ${p.name}'s bundle and cache, never ${other.join(", ")}'s`, () => {
    for (const argv0 of [p.name, `/opt/cni/bin/${p.name}`, `./${p.name}`]) {
      const { deps, seen } = fakeExecutable(argv0);
      assert.is(launch(deps), undefined, "the program sets its own exit code");
      assert.equal(seen.assets.sort(), [cacheAsset(p.name), sourceAsset(p.name)].sort(), argv0);
      assert.equal(seen.compiled, [p.name]);
      assert.equal(seen.ran, [p.name]);
      assert.is(seen.stderr, "");
    }
  });
}

test("any other name: the usage on stderr, exit 2, no asset read, nothing compiled", () => {
  for (const argv0 of ["berth", "/usr/bin/berth", "", "berth-ipam/", "berth-ipam2", "xberth-credential-provider"]) {
    const { deps, seen } = fakeExecutable(argv0);
    assert.is(launch(deps), 2, argv0);
    assert.equal(seen.assets, []);
    assert.equal(seen.compiled, []);
    for (const p of PROGRAMS) assert.match(seen.stderr, p.name);
  }
  assert.is(programNamed("/a/b/berth-ipam"), "berth-ipam");
  assert.is(programNamed("berth-ipam/"), undefined);
});

test("a code cache V8 rejects still runs the program, with one warning line", () => {
  const { deps, seen } = fakeExecutable("berth-ipam", { rejectCache: true });
  assert.is(launch(deps), undefined);
  assert.equal(seen.ran, ["berth-ipam"]);
  assert.is(seen.stderr, "berth-ipam: warning: V8 rejected the embedded code cache; starting slower\n");
});

test("an executable without the program's bundle says so (exit 70) instead of crashing", () => {
  const { deps, seen } = fakeExecutable("berth-credential-provider", {
    missing: sourceAsset("berth-credential-provider"),
  });
  assert.is(launch(deps), 70);
  assert.equal(seen.compiled, []);
  assert.match(seen.stderr, "does not hold berth-credential-provider");
});

test.run();
