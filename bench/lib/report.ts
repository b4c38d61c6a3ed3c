// The run's output: latest.json (every figure per path, samples, medians, ratios to HAProxy and to no
// proxy, targets), latest.md (the tables) and latest.svg (ratios to HAProxy as bars, written by hand).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProfileResult } from './profile-run.ts';
import { type Summary, summarize } from './stats.ts';

export type PathName =
  | 'no-proxy'
  | 'ward-mtls'
  | 'ward-mtls-2w'
  | 'ward-plain'
  | 'haproxy'
  | 'nginx'
  | 'stunnel';

export const PATH_LABEL: Record<string, string> = {
  'no-proxy': 'no proxy',
  'ward-mtls': 'ward mTLS (HBONE)',
  'ward-mtls-2w': 'ward mTLS, 2 workers',
  'ward-plain': 'ward plaintext',
  haproxy: 'HAProxy',
  nginx: 'nginx stream',
  stunnel: 'stunnel',
};

interface FigureInfo {
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly digits: number;
}

export const FIGURES: Record<string, FigureInfo> = {
  bulk_1_gbps: { label: 'bulk, 1 iperf3 stream', unit: 'Gbit/s', better: 'higher', digits: 2 },
  bulk_8_gbps: { label: 'bulk, 8 iperf3 streams', unit: 'Gbit/s', better: 'higher', digits: 2 },
  keepalive_rps: { label: 'keep-alive requests/s (50 conns)', unit: 'req/s', better: 'higher', digits: 0 },
  keepalive_p50_ms: { label: 'keep-alive p50 latency', unit: 'ms', better: 'lower', digits: 2 },
  keepalive_p99_ms: { label: 'keep-alive p99 latency', unit: 'ms', better: 'lower', digits: 2 },
  fixed1k_p50_ms: { label: 'p50 latency at 1,000 req/s', unit: 'ms', better: 'lower', digits: 3 },
  fixed1k_p99_ms: { label: 'p99 latency at 1,000 req/s', unit: 'ms', better: 'lower', digits: 3 },
  fixed1k_added_p50_ms: {
    label: 'added p50 at 1,000 req/s (vs no proxy)',
    unit: 'ms',
    better: 'lower',
    digits: 3,
  },
  fixed1k_added_p99_ms: {
    label: 'added p99 at 1,000 req/s (vs no proxy)',
    unit: 'ms',
    better: 'lower',
    digits: 3,
  },
  newconn_per_s: {
    label: 'new connections/s (fresh TCP per request)',
    unit: 'conn/s',
    better: 'higher',
    digits: 0,
  },
  rss_idle_mib: { label: 'RSS idle, both hops', unit: 'MiB', better: 'lower', digits: 1 },
  rss_idle_node_mib: { label: 'RSS idle, per hop/node', unit: 'MiB', better: 'lower', digits: 1 },
  cpu_s_per_gb: { label: 'CPU per GB (bulk), both hops', unit: 's/GB', better: 'lower', digits: 2 },
  cpu_us_per_request: {
    label: 'CPU per keep-alive request, both hops',
    unit: 'µs',
    better: 'lower',
    digits: 1,
  },
  cpu_us_per_newconn: { label: 'CPU per new connection, both hops', unit: 'µs', better: 'lower', digits: 0 },
};

/** The idle-connection figures of one count N (rss_N_mib, kib_per_conn_N), placed after the idle RSS rows. */
function addIdleFigures(counts: readonly number[]): void {
  const entries = Object.entries(FIGURES);
  const at = entries.findIndex(([k]) => k === 'cpu_s_per_gb');
  const extra: [string, FigureInfo][] = counts.flatMap((n): [string, FigureInfo][] => [
    [
      `rss_${n}_mib`,
      {
        label: `RSS, ${n.toLocaleString('en-US')} idle connections, both hops`,
        unit: 'MiB',
        better: 'lower',
        digits: 1,
      },
    ],
    [
      `kib_per_conn_${n}`,
      {
        label: `memory per idle connection (${n.toLocaleString('en-US')}), both hops`,
        unit: 'KiB',
        better: 'lower',
        digits: 1,
      },
    ],
  ]);
  const merged = [...entries.slice(0, at), ...extra.filter(([k]) => !(k in FIGURES)), ...entries.slice(at)];
  for (const k of Object.keys(FIGURES)) delete FIGURES[k];
  for (const [k, v] of merged) FIGURES[k] = v;
}

interface Target {
  readonly name: string;
  readonly figure: string;
  readonly op: '>=' | '<=';
  readonly threshold: number;
  /** The HAProxy figure the ratio is taken against (default the same figure). */
  readonly against?: string;
}

/** Issue 8's targets, as ratios of ward mTLS to HAProxy in the same run. */
export const TARGETS: readonly Target[] = [
  { name: 'bulk, 1 stream', figure: 'bulk_1_gbps', op: '>=', threshold: 1 },
  { name: 'bulk, 8 streams', figure: 'bulk_8_gbps', op: '>=', threshold: 1 },
  { name: 'keep-alive requests/s', figure: 'keepalive_rps', op: '>=', threshold: 1 },
  { name: 'keep-alive p99', figure: 'keepalive_p99_ms', op: '<=', threshold: 1 },
  { name: 'new connections/s', figure: 'newconn_per_s', op: '>=', threshold: 3 },
  { name: 'memory per idle connection (1,000)', figure: 'kib_per_conn_1000', op: '<=', threshold: 1 },
  {
    name: 'idle RSS of ward on a node vs both HAProxy hops',
    figure: 'rss_idle_node_mib',
    against: 'rss_idle_mib',
    op: '<=',
    threshold: 1.5,
  },
  { name: 'CPU per keep-alive request', figure: 'cpu_us_per_request', op: '<=', threshold: 1 },
];

export interface RunData {
  readonly meta: Record<string, unknown>;
  readonly samples: Record<string, Record<string, number>[]>;
  readonly notes: readonly string[];
  readonly profile: ProfileResult | undefined;
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const fmtRatio = (r: number | undefined): string =>
  r === undefined || !Number.isFinite(r) ? '–' : `${r.toFixed(2)}×`;

export function writeReport(outDir: string, data: RunData): void {
  mkdirSync(outDir, { recursive: true });
  addIdleFigures((data.meta.idleCounts as number[] | undefined) ?? []);
  const paths = Object.keys(data.samples);
  const figures: Record<string, Record<string, Summary>> = {};
  for (const p of paths) {
    const names = new Set((data.samples[p] ?? []).flatMap((s) => Object.keys(s)));
    const out: Record<string, Summary> = {};
    for (const f of names) out[f] = summarize((data.samples[p] ?? []).map((s) => s[f] ?? Number.NaN));
    figures[p] = out;
  }
  const base = figures['no-proxy'];
  for (const p of paths) {
    const f = figures[p];
    if (f === undefined || base === undefined) continue;
    for (const q of ['p50', 'p99'] as const) {
      const mine = f[`fixed1k_${q}_ms`]?.median;
      const theirs = base[`fixed1k_${q}_ms`]?.median;
      if (mine !== undefined && theirs !== undefined) {
        const v = mine - theirs;
        f[`fixed1k_added_${q}_ms`] = { median: v, min: v, max: v, spread: Number.NaN, samples: [] };
      }
    }
  }
  const ratio = (p: string, f: string, ref: string, refFigure = f): number | undefined => {
    const a = figures[p]?.[f]?.median;
    const b = figures[ref]?.[refFigure]?.median;
    return a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
      ? undefined
      : a / b;
  };
  const ratiosToHaproxy: Record<string, Record<string, number>> = {};
  const ratiosToNoProxy: Record<string, Record<string, number>> = {};
  for (const p of paths) {
    ratiosToHaproxy[p] = {};
    ratiosToNoProxy[p] = {};
    for (const f of Object.keys(figures[p] ?? {})) {
      if (f.startsWith('fixed1k_added')) continue;
      const rh = ratio(p, f, 'haproxy');
      if (rh !== undefined) ratiosToHaproxy[p][f] = rh;
      const rn = ratio(p, f, 'no-proxy');
      if (rn !== undefined) ratiosToNoProxy[p][f] = rn;
    }
  }
  const targets = TARGETS.map((t) => {
    const r = ratio('ward-mtls', t.figure, 'haproxy', t.against);
    return {
      ...t,
      ratio: r ?? null,
      met: r === undefined ? null : t.op === '>=' ? r >= t.threshold : r <= t.threshold,
    };
  });
  const json = {
    meta: data.meta,
    notes: data.notes,
    figures: Object.fromEntries(
      paths.map((p) => [
        p,
        Object.fromEntries(Object.entries(figures[p] ?? {}).map(([f, s]) => [f, s.median])),
      ]),
    ),
    ratiosToHaproxy,
    ratiosToNoProxy,
    targets,
    spreads: figures,
    profile: data.profile ?? null,
  };
  writeFileSync(join(outDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(
    join(outDir, 'latest.md'),
    markdown(data, paths, figures, ratiosToHaproxy, ratiosToNoProxy, targets),
  );
  writeFileSync(join(outDir, 'latest.svg'), svg(paths, ratiosToHaproxy, data.meta));
}

function markdown(
  data: RunData,
  paths: string[],
  figures: Record<string, Record<string, Summary>>,
  toH: Record<string, Record<string, number>>,
  toN: Record<string, Record<string, number>>,
  targets: { name: string; op: string; threshold: number; ratio: number | null; met: boolean | null }[],
): string {
  const m = data.meta as {
    date: string;
    machine: Record<string, unknown>;
    versions: Record<string, string>;
    runs: number;
    secondsPerFigure: number;
  };
  const lines: string[] = [];
  lines.push(`# Benchmark run ${m.date}`, '');
  lines.push(
    `Machine: ${String(m.machine.cpu)}, ${String(m.machine.cpus)} CPUs, ${String(m.machine.memGiB)} GiB, kernel ${String(m.machine.kernel)}, load average at the end ${JSON.stringify(m.machine.loadavgAtEnd)}.`,
    `Versions: ${Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(
        ', ',
      )}. ${m.runs} interleaved run(s), ${m.secondsPerFigure} s per figure; medians, spread = (max − min) / median.`,
    '',
  );
  const shown = Object.keys(FIGURES).filter((f) => paths.some((p) => figures[p]?.[f] !== undefined));
  lines.push(`## Medians`, '');
  lines.push(`| figure | ${paths.map((p) => PATH_LABEL[p] ?? p).join(' | ')} |`);
  lines.push(`|---|${paths.map(() => '---:').join('|')}|`);
  for (const f of shown) {
    const info = FIGURES[f]!;
    const cells = paths.map((p) => {
      const s = figures[p]?.[f];
      if (s === undefined || !Number.isFinite(s.median)) return '–';
      const spread =
        Number.isFinite(s.spread) && s.samples.length > 1 ? ` ±${Math.round((s.spread * 100) / 2)}%` : '';
      return `${fmt(s.median, info.digits)}${spread}`;
    });
    lines.push(`| ${info.label} (${info.unit}) | ${cells.join(' | ')} |`);
  }
  lines.push('', `## Ratios to HAProxy (same run)`, '');
  const others = paths.filter((p) => p !== 'haproxy');
  lines.push(`| figure | better | ${others.map((p) => PATH_LABEL[p] ?? p).join(' | ')} |`);
  lines.push(`|---|---|${others.map(() => '---:').join('|')}|`);
  for (const f of shown.filter((x) => !x.startsWith('fixed1k_added'))) {
    const info = FIGURES[f]!;
    lines.push(
      `| ${info.label} | ${info.better} | ${others.map((p) => fmtRatio(toH[p]?.[f])).join(' | ')} |`,
    );
  }
  lines.push('', `## Ratios to no proxy (same run)`, '');
  const prox = paths.filter((p) => p !== 'no-proxy');
  const nf = [
    'bulk_1_gbps',
    'bulk_8_gbps',
    'keepalive_rps',
    'keepalive_p99_ms',
    'fixed1k_p50_ms',
    'fixed1k_p99_ms',
    'newconn_per_s',
  ];
  lines.push(`| figure | ${prox.map((p) => PATH_LABEL[p] ?? p).join(' | ')} |`);
  lines.push(`|---|${prox.map(() => '---:').join('|')}|`);
  for (const f of nf)
    lines.push(`| ${FIGURES[f]?.label ?? f} | ${prox.map((p) => fmtRatio(toN[p]?.[f])).join(' | ')} |`);
  lines.push('', `## Issue 8 targets (ward mTLS ÷ HAProxy)`, '');
  lines.push(`| target | needed | this run | met |`, `|---|---|---:|---|`);
  for (const t of targets)
    lines.push(
      `| ${t.name} | ${t.op === '>=' ? '≥' : '≤'} ${t.threshold} | ${fmtRatio(t.ratio ?? undefined)} | ${t.met === null ? '–' : t.met ? 'yes' : 'no'} |`,
    );
  if (data.notes.length > 0) lines.push('', '## Notes', '', ...data.notes.map((n) => `- ${n}`));
  if (data.profile !== undefined) lines.push('', ...profileMarkdown(data.profile));
  lines.push('');
  return lines.join('\n');
}

function profileMarkdown(p: ProfileResult): string[] {
  const out: string[] = ['## Profile of ward (mTLS path, 1 worker)', ''];
  for (const c of p.cpu) {
    const t = c.threads.filter((x) => x.busyMs > 0);
    if (t.length === 0) {
      out.push(`- ${c.load}, ward ${c.node}: no profile was written.`);
      continue;
    }
    for (const th of t.slice(0, 2)) {
      // CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile: thread 0 is the main thread.
      const tid = th.file.split('/').pop()?.split('.')[4];
      const thread = tid === '0' ? 'main thread' : `worker thread ${tid}`;
      out.push(
        `### ${c.load}, ward ${c.node}, ${thread} — on CPU ${th.busyMs.toFixed(0)} ms of the ${th.totalMs.toFixed(0)} ms load window`,
        '',
        `By area: ${Object.entries(th.byArea)
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}%`)
          .join(', ')}`,
        '',
        '| self % of busy | self ms | function | where |',
        '|---:|---:|---|---|',
        ...th.top
          .slice(0, 12)
          .map((f) => `| ${(f.share * 100).toFixed(1)} | ${f.ms.toFixed(0)} | \`${f.fn}\` | ${f.where} |`),
        '',
      );
    }
  }
  if (p.strace.length > 0) {
    out.push(
      '### Syscalls (strace -c -f on both hops)',
      '',
      '| path | load | syscalls per unit | top calls per unit |',
      '|---|---|---:|---|',
    );
    for (const s of p.strace)
      out.push(
        `| ${PATH_LABEL[s.path] ?? s.path} | ${s.load} | ${s.perUnit.toFixed(2)} per ${s.unit} | ${s.top
          .slice(0, 6)
          .map((r) => `${r.syscall} ${r.perUnit.toFixed(2)}`)
          .join(', ')} |`,
      );
  }
  return out;
}

const COLORS: Record<string, string> = {
  'ward-mtls': '#1f77b4',
  'ward-mtls-2w': '#6baed6',
  'ward-plain': '#9467bd',
  nginx: '#2ca02c',
  stunnel: '#ff7f0e',
  'no-proxy': '#7f7f7f',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Grouped horizontal bars of each path's ratio to HAProxy, per figure, on a log axis (1.0 = HAProxy). */
function svg(
  paths: string[],
  toH: Record<string, Record<string, number>>,
  meta: Record<string, unknown>,
): string {
  const idle = Object.keys(FIGURES).filter((f) => f.startsWith('kib_per_conn_'));
  const figs = [
    'bulk_1_gbps',
    'bulk_8_gbps',
    'keepalive_rps',
    'keepalive_p99_ms',
    'fixed1k_p99_ms',
    'newconn_per_s',
    ...idle,
    'rss_idle_mib',
    'cpu_s_per_gb',
    'cpu_us_per_request',
  ];
  const series = paths.filter((p) => p !== 'haproxy');
  const barH = 9;
  const groupH = series.length * barH + 14;
  const left = 300;
  const width = 900;
  const plotW = width - left - 30;
  const top = 60;
  const height = top + figs.length * groupH + 40 + 20 * Math.ceil(series.length / 3);
  const lo = Math.log10(0.05);
  const hi = Math.log10(50);
  const x = (v: number): number =>
    left + ((Math.log10(Math.min(50, Math.max(0.05, v))) - lo) / (hi - lo)) * plotW;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">Two-hop mTLS path: ratio to HAProxy in the same run (log scale; 1 = HAProxy)</text>`,
    `<text x="${width / 2}" y="34" text-anchor="middle" fill="#555">${esc(`${String(meta.date)} · ${JSON.stringify(meta.versions)} · medians of ${String(meta.runs)} runs`)}</text>`,
  );
  for (const t of [0.1, 0.25, 0.5, 1, 2, 4, 10, 25]) {
    parts.push(
      `<line x1="${x(t).toFixed(1)}" y1="${top - 6}" x2="${x(t).toFixed(1)}" y2="${top + figs.length * groupH}" stroke="${t === 1 ? '#000' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`,
      `<text x="${x(t).toFixed(1)}" y="${top - 10}" text-anchor="middle" fill="#333">${t}×</text>`,
    );
  }
  figs.forEach((f, gi) => {
    const y0 = top + gi * groupH;
    const info = FIGURES[f];
    parts.push(
      `<text x="${left - 8}" y="${y0 + groupH / 2}" text-anchor="end" dominant-baseline="middle">${esc(`${info?.label ?? f} (${info?.better ?? ''} is better)`)}</text>`,
    );
    series.forEach((p, si) => {
      const r = toH[p]?.[f];
      if (r === undefined) return;
      const y = y0 + 4 + si * barH;
      const x1 = x(1);
      const x2 = x(r);
      parts.push(
        `<rect x="${Math.min(x1, x2).toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(x2 - x1)).toFixed(1)}" height="${barH - 2}" fill="${COLORS[p] ?? '#999'}"><title>${esc(`${PATH_LABEL[p] ?? p}: ${r.toFixed(2)}×`)}</title></rect>`,
        `<text x="${(r >= 1 ? x2 + 3 : x2 - 3).toFixed(1)}" y="${y + barH - 3}" text-anchor="${r >= 1 ? 'start' : 'end'}" font-size="8" fill="#333">${r.toFixed(2)}</text>`,
      );
    });
  });
  const ly = top + figs.length * groupH + 20;
  series.forEach((p, i) => {
    const lx = left + (i % 3) * 200;
    const yy = ly + Math.floor(i / 3) * 20;
    parts.push(
      `<rect x="${lx}" y="${yy - 9}" width="12" height="10" fill="${COLORS[p] ?? '#999'}"/>`,
      `<text x="${lx + 16}" y="${yy}">${esc(PATH_LABEL[p] ?? p)}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
