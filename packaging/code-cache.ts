// Run by the target architecture's Node (natively, or under qemu-user for another architecture):
// V8's code cache for one program's bundle, which only that V8 accepts.
// The program's `--version` path runs first, so the cache also holds every function its module
// initialisers compile (V8 includes lazily compiled functions in a cache made after they ran:
// https://nodejs.org/api/vm.html#scriptcreatecacheddata); that is work every start does, whatever
// the command. The cache is made in the 'exit' handler, so it is made however the program ends
// (the credential provider ends itself with process.exit), and checked by compiling the source
// again with it: a build cannot ship a cache that V8 refuses.
// Usage: node code-cache.ts NAME SOURCE.js OUT.cache
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Script } from "node:vm";

const [name, source, out, ...rest] = process.argv.slice(2);
if (!name || !source || !out || rest.length > 0) {
  process.stderr.write("usage: code-cache.ts NAME SOURCE.js OUT.cache\n");
  process.exit(2);
}
const code = readFileSync(source, "utf8");
const script = new Script(code, { filename: name });
const umask = process.umask();

process.on("exit", () => {
  process.umask(umask); // berth-ipam sets 077 for its state files
  const cache = script.createCachedData();
  if (new Script(code, { filename: name, cachedData: cache }).cachedDataRejected) {
    process.stderr.write(`code-cache.ts: V8 rejected its own cache for ${name}\n`);
    process.exitCode = 1;
    return;
  }
  writeFileSync(out, cache);
  process.exitCode = 0;
});

const run = script.runInThisContext() as (...args: unknown[]) => unknown;
process.argv = [process.execPath, name, "--version"];
const module = { exports: {} };
run.call(module.exports, module.exports, createRequire(import.meta.url), module, process.execPath, "/");
