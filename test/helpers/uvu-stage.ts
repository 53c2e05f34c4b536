// Loads every suite file of one stage into one uvu run, the way the uvu CLI does.
import { pathToFileURL } from "node:url";

const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: unknown[][]; UVU_INDEX: number };
g.UVU_DEFER = 1;
g.UVU_QUEUE = [];
const { exec } = await import("uvu");
const files = process.argv.slice(2);
for (const [i, file] of files.entries()) {
  g.UVU_QUEUE.push([file]);
  g.UVU_INDEX = i;
  await import(pathToFileURL(file).href);
}
await exec(false);
