// Policy compile at scale (issue 8, Build 4): a grid of policies × workloads through the real engine
// (src/policy, src/inventory), one process per cell (bench/scale/policy-child.ts): parse + compile time,
// the compiled snapshot's heap, inventory build, the per-identity selection warm-up, and decisions/s
// uncached (decide()) and cached (engine.decide()).
import { fileURLToPath } from 'node:url';
import { runNodeJson } from '../lib/child.ts';
import {
  describeGrowth,
  fitGrowthGroups,
  fitLinear,
  fitPower2,
  type GrowthFit,
  type LinearFit,
  type Point,
  type Power2Fit,
} from '../lib/growth.ts';
import { lineChart, type Series } from '../lib/plot.ts';
import { median } from '../lib/stats.ts';
import { type Chart, fitJson, fmt, type PartResult, round, table } from './report.ts';

/** GC on demand; no bytecode flushing, which would free code between two heap readings and look like a saving. */
const CHILD_FLAGS = ['--expose-gc', '--no-flush-bytecode'];
const CHILD = fileURLToPath(new URL('policy-child.ts', import.meta.url));

export interface PolicyCell {
  readonly policies: number;
  readonly workloads: number;
  readonly rules: number;
  readonly identities: number;
  /** Mean number of ingress rules selecting an identity: what an uncached decision walks. */
  readonly ingressRulesPerIdentity: number;
  readonly parseMs: number;
  readonly compileMs: number;
  readonly parseCompileMs: number;
  readonly parseCompileSamplesMs: readonly number[];
  readonly inventoryMs: number;
  readonly selectionWarmMs: number;
  readonly snapshotHeapMiB: number;
  readonly inventoryHeapMiB: number;
  readonly selectionMemoHeapMiB: number;
  readonly uncachedPerS: number;
  readonly uncachedSamples: readonly number[];
  readonly cachedPerS: number;
  readonly cachedSamples: readonly number[];
  readonly allowedShare: number;
  readonly rssMiB: number;
  /** The cached engine's LRU after the cached-decision phase. */
  readonly cache: { size: number; pairs: number; hits: number; misses: number };
}

export interface PolicyScaleOptions {
  readonly policies: readonly number[];
  readonly workloads: readonly number[];
  readonly reps: number;
  readonly seconds: number;
}

/** A figure of the grid and how it is fitted: costs grow, so rates are fitted as time per decision. */
interface Metric {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly value: (c: PolicyCell) => number;
  /** The cost fitted (default the value). */
  readonly cost?: (c: PolicyCell) => number;
  readonly costLabel?: string;
  readonly digits: number;
  /** Why the figure is tabled but not fitted. */
  readonly noFit?: string;
}

const METRICS: readonly Metric[] = [
  {
    key: 'parseCompileMs',
    label: 'parse + validate + compile',
    unit: 'ms',
    value: (c) => c.parseCompileMs,
    digits: 1,
  },
  { key: 'compileMs', label: 'compileSnapshot alone', unit: 'ms', value: (c) => c.compileMs, digits: 2 },
  {
    key: 'snapshotHeapMiB',
    label: 'compiled snapshot heap',
    unit: 'MiB',
    value: (c) => c.snapshotHeapMiB,
    digits: 2,
  },
  { key: 'inventoryMs', label: 'inventory build', unit: 'ms', value: (c) => c.inventoryMs, digits: 0 },
  {
    key: 'inventoryHeapMiB',
    label: 'inventory heap',
    unit: 'MiB',
    value: (c) => c.inventoryHeapMiB,
    digits: 1,
  },
  {
    key: 'selectionWarmMs',
    label: 'rule selection warm-up (all identities)',
    unit: 'ms',
    value: (c) => c.selectionWarmMs,
    digits: 0,
  },
  {
    key: 'selectionMemoHeapMiB',
    label: 'selection memo heap',
    unit: 'MiB',
    value: (c) => c.selectionMemoHeapMiB,
    digits: 2,
    noFit: 'not fitted: within ±2 MiB of zero here, below what a heap difference resolves',
  },
  {
    key: 'ingressRulesPerIdentity',
    label: 'ingress rules selecting an identity (mean)',
    unit: 'rules',
    value: (c) => c.ingressRulesPerIdentity,
    digits: 1,
  },
  {
    key: 'uncachedPerS',
    label: 'decisions/s, uncached (decide())',
    unit: '/s',
    value: (c) => c.uncachedPerS,
    cost: (c) => 1e6 / c.uncachedPerS,
    costLabel: 'µs per uncached decision',
    digits: 0,
  },
  {
    key: 'cachedPerS',
    label: 'decisions/s, cached (engine.decide(), 10,000 hot pairs)',
    unit: '/s',
    value: (c) => c.cachedPerS,
    cost: (c) => 1e6 / c.cachedPerS,
    costLabel: 'µs per cached decision',
    digits: 0,
  },
];

interface MetricFit {
  readonly vsPolicies: GrowthFit | undefined;
  readonly vsWorkloads: GrowthFit | undefined;
  readonly power: Power2Fit | undefined;
}

/** A fit needs positive values; a figure that is zero or negative (noise around nothing) has none. */
function attempt<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

function fitMetric(cells: readonly PolicyCell[], m: Metric, o: PolicyScaleOptions): MetricFit {
  const cost = m.cost ?? m.value;
  const groups = (axis: 'policies' | 'workloads'): Point[][] => {
    const other = axis === 'policies' ? 'workloads' : 'policies';
    const keys = axis === 'policies' ? o.workloads : o.policies;
    return keys.map((k) => cells.filter((c) => c[other] === k).map((c) => ({ n: c[axis], y: cost(c) })));
  };
  return {
    vsPolicies: attempt(() => fitGrowthGroups(groups('policies'))),
    vsWorkloads: attempt(() => fitGrowthGroups(groups('workloads'))),
    power: attempt(() => fitPower2(cells.map((c) => ({ a: c.policies, b: c.workloads, y: cost(c) })))),
  };
}

export async function policyScale(o: PolicyScaleOptions): Promise<PartResult> {
  const cells: PolicyCell[] = [];
  for (const w of o.workloads) {
    for (const p of o.policies) {
      const t0 = Date.now();
      const c = await runNodeJson<PolicyCell>(
        CHILD,
        [
          '--policies',
          String(p),
          '--workloads',
          String(w),
          '--reps',
          String(o.reps),
          '--seconds',
          String(o.seconds),
        ],
        { nodeFlags: CHILD_FLAGS, timeoutMs: 600_000 },
      );
      cells.push(c);
      process.stderr.write(
        `policy: ${p} policies × ${w} workloads (${((Date.now() - t0) / 1000).toFixed(0)} s): compile ${fmt(c.parseCompileMs)} ms, snapshot ${fmt(c.snapshotHeapMiB, 2)} MiB, uncached ${Math.round(c.uncachedPerS)}/s, cached ${Math.round(c.cachedPerS)}/s\n`,
      );
    }
  }
  const fitted = METRICS.filter((m) => m.noFit === undefined);
  const fits = Object.fromEntries(fitted.map((m) => [m.key, fitMetric(cells, m, o)]));
  // What an uncached decision walks: the rules selecting its endpoints (here ∝ policies / workloads).
  const perRule = fitLinear(cells.map((c) => ({ n: c.ingressRulesPerIdentity, y: 1e6 / c.uncachedPerS })));
  const json = {
    description:
      'Policy compile and decisions across a grid of policies × workloads (synthetic cluster of bench/lib/policy-gen.ts: 100 namespaces, 5 pods per identity).',
    grid: { policies: o.policies, workloads: o.workloads, repetitions: o.reps, secondsPerRate: o.seconds },
    cells,
    uncachedMicrosVsRulesPerIdentity: {
      fixedMicros: perRule.intercept,
      microsPerRule: perRule.perUnit,
      r2: perRule.r2,
    },
    fits: Object.fromEntries(
      Object.entries(fits).map(([k, f]) => [
        k,
        {
          fitted: METRICS.find((m) => m.key === k)?.costLabel ?? k,
          vsPolicies: f.vsPolicies === undefined ? null : fitJson(f.vsPolicies),
          vsWorkloads: f.vsWorkloads === undefined ? null : fitJson(f.vsWorkloads),
          power:
            f.power === undefined
              ? null
              : {
                  policiesExponent: round(f.power.expA, 3),
                  workloadsExponent: round(f.power.expB, 3),
                  r2: round(f.power.r2, 4),
                },
        },
      ]),
    ),
  };
  return {
    name: 'policy',
    json,
    markdown: markdown(o, cells, fits, perRule),
    charts: charts(o, cells, fits),
  };
}

function cell(cells: readonly PolicyCell[], p: number, w: number): PolicyCell | undefined {
  return cells.find((c) => c.policies === p && c.workloads === w);
}

function markdown(
  o: PolicyScaleOptions,
  cells: readonly PolicyCell[],
  fits: Record<string, MetricFit>,
  perRule: LinearFit,
): string {
  const L: string[] = [
    '## Policy compile',
    '',
    `Grid: policies ${o.policies.map((p) => p.toLocaleString('en-US')).join(', ')} × workloads ${o.workloads.map((w) => w.toLocaleString('en-US')).join(', ')}; one process per cell; times are medians of ${o.reps} repetitions (rates: ${o.reps} windows of ${o.seconds} s), heaps after a full GC. Policies and workloads from \`bench/lib/policy-gen.ts\` (the generator of \`bench/policy-bench.ts\`): 100 namespaces, one identity per 5 pods, 2 % cluster-wide policies.`,
    '',
  ];
  const wl = (w: number): string => `${w.toLocaleString('en-US')} workloads`;
  for (const m of METRICS) {
    L.push(
      `### ${m.label} (${m.unit})`,
      '',
      ...table(
        ['policies', ...o.workloads.map(wl)],
        o.policies.map((p) => [
          p.toLocaleString('en-US'),
          ...o.workloads.map((w) => {
            const c = cell(cells, p, w);
            return c === undefined ? '–' : fmt(m.value(c), m.digits);
          }),
        ]),
      ),
      '',
    );
  }
  L.push('### Growth', '');
  L.push(
    ...table(
      [
        'figure (fitted as)',
        'vs policies (slope)',
        'vs workloads (slope)',
        'power law: policies^a × workloads^b',
      ],
      METRICS.map((m) => {
        const f = fits[m.key];
        if (f === undefined) return [m.label, m.noFit ?? '–', '', ''];
        const g = (x: GrowthFit | undefined): string =>
          x === undefined ? '– (no positive values)' : describeGrowth(x);
        return [
          `${m.label}${m.costLabel === undefined ? '' : ` (${m.costLabel})`}`,
          g(f.vsPolicies),
          g(f.vsWorkloads),
          f.power === undefined
            ? '–'
            : `a = ${f.power.expA.toFixed(2)}, b = ${f.power.expB.toFixed(2)} (R² ${f.power.r2.toFixed(2)})`,
        ];
      }),
      '---',
    ),
    '',
    'Each figure has one shape fitted to every row (or column) of the grid at once, each with its own scale: the named model (`bench/lib/growth.ts`: least relative residual; a fixed part only where it halves the misfit and every series has four or more points, so never along the three workload counts) and the pooled log-log slope; the last column fits both axes at once.',
    '',
  );
  L.push(
    `An uncached decision walks the rules that select its endpoints; in this generator those grow with policies and shrink with workloads (the same policies spread over more apps). Over all ${cells.length} cells, least squares: µs per uncached decision ≈ ${fmt(perRule.intercept, 2)} + ${fmt(perRule.perUnit, 3)} × (ingress rules selecting an identity), R² ${fmt(perRule.r2, 2)}.`,
    '',
  );
  const identities = o.workloads.map(
    (w) => `${wl(w)}: ${median(cells.filter((c) => c.workloads === w).map((c) => c.identities))} identities`,
  );
  L.push(`Identities: ${identities.join('; ')}.`, '');
  return `${L.join('\n')}\n`;
}

function charts(
  o: PolicyScaleOptions,
  cells: readonly PolicyCell[],
  fits: Record<string, MetricFit>,
): Chart[] {
  const byW = (v: (c: PolicyCell) => number, label: (w: number) => string): Series[] =>
    o.workloads.map((w) => ({
      name: label(w),
      points: cells.filter((c) => c.workloads === w).map((c) => ({ x: c.policies, y: v(c) })),
    }));
  const k = (w: number): string => `${w >= 1000 ? `${w / 1000}k` : w} workloads`;
  const sub = (key: string, axis: 'vsPolicies' | 'vsWorkloads'): string => {
    const f = fits[key]?.[axis];
    return f === undefined
      ? ''
      : `${axis === 'vsPolicies' ? 'vs policies' : 'vs workloads'}: ${describeGrowth(f)}`;
  };
  const invRows = o.workloads.map((w) => cells.filter((c) => c.workloads === w));
  return [
    {
      file: 'policy-compile-time.svg',
      svg: lineChart({
        title: 'Policy parse + validate + compile time',
        subtitle: sub('parseCompileMs', 'vsPolicies'),
        xLabel: 'policies',
        yLabel: 'ms',
        series: byW((c) => c.parseCompileMs, k),
      }),
    },
    {
      file: 'policy-snapshot-heap.svg',
      svg: lineChart({
        title: 'Heap of the compiled policy snapshot',
        subtitle: sub('snapshotHeapMiB', 'vsPolicies'),
        xLabel: 'policies',
        yLabel: 'MiB',
        series: byW((c) => c.snapshotHeapMiB, k),
      }),
    },
    {
      file: 'policy-decisions.svg',
      svg: lineChart({
        title: 'Policy decisions per second (one thread)',
        subtitle: `uncached ${sub('uncachedPerS', 'vsPolicies')}; cached ${sub('cachedPerS', 'vsPolicies')} (fitted on µs per decision)`,
        xLabel: 'policies',
        yLabel: 'decisions/s',
        series: [
          ...byW(
            (c) => c.uncachedPerS,
            (w) => `uncached, ${k(w)}`,
          ),
          ...byW(
            (c) => c.cachedPerS,
            (w) => `cached, ${k(w)}`,
          ),
        ],
        height: 520,
      }),
    },
    {
      file: 'policy-inventory.svg',
      svg: lineChart({
        title: 'Inventory build time and heap',
        subtitle: `inventory build ${sub('inventoryMs', 'vsWorkloads')}; medians over the policy counts`,
        xLabel: 'workloads',
        yLabel: 'ms or MiB',
        series: [
          {
            name: 'inventory build (ms)',
            points: invRows.map((r, i) => ({ x: o.workloads[i]!, y: median(r.map((c) => c.inventoryMs)) })),
          },
          {
            name: 'inventory heap (MiB)',
            points: invRows.map((r, i) => ({
              x: o.workloads[i]!,
              y: median(r.map((c) => c.inventoryHeapMiB)),
            })),
          },
        ],
      }),
    },
  ];
}
