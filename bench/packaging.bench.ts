// Start-up cost of the single-file executables as a runtime or the kubelet sees it: exec to exit
// of `CNI_COMMAND=VERSION berth-ipam` and of `--version`, next to bare `node -e 0` of the same
// Node (process.execPath, the SEA base), with binary size and peak RSS, all with an empty
// environment. Ratios are against the baseline measured in the same run.
// The binaries are measured as install.sh leaves them: copied with ordinary writes to another
// directory. Freshly written by `node --build-sea`, the same binary showed 77 MiB peak RSS instead
// of 41 MiB (apparently its page cache in large folios, each touched folio counted whole) until
// the page cache was dropped or the file copied.
// Then the one executable against the earlier layout, one single executable per program (built
// here by packaging/build.ts's buildSeparate), in the same run and interleaved (A/B, B/A, ...):
// each program's start-up for CNI VERSION, an ADD on an empty pool and a credential cache hit
// (target: within 1.05x of the separate binaries), and the disk each layout takes.
// Usage: node bench/packaging.bench.ts   (BENCH_RUNS=N, default 40; BENCH_AB_RUNS=N for the comparison,
// default 100; needs npm run build first)
import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CREDENTIAL_PROVIDER, IPAM_PLUGIN, ROOT } from "../test/helpers/exec.ts";
import { startAwsEndpoint } from "../test/helpers/aws-endpoint.ts";
import { buildSeparate } from "../packaging/build.ts";
import { ARCHES, hostArch } from "../packaging/runtimes.ts";
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
const ONE_BINARY_TARGET = 1.05;
/** A 5% question needs more rounds than the table above: the machine's noise is larger than that. */
const AB_RUNS = Number(process.env.BENCH_AB_RUNS ?? 100);

const CPU_BATCHES = Number(process.env.BENCH_CPU_BATCHES ?? 20);
const CPU_BATCH = 10;

/**
 * CPU milliseconds per start of a case: a bash runs it CPU_BATCH times with the case's environment
 * and stdin and reports its children's user and sys time (`times`, millisecond resolution). A
 * CNI_CONTAINERID gets a per-start suffix, so every ADD allocates on a still almost empty pool.
 */
async function cpuPerStart(c: Case, idPrefix: string): Promise<number> {
  const script = [
    "for ((i = 1; i <= BERTH_N; i++)); do",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's ${VAR+x}, not a template
    '  if [ -n "${CNI_CONTAINERID+x}" ]; then export CNI_CONTAINERID="$BERTH_ID$i"; fi',
    '  "$BERTH_FILE" "$@" <<<"$BERTH_IN" >/dev/null 2>&1 || exit 1',
    "done",
    "times",
  ].join("\n");
  const env = { ...c.env, BERTH_N: String(CPU_BATCH), BERTH_FILE: c.file, BERTH_IN: c.stdin, BERTH_ID: idPrefix };
  const r = await timedExec("/bin/bash", ["-c", script, "bash", ...c.args], { env });
  if (r.code !== 0) throw new Error(`${c.program} ${c.label}: a start failed`);
  // times: the shell's own user/sys, then its children's: "0m0.123s 0m0.045s".
  const children = r.stdout.trim().split("\n").pop() ?? "";
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (secs.length !== 2) throw new Error(`bash times: ${JSON.stringify(r.stdout)}`);
  return ((secs[0]! + secs[1]!) * 1000) / CPU_BATCH;
}

/** One layout's programs as install.sh leaves them: every name a path, maybe one file. */
type Layout = { label: string; ipam: string; provider: string };

/** The same cases for both layouts, in rounds that alternate which layout goes first. */
async function oneVersusSeparate(): Promise<void> {
  if (!existsSync(IPAM) || !existsSync(PROVIDER)) return;
  process.stderr.write("building the separate binaries (the earlier layout) for comparison…\n");
  const separateBuild = await buildSeparate(join(dir, "separate-build"));
  const sep = join(dir, "separate");
  const one = join(dir, "one");
  for (const d of [sep, one]) mkdirSync(d);
  const separate: Layout = {
    label: "separate binaries",
    ipam: installedCopy(separateBuild["berth-ipam"]!, sep),
    provider: installedCopy(separateBuild["berth-credential-provider"]!, sep),
  };
  const oneIpam = installedCopy(IPAM, one);
  linkSync(oneIpam, join(one, "berth-credential-provider"));
  const combined: Layout = { label: "one binary", ipam: oneIpam, provider: join(one, "berth-credential-provider") };

  const endpoint = await startAwsEndpoint();
  try {
    const request = JSON.stringify({
      apiVersion: "credentialprovider.kubelet.k8s.io/v1",
      kind: "CredentialProviderRequest",
      image: "123456789012.dkr.ecr.us-west-2.amazonaws.com/app",
    });
    const cniEnv = (command: string) => ({
      CNI_COMMAND: command,
      CNI_CONTAINERID: "bench",
      CNI_NETNS: "/var/run/netns/bench",
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
    });
    type Pair = { label: string; cases: [Case, Case]; after?: [Case, Case] };
    const pairs: Pair[] = [];
    const both = <T>(f: (l: Layout, i: number) => T): [T, T] => [f(separate, 0), f(combined, 1)];
    pairs.push({
      label: "berth-ipam `CNI_COMMAND=VERSION`",
      cases: both((l) => ({
        program: "berth-ipam",
        label: l.label,
        file: l.ipam,
        args: [],
        env: { CNI_COMMAND: "VERSION" },
        stdin: '{"cniVersion":"1.0.0"}',
      })),
    });
    const pool = (i: number) =>
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "benchnet",
        type: "bridge",
        ipam: { type: "berth-ipam", dataDir: join(dir, `pool-${i}`), subnet: "10.128.0.0/16" },
      });
    pairs.push({
      label: "berth-ipam `ADD`, empty pool (a DEL after each, untimed)",
      cases: both((l, i) => ({
        program: "berth-ipam",
        label: l.label,
        file: l.ipam,
        args: [],
        env: cniEnv("ADD"),
        stdin: pool(i),
      })),
      after: both((l, i) => ({
        program: "berth-ipam",
        label: l.label,
        file: l.ipam,
        args: [],
        env: cniEnv("DEL"),
        stdin: pool(i),
      })),
    });
    const hit = both((l, i) => ({
      program: "berth-credential-provider",
      label: l.label,
      file: l.provider,
      args: ["get-credentials", `--cache-dir=${join(dir, `cache-${i}`)}`],
      env: { PATH: "/usr/bin:/bin", ...endpoint.env() },
      stdin: request,
    }));
    for (const c of hit) if ((await exec(c)).code !== 0) throw new Error(`priming ${c.label}'s cache failed`);
    const calls = endpoint.calls.length;
    pairs.push({ label: "berth-credential-provider: cache hit (the kubelet's path)", cases: hit });
    pairs.push({
      label: "berth-credential-provider `--version`",
      cases: both((l) => ({
        program: "berth-credential-provider",
        label: l.label,
        file: l.provider,
        args: ["--version"],
        env: {},
        stdin: "",
      })),
    });

    const samples = pairs.map(() => [[], []] as [number[], number[]]);
    for (let round = -3; round < AB_RUNS; round++) {
      for (const [k, pair] of pairs.entries()) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const side of order) {
          const r = await exec(pair.cases[side]!);
          if (r.code !== 0) throw new Error(`${pair.label}, ${pair.cases[side]!.label}: exit ${r.code}`);
          if (round >= 0) samples[k]![side]!.push(r.ms);
          if (pair.after) await exec(pair.after[side]!);
        }
      }
    }
    if (endpoint.calls.length !== calls) throw new Error("a cache-hit case called the endpoint: not a cache hit");

    process.stdout.write(
      `\n### One binary for both programs against separate binaries (${AB_RUNS} rounds each, interleaved, empty environment)\n\n`,
    );
    process.stdout.write(
      `| case | separate median ms | one binary median ms | ratio | separate p95 | one binary p95 | target ≤ ${ONE_BINARY_TARGET}x |\n|---|---:|---:|---:|---:|---:|---|\n`,
    );
    for (const [k, pair] of pairs.entries()) {
      const [a, b] = samples[k]!;
      const ratio = quantile(b!, 0.5) / quantile(a!, 0.5);
      process.stdout.write(
        `| ${pair.label} | ${fmt(quantile(a!, 0.5))} | ${fmt(quantile(b!, 0.5))} | ${ratio.toFixed(3)} | ${fmt(quantile(a!, 0.95))} | ${fmt(quantile(b!, 0.95))} | ${ratio <= ONE_BINARY_TARGET ? "met" : "missed"} |\n`,
      );
    }

    // The same cases by CPU time (user + sys of the started process), which other processes on
    // a shared machine disturb far less than wall time: bash's `times` over batches of starts.
    const cpu = pairs.map(() => [[], []] as [number[], number[]]);
    for (let batch = 0; batch < CPU_BATCHES; batch++) {
      for (const [k, pair] of pairs.entries()) {
        for (const side of batch % 2 === 0 ? [0, 1] : [1, 0]) {
          cpu[k]![side]!.push(await cpuPerStart(pair.cases[side]!, `b${batch}-`));
        }
      }
    }
    process.stdout.write(
      `\n### The same, CPU time per start (user + sys, bash \`times\` over ${CPU_BATCHES} interleaved batches of ${CPU_BATCH} starts; ADD with a new container ID each time)\n\n`,
    );
    process.stdout.write(
      `| case | separate median ms | one binary median ms | ratio | target ≤ ${ONE_BINARY_TARGET}x |\n|---|---:|---:|---:|---|\n`,
    );
    for (const [k, pair] of pairs.entries()) {
      const [a, b] = cpu[k]!;
      const ratio = quantile(b!, 0.5) / quantile(a!, 0.5);
      process.stdout.write(
        `| ${pair.label.replace(" (a DEL after each, untimed)", "")} | ${quantile(a!, 0.5).toFixed(2)} | ${quantile(b!, 0.5).toFixed(2)} | ${ratio.toFixed(3)} | ${ratio <= ONE_BINARY_TARGET ? "met" : "missed"} |\n`,
      );
    }
  } finally {
    await endpoint.close();
  }

  // Disk: what a node with both programs carries, per layout (a hard link's blocks count once).
  const rows: [string, number][] = [
    [
      "separate binaries: berth-ipam + berth-credential-provider",
      statSync(separate.ipam).size + statSync(separate.provider).size,
    ],
    [`one binary (${hostArch()}), both names`, statSync(combined.ipam).size],
  ];
  for (const arch of ARCHES) {
    const f = join(ROOT, "dist", `linux-${arch}`, "bin", "berth-ipam");
    if (arch !== hostArch() && existsSync(f)) rows.push([`one binary (${arch}), both names`, statSync(f).size]);
    const base = join(ROOT, "dist", "cache", `node-v${process.versions.node}-linux-${arch}`);
    if (existsSync(base)) rows.push([`the stripped Node it is built on (${arch})`, statSync(base).size]);
  }
  const release = join(ROOT, "dist", "release");
  if (existsSync(release))
    for (const f of readdirSync(release).sort())
      if (f.endsWith(".tar.gz") || f.endsWith(".deb")) rows.push([`release: ${f}`, statSync(join(release, f)).size]);
  process.stdout.write("\n### Disk\n\n| what | MiB |\n|---|---:|\n");
  for (const [what, bytes] of rows) process.stdout.write(`| ${what} | ${MiB(bytes)} |\n`);
}
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
  await oneVersusSeparate();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
