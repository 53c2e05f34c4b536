// A logging stand-in for a CNI plugin: a shell script installed under the plugin's name that
// records what the runtime (or the parent plugin) sent — the CNI_* environment and stdin — then
// runs the real plugin with the same input and records its stdout and exit code. Tests read the
// records to see exactly what a real runtime passed (containerd's K8S_POD_* arguments, the
// prevResult of a DEL) without changing what the plugin does.
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type CniCallRecord = {
  /** Start time (ns since the epoch) and pid: orders the records. */
  id: string;
  command: string;
  env: Record<string, string>;
  /** CNI_ARGS split into key/value pairs. */
  args: Record<string, string>;
  stdin: unknown;
  /** The plugin's stdout, parsed (undefined if it was not JSON). */
  result: unknown;
  code: number;
};

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Writes `<binDir>/<name>`, a script that logs each call into `logDir` and execs `target`.
 * Each call leaves `<id>.env`, `<id>.stdin`, `<id>.stdout` and, last, `<id>.rc`.
 */
export function installLoggingPlugin(binDir: string, name: string, target: string, logDir: string): string {
  mkdirSync(logDir, { recursive: true });
  const path = join(binDir, name);
  writeFileSync(
    path,
    [
      "#!/bin/sh",
      `d=${quote(logDir)}`,
      'n="$(date +%s%N)-$$"',
      'env | grep "^CNI_" > "$d/$n.env"',
      'cat > "$d/$n.stdin"',
      `${quote(target)} < "$d/$n.stdin" > "$d/$n.stdout"`,
      "rc=$?",
      'cat "$d/$n.stdout"',
      'echo "$rc" > "$d/$n.rc.tmp" && mv "$d/$n.rc.tmp" "$d/$n.rc"',
      'exit "$rc"',
      "",
    ].join("\n"),
  );
  chmodSync(path, 0o755);
  return path;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Every finished call logged in `logDir`, oldest first. */
export function readCniCalls(logDir: string): CniCallRecord[] {
  if (!existsSync(logDir)) return [];
  const ids = readdirSync(logDir)
    .filter((f) => f.endsWith(".rc"))
    .map((f) => f.slice(0, -3))
    .sort((a, b) => {
      const [ta = "", pa = ""] = a.split("-");
      const [tb = "", pb = ""] = b.split("-");
      return ta.length - tb.length || ta.localeCompare(tb) || Number(pa) - Number(pb);
    });
  return ids.map((id) => {
    const read = (ext: string) => readFileSync(join(logDir, `${id}.${ext}`), "utf8");
    const env: Record<string, string> = {};
    for (const line of read("env").split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
    }
    const args: Record<string, string> = {};
    for (const pair of (env.CNI_ARGS ?? "").split(";")) {
      const eq = pair.indexOf("=");
      if (eq > 0) args[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return {
      id,
      command: env.CNI_COMMAND ?? "",
      env,
      args,
      stdin: parseJson(read("stdin")),
      result: parseJson(read("stdout")),
      code: Number(read("rc").trim()),
    };
  });
}
