// What the operator commands print: aligned columns for people, JSON for scripts, each written
// to stdout in one piece.
import { writeStdout } from "../../shared/io.ts";

export type Column = { header: string; right?: boolean };

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c) => c.header.length);
  for (const r of rows) {
    for (let i = 0; i < widths.length; i++) {
      const n = (r[i] ?? "").length;
      if (n > (widths[i] ?? 0)) widths[i] = n;
    }
  }
  const last = columns.length - 1;
  // Plain loops: this runs once per reservation (list of a full /16 is 60,000 lines).
  const line = (cells: readonly string[]): string => {
    let out = "";
    for (let i = 0; i <= last; i++) {
      const cell = cells[i] ?? "";
      const gap = (widths[i] ?? 0) - cell.length;
      if (i > 0) out += "  ";
      if (columns[i]?.right) out += " ".repeat(gap) + cell;
      else out += i === last ? cell : cell + " ".repeat(gap);
    }
    return out.trimEnd();
  };
  const lines = [line(columns.map((c) => c.header))];
  for (const r of rows) lines.push(line(r));
  return `${lines.join("\n")}\n`;
}

/** Aligned "key  value" lines, for one thing described field by field. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${k.padEnd(w)}  ${v}`.trimEnd()).join("\n")}\n`;
}

// V8's JSON.parse source text access (Node 21+), not yet in TypeScript's lib: lets a bigint be
// written as the exact integer it is.
const rawJSON = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;
const exact = (_k: string, v: unknown): unknown => (typeof v === "bigint" ? rawJSON(v.toString()) : v);

/** JSON with exact big integers (an IPv6 range's size does not fit a double); a list one element a line. */
export function json(value: unknown): string {
  if (!Array.isArray(value)) return `${JSON.stringify(value, exact, 2)}\n`;
  if (value.length === 0) return "[]\n";
  return `[\n${value.map((v) => JSON.stringify(v, exact)).join(",\n")}\n]\n`;
}

export const print = (text: string): void => writeStdout(text);

/** RFC 3339 in UTC, or "-" in text for a time the store does not know. */
export const timeText = (d: Date | undefined): string => (d ? d.toISOString() : "-");
