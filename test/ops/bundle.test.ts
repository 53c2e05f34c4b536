// The CNI path does not carry the operator CLI: berth-ipam's bundle (what the launcher compiles
// at every start) holds neither yargs nor the CLI's code; they are an asset of their own with its
// own code cache, compiled only when a person gives arguments (packaging/programs.ts `lazy`).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/exec.ts";

const test = suite("ops: the CLI is not on the CNI path");
const bundle = (name: string) => readFileSync(join(ROOT, "dist/bundle", name), "utf8");

// Strings only yargs and the CLI have: a yargs error message, a CLI command's description.
const YARGS = "Not enough non-option arguments";
const CLI = "rebuild a network's reservations from libcni's result cache";

test("the program's bundle has no yargs and no CLI; the CLI's own bundle (its asset) has both", () => {
  const main = bundle("berth-ipam.js");
  const cli = bundle("berth-ipam-cli.js");
  assert.not.ok(main.includes(YARGS), "no yargs in the program's bundle");
  assert.not.ok(main.includes(CLI), "no CLI in the program's bundle");
  assert.ok(main.includes("berth-ipam-cli.js"), "the program loads the CLI's asset by name");
  assert.ok(cli.includes(YARGS) && cli.includes(CLI));
  assert.ok(main.length * 2 < cli.length, `program ${main.length} bytes, CLI ${cli.length}`);
});

test.run();
