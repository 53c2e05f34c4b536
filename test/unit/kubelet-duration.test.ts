// Go time.Duration text (metav1.Duration in the kubelet API): String() and ParseDuration.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { formatGoDuration, formatSeconds, parseGoDuration } from "../../shared/kubelet/duration.ts";

const test = suite("kubelet: Go durations");
const S = 10n ** 9n;

test("formatSeconds prints like Go: 6h0m0s, 10m0s, 1m30s, 45s, 0s", () => {
  assert.is(formatSeconds(21600), "6h0m0s");
  assert.is(formatSeconds(600), "10m0s");
  assert.is(formatSeconds(90), "1m30s");
  assert.is(formatSeconds(45), "45s");
  assert.is(formatSeconds(0), "0s");
  assert.is(formatSeconds(21599), "5h59m59s");
  assert.is(formatSeconds(12.9), "12s", "whole seconds, truncated");
});

test("formatGoDuration: sub-second units and fractions as Go prints them", () => {
  assert.is(formatGoDuration(1500n * 10n ** 6n), "1.5s");
  assert.is(formatGoDuration(500n * 10n ** 6n), "500ms");
  assert.is(formatGoDuration(1500n), "1.5µs");
  assert.is(formatGoDuration(7n), "7ns");
  assert.is(formatGoDuration(-90n * S), "-1m30s");
  assert.is(formatGoDuration(3600n * S + 500n * 10n ** 6n), "1h0m0.5s");
});

test("parseGoDuration accepts what time.ParseDuration accepts", () => {
  const ns = (t: string) => {
    const p = parseGoDuration(t);
    return p.ok ? p.ns : undefined;
  };
  assert.is(ns("12h"), 12n * 3600n * S);
  assert.is(ns("1h30m"), 5400n * S);
  assert.is(ns("1.5h"), 5400n * S);
  assert.is(ns("0"), 0n);
  assert.is(ns("-1s"), -S);
  assert.is(ns("+5m"), 300n * S);
  assert.is(ns("100ms"), 100n * 10n ** 6n);
  assert.is(ns("3us"), 3000n);
  assert.is(ns("3µs"), 3000n);
  assert.is(ns(".5s"), 500n * 10n ** 6n);
  assert.is(ns("6h0m0s"), 6n * 3600n * S);
});

test("parseGoDuration refuses with Go's messages", () => {
  const err = (t: string) => {
    const p = parseGoDuration(t);
    return p.ok ? "" : p.error;
  };
  assert.is(err(""), 'time: invalid duration ""');
  assert.is(err("12"), 'time: missing unit in duration "12"');
  assert.is(err("3d"), 'time: unknown unit "d" in duration "3d"');
  assert.is(err("h"), 'time: invalid duration "h"');
  assert.is(err("."), 'time: invalid duration "."');
  assert.is(err("9999999999h"), 'time: invalid duration "9999999999h"');
});

test("round trip: every whole-second duration up to a day", () => {
  for (let s = 0; s <= 86400; s += 37) {
    const p = parseGoDuration(formatSeconds(s));
    assert.ok(p.ok, String(s));
    if (p.ok) assert.is(p.ns, BigInt(s) * S, String(s));
  }
});

test.run();
