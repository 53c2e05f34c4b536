// npm run bench: runs every bench/*.bench.ts in turn (each prints its own markdown table).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const only = process.argv.slice(2);
let failed = 0;
for (const f of readdirSync(import.meta.dirname)
  .filter((n) => n.endsWith(".bench.ts"))
  .sort()) {
  if (only.length && !only.some((o) => f.startsWith(o))) continue;
  process.stdout.write(`\n## ${f.replace(".bench.ts", "")}\n\n`);
  const r = spawnSync(process.execPath, [join(import.meta.dirname, f)], { stdio: "inherit" });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
