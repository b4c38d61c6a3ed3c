// Small statistics over repeated samples: median and spread, nothing fancier.

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

/** The p-th percentile (0..100) of a sorted array, nearest-rank. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max − min) / median: how far single runs spread, as a fraction of the median. */
  readonly spread: number;
  readonly samples: readonly number[];
}

export function summarize(samples: readonly number[]): Summary {
  const ok = samples.filter((x) => Number.isFinite(x));
  const m = median(ok);
  const min = ok.length === 0 ? Number.NaN : Math.min(...ok);
  const max = ok.length === 0 ? Number.NaN : Math.max(...ok);
  return { median: m, min, max, spread: m === 0 ? Number.NaN : (max - min) / m, samples };
}
