// What each part of the scale benchmark hands back, and the few helpers its reports share: results go
// to bench/results/scale/<part>.json and <part>.md, one SVG per plot.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeGrowth, type GrowthFit, predictPower } from '../lib/growth.ts';

export interface Chart {
  /** File name under the results directory, e.g. svid-memory.svg. */
  readonly file: string;
  readonly svg: string;
}

export interface PartResult {
  readonly name: 'svid' | 'policy' | 'conns';
  readonly json: Record<string, unknown>;
  readonly markdown: string;
  readonly charts: readonly Chart[];
}

export function writePart(outDir: string, part: PartResult): string[] {
  mkdirSync(outDir, { recursive: true });
  const files = [`${part.name}.json`, `${part.name}.md`, ...part.charts.map((c) => c.file)];
  writeFileSync(join(outDir, `${part.name}.json`), `${JSON.stringify(part.json, null, 2)}\n`);
  writeFileSync(join(outDir, `${part.name}.md`), part.markdown);
  for (const c of part.charts) writeFileSync(join(outDir, c.file), c.svg);
  return files.map((f) => join(outDir, f));
}

export function fmt(v: number | undefined, digits = 1): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Three significant digits, thousands separated: 0.00123, 1.23, 12,300. */
export function sig(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const digits = a === 0 ? 0 : Math.max(0, 2 - Math.floor(Math.log10(a)));
  return fmt(v, Math.min(digits, 6));
}

export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  align?: string,
): string[] {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, i) => (i === 0 ? '---' : (align ?? '---:'))).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

/** The fit as JSON (plus the power law's value at the given n, when asked). */
export function fitJson(fit: GrowthFit, at?: number): Record<string, unknown> {
  return {
    growth: describeGrowth(fit),
    model: fit.model,
    label: fit.label,
    slope: round(fit.slope, 3),
    r2: round(fit.r2, 4),
    withFixedPart: fit.withFixedPart,
    fixedShare: round(fit.fixedShare, 3),
    ...(Number.isFinite(fit.fixed) ? { fixed: fit.fixed, factor: fit.factor } : {}),
    relRms: round(fit.relRms, 4),
    relRmsByModel: Object.fromEntries(Object.entries(fit.relRmsByModel).map(([k, v]) => [k, round(v, 4)])),
    ...(at === undefined ? {} : { at, predicted: predictPower(fit, at) }),
  };
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The power law through the fit, sampled along the measured range (for a dashed line). */
export function fitLine(fit: GrowthFit, lo: number, hi: number): { x: number; y: number }[] {
  const out: { x: number; y: number }[] = [];
  for (let i = 0; i <= 20; i++) {
    const x = lo * (hi / lo) ** (i / 20);
    out.push({ x, y: predictPower(fit, x) });
  }
  return out;
}
