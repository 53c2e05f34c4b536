// Start-up cost of the single-file executables as a runtime or the kubelet sees it: exec to exit
// of `CNI_COMMAND=VERSION berth-ipam` and of `--version`, next to bare `node -e 0` of the same
// Node (process.execPath, the SEA base), with binary size and peak RSS, all with an empty
// environment. Ratios are against the baseline measured in the same run.
// The binaries are measured as install.sh leaves them: copied with ordinary writes to another
// directory. Freshly written by `node --build-sea`, the same binary showed 77 MiB peak RSS instead
// of 41 MiB (apparently its page cache in large folios, each touched folio counted whole) until
// the page cache was dropped or the file copied.
// Usage: node bench/packaging.bench.ts   (BENCH_RUNS=N, default 40; needs npm run build first)
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CREDENTIAL_PROVIDER, IPAM_PLUGIN } from "../test/helpers/exec.ts";
import { quantile, type Stats as FullStats } from "./stats.ts";
import { timedExec, type Timed } from "./timed-exec.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 40);
const RSS_RUNS = 5;
const GNU_TIME = "/usr/bin/time";

type Case = {
  program: string;
  label: string;
  file: string;
  args: string[];
  env: Record<string, string>;
  stdin: string;
  binary?: string;
};

function exec(c: Case, wrap?: string[]): Promise<Timed> {
  const [file, args] = wrap ? [wrap[0]!, [...wrap.slice(1), c.file, ...c.args]] : [c.file, c.args];
  return timedExec(file, args, { env: c.env, stdin: c.stdin });
}

type Stats = Pick<FullStats, "median" | "p95">;

/** Rounds that run every case once each, so a load change on the machine hits all of them alike. */
async function timings(cases: Case[]): Promise<Map<Case, Stats>> {
  for (let i = 0; i < 3; i++) for (const c of cases) await exec(c); // page cache warm, like a busy node
  const ms = new Map<Case, number[]>(cases.map((c) => [c, []]));
  for (let i = 0; i < RUNS; i++) {
    for (const c of cases) {
      const r = await exec(c);
      if (r.code !== 0) throw new Error(`${c.program} ${c.label}: exit ${r.code}`);
      ms.get(c)!.push(r.ms);
    }
  }
  return new Map(cases.map((c) => [c, { median: quantile(ms.get(c)!, 0.5), p95: quantile(ms.get(c)!, 0.95) }]));
}

/** Median peak RSS in MiB from GNU time's %M (KiB), or undefined without /usr/bin/time. */
async function peakRss(c: Case, dir: string): Promise<number | undefined> {
  if (!existsSync(GNU_TIME)) return undefined;
  const out = join(dir, "rss");
  const kib: number[] = [];
  for (let i = 0; i < RSS_RUNS; i++) {
    await exec(c, [GNU_TIME, "-f", "%M", "-o", out]);
    kib.push(Number(readFileSync(out, "utf8").trim().split("\n").pop()));
  }
  return quantile(kib, 0.5) / 1024;
}

/** A copy made the way install.sh makes one (cat: 128 KiB reads and writes), mode 0755. */
function installedCopy(file: string, dir: string): string {
  const to = join(dir, file.split("/").pop()!);
  const src = openSync(file, "r");
  const dst = openSync(to, "w", 0o755);
  const buf = Buffer.allocUnsafe(128 * 1024);
  try {
    for (let n = readSync(src, buf); n > 0; n = readSync(src, buf)) writeSync(dst, buf, 0, n);
  } finally {
    closeSync(src);
    closeSync(dst);
  }
  return to;
}

const MiB = (n: number): string => (n / 1024 / 1024).toFixed(1);
const fmt = (n: number): string => n.toFixed(1);

const dir = mkdtempSync(join(tmpdir(), "berth-bench-packaging-"));
const IPAM = existsSync(IPAM_PLUGIN) ? installedCopy(IPAM_PLUGIN, dir) : IPAM_PLUGIN;
const PROVIDER = existsSync(CREDENTIAL_PROVIDER) ? installedCopy(CREDENTIAL_PROVIDER, dir) : CREDENTIAL_PROVIDER;
const baseline: Case = {
  program: "node",
  label: "`node -e 0` (baseline)",
  file: process.execPath,
  args: ["-e", "0"],
  env: {},
  stdin: "",
};
const programs: { name: string; cases: Case[] }[] = [
  {
    name: "berth-ipam",
    cases: [
      {
        program: "berth-ipam",
        label: "`CNI_COMMAND=VERSION`",
        file: IPAM,
        args: [],
        env: { CNI_COMMAND: "VERSION" },
        stdin: '{"cniVersion":"1.0.0"}',
      },
      { program: "berth-ipam", label: "`--version`", file: IPAM, args: ["--version"], env: {}, stdin: "" },
    ],
  },
  {
    name: "berth-credential-provider",
    cases: [
      {
        program: "berth-credential-provider",
        label: "`--version`",
        file: PROVIDER,
        args: ["--version"],
        env: {},
        stdin: "",
      },
    ],
  },
];

try {
  const built = programs.filter((p) => existsSync(p.cases[0]!.file));
  const stats = await timings([baseline, ...built.flatMap((p) => p.cases)]);
  const base = stats.get(baseline)!;
  const baseRss = await peakRss(baseline, dir);
  process.stdout.write(
    `\nStart-up of the single-file executables (${RUNS} rounds, empty environment, Node ${process.version} at ${process.execPath})\n`,
  );
  for (const p of programs) {
    const file = p.cases[0]!.file;
    if (!built.includes(p)) {
      process.stdout.write(`\n### ${p.name}\n\nnot built (${file})\n`);
      continue;
    }
    process.stdout.write(
      `\n### ${p.name}: ${MiB(statSync(file).size)} MiB (node ${MiB(statSync(process.execPath).size)} MiB unstripped)\n\n`,
    );
    process.stdout.write(
      "| run | median ms | p95 ms | median ÷ node | p95 ÷ node | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|\n",
    );
    const row = (label: string, t: Stats, rss: number | undefined) =>
      `| ${label} | ${fmt(t.median)} | ${fmt(t.p95)} | ${(t.median / base.median).toFixed(2)} | ${(t.p95 / base.p95).toFixed(2)} | ${rss === undefined ? "n/a (no /usr/bin/time)" : fmt(rss)} |\n`;
    process.stdout.write(row(baseline.label, base, baseRss));
    for (const c of p.cases) process.stdout.write(row(c.label, stats.get(c)!, await peakRss(c, dir)));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
