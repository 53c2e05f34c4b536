// The single executable application's main script (bundled by build.ts): wires launcher.ts to
// Node's SEA assets and V8's compiler. Runs before any program: keep it to what launching needs.
import { getRawAsset } from "node:sea";
import { Script } from "node:vm";
import { launch } from "./launcher.ts";

const code = launch({
  argv0: process.argv0,
  asset: (key) => {
    try {
      return new Uint8Array(getRawAsset(key));
    } catch {
      return undefined;
    }
  },
  compile: (source, filename, cache) => {
    const script = new Script(source, { filename, ...(cache ? { cachedData: cache } : {}) });
    return {
      run: script.runInThisContext() as (...args: unknown[]) => unknown,
      cacheRejected: cache !== undefined && script.cachedDataRejected === true,
    };
  },
  moduleArgs: { require, filename: __filename, dirname: __dirname },
  stderr: (text) => process.stderr.write(text),
});
if (code !== undefined) process.exitCode = code;
