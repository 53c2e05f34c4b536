// npm test: runs each stage (a folder of test/ holding *.test.ts uvu suites) in its own process,
// prints each stage's counts, and ends with the line CI reads: "N passed, N failed".
// Usage: node test/run.ts [stage...]   (default: every stage, in STAGE_ORDER)
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";

const here = import.meta.dirname;
const STAGE_ORDER = [
  "unit",
  "blackbox",
  "ops",
  "parity",
  "credential-provider",
  "packaging",
  "netns",
  "libcni",
  "podman",
  "registry",
  "containerd",
];

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

function stages(): string[] {
  const found = readdirSync(here).filter((d) => {
    const p = join(here, d);
    return statSync(p).isDirectory() && !["helpers", "fixtures", ".tmp"].includes(d) && testFiles(p).length > 0;
  });
  const rank = (s: string) => (STAGE_ORDER.includes(s) ? STAGE_ORDER.indexOf(s) : STAGE_ORDER.length);
  return found.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

type Counts = { passed: number; failed: number; skipped: number };

function runStage(stage: string): Promise<Counts> {
  const files = testFiles(join(here, stage));
  return new Promise((done) => {
    const child = spawn(process.execPath, [join(here, "helpers", "uvu-stage.ts"), ...files], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, FORCE_COLOR: "0" },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.on("close", (code) => {
      const num = (label: string) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
      const total = num("Total");
      const passed = num("Passed");
      const skipped = num("Skipped");
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        // The stage crashed before uvu could summarise: count it as one failure, never as a pass.
        done({ passed: 0, failed: 1, skipped: 0 });
        return;
      }
      // uvu's Total counts the tests it ran; skipped ones are counted apart.
      const failed = Math.max(total - passed, code === 0 ? 0 : 1);
      done({ passed, failed, skipped: skipped || 0 });
    });
  });
}

const wanted = process.argv.slice(2);
const all = stages();
const chosen = wanted.length ? all.filter((s) => wanted.includes(s)) : all;
const total: Counts = { passed: 0, failed: 0, skipped: 0 };
const lines: string[] = [];
for (const stage of chosen) {
  process.stdout.write(
    `\n=== stage ${stage} (${testFiles(join(here, stage)).map((f) => relative(resolve(here, ".."), f)).length} files)\n`,
  );
  const c = await runStage(stage);
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
  lines.push(`stage ${stage}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
}
process.stdout.write(`\n${lines.join("\n")}\n`);
process.stdout.write(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped\n`);
process.exitCode = total.failed > 0 ? 1 : 0;
