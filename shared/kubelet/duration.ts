// Go time.Duration text, as the kubelet reads cacheDuration (metav1.Duration -> time.ParseDuration)
// and as Go prints it (time.Duration.String: "6h0m0s", "10m0s", "1.5s", "500ms", "0s").
// Nanoseconds as bigint, like Go's int64, so no value is rounded on the way.

const NS = 1n;
const US = 1000n * NS;
const MS = 1000n * US;
const S = 1000n * MS;
const M = 60n * S;
const H = 60n * M;
const MAX = (1n << 63n) - 1n;

/** Fraction digits of v/unit with trailing zeros dropped ("" when v is a whole number of units). */
function frac(v: bigint, unit: bigint): string {
  const rem = v % unit;
  if (rem === 0n) return "";
  const width = unit.toString().length - 1;
  return `.${rem.toString().padStart(width, "0").replace(/0+$/, "")}`;
}

export function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return "0s";
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < S) {
    const unit = u < US ? NS : u < MS ? US : MS;
    const name = unit === NS ? "ns" : unit === US ? "µs" : "ms";
    out = `${u / unit}${frac(u, unit)}${name}`;
  } else {
    out = "";
    if (u >= H) {
      out += `${u / H}h`;
      u %= H;
    }
    if (out || u >= M) {
      out += `${u / M}m`;
      u %= M;
    }
    out += `${u / S}${frac(u, S)}s`;
  }
  return neg ? `-${out}` : out;
}

/** Go prints whole seconds the same way: 21600 -> "6h0m0s". */
export function formatSeconds(seconds: number): string {
  return formatGoDuration(BigInt(Math.trunc(seconds)) * S);
}

const UNITS: Record<string, bigint> = { ns: NS, us: US, µs: US, μs: US, ms: MS, s: S, m: M, h: H };

export type ParsedDuration = { ok: true; ns: bigint } | { ok: false; error: string };

/** time.ParseDuration: "[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+", or "0"; error texts as Go's. */
export function parseGoDuration(text: string): ParsedDuration {
  const quoted = JSON.stringify(text);
  const invalid = (): ParsedDuration => ({ ok: false, error: `time: invalid duration ${quoted}` });
  let s = text;
  let neg = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return { ok: true, ns: 0n };
  if (s === "") return invalid();
  let total = 0n;
  while (s !== "") {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s);
    const whole = m?.[1] ?? "";
    const fracDigits = m?.[2];
    if (whole === "" && (fracDigits === undefined || fracDigits === "")) return invalid();
    s = s.slice(m?.[0].length ?? 0);
    const unitMatch = /^[^0-9.]*/.exec(s);
    const unitName = unitMatch?.[0] ?? "";
    if (unitName === "") return { ok: false, error: `time: missing unit in duration ${quoted}` };
    const unit = UNITS[unitName];
    if (unit === undefined)
      return { ok: false, error: `time: unknown unit ${JSON.stringify(unitName)} in duration ${quoted}` };
    s = s.slice(unitName.length);
    let v = BigInt(whole || "0") * unit;
    if (fracDigits) {
      const scale = 10n ** BigInt(fracDigits.length);
      v += (BigInt(fracDigits) * unit) / scale;
    }
    total += v;
    if (total > MAX) return invalid();
  }
  return { ok: true, ns: neg ? -total : total };
}

export const NANOS_PER_SECOND = S;
