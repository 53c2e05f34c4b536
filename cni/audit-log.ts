// The opt-in audit log, `"ipam": {"log": {"file": …, "level": …}}`: one JSON line per CNI command
// (what was asked, what was reserved or released, the outcome and CNI code, how long it took).
// Loaded only when a config has `log` (cni/main.ts). Many plugin processes append at once, so each
// line is one write(2) on an O_APPEND descriptor: the kernel places it whole at the end of the file,
// never interleaved with another process's line. Above a size cap the file is renamed to `.1`.
// A log that cannot be written never changes the CNI answer: the failure goes to stderr.
import { closeSync, fstatSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { isAbsolute } from "node:path";
import type { Invocation } from "../shared/cni/dispatch.ts";
import { writeStderr } from "../shared/io.ts";
import { asJsonObject, errorMessage, type JsonObject } from "../shared/json.ts";
import type { Reservation } from "./store/store.ts";
import { formatIp } from "./ip.ts";

export const LOG_LEVELS = ["error", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

export type LogConfig = {
  file: string;
  /** error: failed commands only; info: every command; debug: every command with more of its input. */
  level: LogLevel;
  /** Rotate to `<file>.1` once the file is larger than this. */
  maxBytes: number;
};

/** The `log` section, or the reason it is unusable (one line). */
export function parseLogConfig(v: unknown): { ok: true; value: LogConfig } | { ok: false; error: string } {
  const o = asJsonObject(v);
  if (!o) return { ok: false, error: "ipam.log must be an object {file, level}" };
  if (typeof o.file !== "string" || !isAbsolute(o.file) || o.file.includes("\0"))
    return { ok: false, error: "ipam.log.file must be an absolute path" };
  const level = o.level ?? "info";
  if (typeof level !== "string" || !(LOG_LEVELS as readonly string[]).includes(level))
    return { ok: false, error: `ipam.log.level must be one of ${LOG_LEVELS.join(", ")}` };
  const maxBytes = o.maxBytes ?? DEFAULT_MAX_BYTES;
  if (typeof maxBytes !== "number" || !Number.isSafeInteger(maxBytes) || maxBytes < 1)
    return { ok: false, error: "ipam.log.maxBytes must be a positive integer" };
  return { ok: true, value: { file: o.file, level: level as LogLevel, maxBytes } };
}

const addressesOf = (inv: Invocation): string[] => (inv.result?.ips ?? []).map((ip) => ip.address.split("/")[0] ?? "");

/** The line for one command, or undefined when the level leaves it out. */
export function auditLine(
  cfg: LogConfig,
  inv: Invocation,
  released: readonly Reservation[],
  now: Date,
  durationMs: number,
): string | undefined {
  if (cfg.level === "error" && !inv.error) return undefined;
  const reserved = addressesOf(inv);
  // A repeated ADD frees what the attachment held and takes it again: that address was kept, not released.
  const freed = [...new Set(released.map((r) => formatIp(r.ip)))].filter((a) => !reserved.includes(a));
  const name = inv.config?.name;
  const line: JsonObject = {
    time: now.toISOString(),
    level: inv.error ? "error" : "info",
    command: inv.env.CNI_COMMAND ?? "",
    network: typeof name === "string" ? name : "",
    containerID: inv.env.CNI_CONTAINERID ?? "",
    ifname: inv.env.CNI_IFNAME ?? "",
    reserved,
    released: freed,
    outcome: inv.error ? "error" : "ok",
    code: inv.error ? inv.error.code : 0,
  };
  if (inv.error) line.msg = inv.error.message;
  if (cfg.level === "debug") {
    line.cniVersion = inv.version;
    line.netns = inv.env.CNI_NETNS ?? "";
    line.args = inv.env.CNI_ARGS ?? "";
    if (inv.error?.details) line.details = inv.error.details;
  }
  line.durationMs = Math.round(durationMs * 10) / 10;
  return `${JSON.stringify(line)}\n`;
}

/**
 * Appends one line with a single write, then rotates if the file grew past the cap. Only a process
 * that still sees its own file under the name renames it, so a file just rotated by another is not
 * rotated again; two processes rotating within the same microseconds can still drop one `.1`
 * generation (there is no atomic compare-and-rename), which only shortens the history kept.
 */
export function appendLine(cfg: LogConfig, line: string): void {
  const fd = openSync(cfg.file, "a", 0o600);
  try {
    const data = Buffer.from(line, "utf8");
    const n = writeSync(fd, data);
    // A second write could land after another process's line; a short write is reported instead.
    if (n !== data.length) throw new Error(`short write (${n} of ${data.length} bytes)`);
    const st = fstatSync(fd);
    if (st.size > cfg.maxBytes && statSync(cfg.file).ino === st.ino) renameSync(cfg.file, `${cfg.file}.1`);
  } finally {
    closeSync(fd);
  }
}

/** Logs one finished CNI command if its config asks for it; never throws. */
export function writeAuditLog(inv: Invocation, released: readonly Reservation[]): void {
  const section = asJsonObject(inv.config?.ipam)?.log;
  if (section === undefined || section === null) return;
  const cfg = parseLogConfig(section);
  if (!cfg.ok) {
    writeStderr(`berth-ipam: ${cfg.error}; nothing logged\n`);
    return;
  }
  try {
    const line = auditLine(cfg.value, inv, released, new Date(), process.uptime() * 1000);
    if (line) appendLine(cfg.value, line);
  } catch (e) {
    writeStderr(`berth-ipam: audit log ${cfg.value.file}: ${errorMessage(e).split("\n")[0]}\n`);
  }
}
