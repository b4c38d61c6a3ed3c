// A small SVG line chart for the scale benchmarks, written by hand like the harness's bar chart
// (bench/lib/report.ts): measured points joined by solid lines, one colour per series, on log-log axes
// (so a power law is a straight line and its slope is the growth), optional dashed fit lines, and
// hollow markers for values that are extrapolated rather than measured.

export interface Series {
  readonly name: string;
  readonly points: readonly { x: number; y: number }[];
  /** Dashed line (a fit), drawn without markers. */
  readonly fit?: readonly { x: number; y: number }[];
  /** The legend's second line for the fit (default "fit"). */
  readonly fitLabel?: string;
  /** Hollow markers joined to the last measured point by a dotted line: not measured. */
  readonly extrapolated?: readonly { x: number; y: number; label?: string }[];
}

export interface ChartOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Linear y axis instead of log (x stays log). */
  readonly linearY?: boolean;
  readonly width?: number;
  readonly height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#17becf'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** 1-2-5 ticks per decade inside [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function linearTicks(lo: number, hi: number): number[] {
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const mult = [1, 2, 5, 10].find((m) => (hi - lo) / (m * step) <= 6) ?? 10;
  const s = mult * step;
  const out: number[] = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + s * 1e-9; v += s) out.push(Number(v.toPrecision(12)));
  return out;
}

function tickLabel(v: number): string {
  if (v >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (v >= 1e3) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** Splits text into lines of at most `max` characters, at spaces. */
function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 460;
  const left = 80;
  const right = 210;
  const sub = o.subtitle === undefined ? [] : wrap(o.subtitle, Math.floor(width / 6.2));
  const top = 44 + sub.length * 15;
  const bottom = 56;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const all = o.series.flatMap((s) => [...s.points, ...(s.fit ?? []), ...(s.extrapolated ?? [])]);
  const xs = all.map((p) => p.x).filter((x) => x > 0 && Number.isFinite(x));
  const ys = all.map((p) => p.y).filter((y) => (o.linearY === true ? true : y > 0) && Number.isFinite(y));
  if (xs.length === 0 || ys.length === 0) throw new RangeError(`chart "${o.title}" has no points`);
  const xlo = Math.min(...xs) / 1.3;
  const xhi = Math.max(...xs) * 1.3;
  let ylo: number;
  let yhi: number;
  if (o.linearY === true) {
    ylo = Math.min(0, ...ys);
    yhi = Math.max(...ys) * 1.1 || 1;
  } else {
    ylo = Math.min(...ys) / 1.5;
    yhi = Math.max(...ys) * 1.5;
  }
  const X = (x: number): number =>
    left + ((Math.log10(x) - Math.log10(xlo)) / (Math.log10(xhi) - Math.log10(xlo))) * plotW;
  const Y = (y: number): number =>
    o.linearY === true
      ? top + plotH - ((y - ylo) / (yhi - ylo)) * plotH
      : top + plotH - ((Math.log10(y) - Math.log10(ylo)) / (Math.log10(yhi) - Math.log10(ylo))) * plotH;
  const f = (v: number): string => v.toFixed(1);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  for (const [i, line] of sub.entries())
    parts.push(
      `<text x="${width / 2}" y="${38 + i * 15}" text-anchor="middle" fill="#555">${esc(line)}</text>`,
    );
  for (const t of logTicks(xlo, xhi)) {
    parts.push(
      `<line x1="${f(X(t))}" y1="${top}" x2="${f(X(t))}" y2="${top + plotH}" stroke="#e5e5e5"/>`,
      `<text x="${f(X(t))}" y="${top + plotH + 16}" text-anchor="middle" fill="#333">${tickLabel(t)}</text>`,
    );
  }
  for (const t of o.linearY === true ? linearTicks(ylo, yhi) : logTicks(ylo, yhi)) {
    parts.push(
      `<line x1="${left}" y1="${f(Y(t))}" x2="${left + plotW}" y2="${f(Y(t))}" stroke="#e5e5e5"/>`,
      `<text x="${left - 6}" y="${f(Y(t) + 4)}" text-anchor="end" fill="#333">${tickLabel(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${left + plotW / 2}" y="${height - 16}" text-anchor="middle">${esc(`${o.xLabel} (log scale)`)}</text>`,
    `<text transform="translate(18 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(`${o.yLabel}${o.linearY === true ? '' : ' (log scale)'}`)}</text>`,
  );
  const inside = (p: { x: number; y: number }): boolean =>
    p.x > 0 && Number.isFinite(p.y) && (o.linearY === true || p.y > 0);
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(inside);
    const fit = (s.fit ?? []).filter(inside);
    if (fit.length >= 2)
      parts.push(
        `<polyline points="${fit.map((p) => `${f(X(p.x))},${f(Y(p.y))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1" stroke-dasharray="5 4" opacity="0.7"/>`,
      );
    if (pts.length >= 2)
      parts.push(
        `<polyline points="${pts.map((p) => `${f(X(p.x))},${f(Y(p.y))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    for (const p of pts)
      parts.push(
        `<circle cx="${f(X(p.x))}" cy="${f(Y(p.y))}" r="3.5" fill="${color}"><title>${esc(`${s.name}: ${tickLabel(p.x)} → ${Number(p.y.toPrecision(4))}`)}</title></circle>`,
      );
    const last = pts[pts.length - 1];
    for (const e of (s.extrapolated ?? []).filter(inside)) {
      if (last !== undefined)
        parts.push(
          `<line x1="${f(X(last.x))}" y1="${f(Y(last.y))}" x2="${f(X(e.x))}" y2="${f(Y(e.y))}" stroke="${color}" stroke-width="1.5" stroke-dasharray="2 3"/>`,
        );
      parts.push(
        `<circle cx="${f(X(e.x))}" cy="${f(Y(e.y))}" r="4.5" fill="#fff" stroke="${color}" stroke-width="2"><title>${esc(`${s.name}: ${tickLabel(e.x)} → ${Number(e.y.toPrecision(4))} (extrapolated, not measured)`)}</title></circle>`,
        `<text x="${f(X(e.x) - 8)}" y="${f(Y(e.y) - 9)}" text-anchor="end" font-size="10" fill="${color}">${esc(e.label ?? 'extrapolated')}</text>`,
      );
    }
    const ly = top + 8 + i * 34;
    parts.push(
      `<line x1="${left + plotW + 14}" y1="${ly}" x2="${left + plotW + 34}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${left + plotW + 24}" cy="${ly}" r="3.5" fill="${color}"/>`,
      `<text x="${left + plotW + 40}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
    if (fit.length >= 2)
      parts.push(
        `<line x1="${left + plotW + 14}" y1="${ly + 14}" x2="${left + plotW + 34}" y2="${ly + 14}" stroke="${color}" stroke-dasharray="5 4"/>`,
        `<text x="${left + plotW + 40}" y="${ly + 18}" fill="#555" font-size="10">${esc(s.fitLabel ?? 'fit')}</text>`,
      );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
