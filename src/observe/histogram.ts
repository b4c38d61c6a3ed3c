// Duration histograms kept by worker threads as plain bucket counts (structured-cloneable, summed on the
// main thread, where prom-client exposes them). One observation is a loop over a dozen bounds: cheap
// enough for once per handshake, never per chunk.

/** Upper bounds in seconds, for TLS handshakes and tunnel setup (sub-millisecond on a LAN to seconds). */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export interface HistogramCounts {
  /** Observations per bucket (not cumulative); one more entry than the bounds, for +Inf. */
  readonly counts: number[];
  sum: number;
  count: number;
}

export function emptyHistogram(bounds: readonly number[] = DURATION_BUCKETS): HistogramCounts {
  return { counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 };
}

export function observe(
  h: HistogramCounts,
  value: number,
  bounds: readonly number[] = DURATION_BUCKETS,
): void {
  let i = 0;
  while (i < bounds.length && value > (bounds[i] ?? Number.POSITIVE_INFINITY)) i++;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += value;
  h.count++;
}

export function addHistogram(into: HistogramCounts, from: HistogramCounts): void {
  for (let i = 0; i < from.counts.length; i++) into.counts[i] = (into.counts[i] ?? 0) + (from.counts[i] ?? 0);
  into.sum += from.sum;
  into.count += from.count;
}

/** Cumulative counts per bound, `le` as Prometheus prints it, ending with +Inf. */
export function cumulative(
  h: HistogramCounts,
  bounds: readonly number[] = DURATION_BUCKETS,
): { le: string; count: number }[] {
  const out: { le: string; count: number }[] = [];
  let acc = 0;
  for (let i = 0; i <= bounds.length; i++) {
    acc += h.counts[i] ?? 0;
    out.push({ le: i < bounds.length ? String(bounds[i]) : '+Inf', count: acc });
  }
  return out;
}
