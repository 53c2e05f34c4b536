// Order statistics shared by the benchmarks: nearest-rank quantiles over the samples of one run.
export type Stats = { median: number; p95: number; n: number };

export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export const stats = (xs: readonly number[]): Stats => ({
  median: quantile(xs, 0.5),
  p95: quantile(xs, 0.95),
  n: xs.length,
});
