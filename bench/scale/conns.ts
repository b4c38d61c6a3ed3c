// Memory per idle connection through ward at growing counts (issue 8, Build 4), in the namespace lab
// (needs root): client pod → ward a → HBONE mTLS → ward b → echo server, as bench/run.ts's ward-mtls path.
// For each count a fresh pair of wards (same config as the harness: the lab's mesh, 1 worker,
// proxy.maxConnections from wardMaxConns()), one warm-up, then bench/clients/hold.ts opens N echo
// connections; the figure is the RSS of both wards with N idle connections minus their RSS just before.
// Counts that need more descriptors than this machine allows are not measured; the fit says what the
// measured slope predicts for them, labelled as an extrapolation.
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/lab.ts';
import { NOFILE_HEADROOM, nofileWanted } from '../../src/proxy/rlimit.ts';
import { hardNofile, sleep, startIn } from '../lib/exec.ts';
import {
  describeGrowth,
  fitGrowth,
  fitLinear,
  type GrowthFit,
  type LinearFit,
  predictPower,
} from '../lib/growth.ts';
import { hold, type Target } from '../lib/load.ts';
import { openLoadLab } from '../lib/load-lab.ts';
import { BACKEND } from '../lib/peers.ts';
import { lineChart } from '../lib/plot.ts';
import { rssKiB } from '../lib/procstat.ts';
import { median } from '../lib/stats.ts';
import { startWards, stopWards, wardMaxConns } from '../lib/ward.ts';
import { type Chart, fitJson, fitLine, fmt, type PartResult, table } from './report.ts';

const PEER_PROGRAM = fileURLToPath(new URL('../../src/lab/peer.ts', import.meta.url));

/** The counts issue 8 asks about plus steps between; those that do not fit are extrapolated. */
export const WANTED_COUNTS: readonly number[] = [1000, 2500, 5000, 7500, 10_000, 50_000];
const EXTRAPOLATE_TO: readonly number[] = [10_000, 50_000];

export interface ConnsScaleOptions {
  readonly counts?: readonly number[];
  readonly reps: number;
}

export interface Sample {
  readonly n: number;
  readonly rep: number;
  readonly ready: number;
  readonly failed: number;
  readonly holdMs: number;
  /** VmRSS per ward (a, b) in KiB: just before the connections, then 1 s and 2 s after all were up. */
  readonly idleKiB: readonly number[];
  readonly after1KiB: readonly number[];
  readonly after2KiB: readonly number[];
}

/** What fits here: ward reserves 2 descriptors per proxy.maxConnections + 4,096 (src/proxy/rlimit.ts). */
export function connsThatFit(): number {
  return wardMaxConns() - 100;
}

export function whyNotMeasured(counts: readonly number[]): string {
  const hard = hardNofile();
  const list = counts.map((n) => n.toLocaleString('en-US')).join(' and ');
  const beyond = counts.filter((n) => n > hard).map((n) => n.toLocaleString('en-US'));
  return (
    `${list} idle connections are not measured here: the hard RLIMIT_NOFILE of this container is ${hard.toLocaleString('en-US')} and it lacks CAP_SYS_RESOURCE to raise it. ` +
    `ward refuses to start unless it can reserve 2 descriptors per proxy.maxConnections + ${NOFILE_HEADROOM.toLocaleString('en-US')} (src/proxy/rlimit.ts), so proxy.maxConnections can be at most ${wardMaxConns().toLocaleString('en-US')} (bench/lib/ward.ts, wardMaxConns) and ${connsThatFit().toLocaleString('en-US')} is the largest count held (100 spare).` +
    (beyond.length === 0
      ? ''
      : ` ${beyond.join(' and ')} would not fit even without that reserve: every process on the path holds at least one descriptor per connection (ward a the captured client socket, ward b the upstream socket, the holding client and the echo server one each), and ${hard.toLocaleString('en-US')} is the ceiling for each; one ward holding 50,000 would need 2 × 50,000 + ${NOFILE_HEADROOM.toLocaleString('en-US')} = ${nofileWanted(50_000).toLocaleString('en-US')} descriptors.`)
  );
}

async function one(lab: Lab, n: number, rep: number): Promise<Sample> {
  const ns = lab.pod('client').ns;
  const target: Target = { host: lab.pod('server').ip, port: BACKEND.echo };
  const wards = await startWards(lab, { mode: 'mtls', workers: 1, tag: `scale-${n}-${rep}` });
  try {
    const pids = wards.map((w) => w.pid);
    // Warm-up: a few connections end to end, and proof from ward a's access log that they were mTLS.
    const warm = await hold(ns, target, 20);
    await warm.release();
    if (warm.ready !== 20)
      throw new Error(`warm-up: ${warm.ready} of 20 connections (${warm.errors.join(', ')})`);
    await lab
      .node('a')
      .ward?.waitForLine((l) => l.component === 'access' && l.mtls === true, 15_000, 'an mTLS access line');
    await sleep(1500);
    const idleKiB = pids.map(rssKiB);
    const h = await hold(ns, target, n);
    await sleep(1000);
    const after1KiB = pids.map(rssKiB);
    await sleep(1000);
    const after2KiB = pids.map(rssKiB);
    await h.release();
    return { n, rep, ready: h.ready, failed: h.failed, holdMs: h.ms, idleKiB, after1KiB, after2KiB };
  } finally {
    await stopWards(lab);
  }
}

interface Row {
  readonly n: number;
  readonly samples: number;
  readonly idleMiB: number;
  readonly withMiB: number;
  readonly deltaMiB: number;
  readonly deltaAMiB: number;
  readonly deltaBMiB: number;
  readonly kibPerConn: number;
  readonly kibPerConnA: number;
  readonly kibPerConnB: number;
  readonly kibPerConnSamples: readonly number[];
}

const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);

function rows(samples: readonly Sample[], counts: readonly number[]): Row[] {
  return counts.flatMap((n) => {
    const ss = samples.filter((s) => s.n === n && s.ready > 0);
    if (ss.length === 0) return [];
    const d = (s: Sample, i?: number): number =>
      i === undefined ? sum(s.after2KiB) - sum(s.idleKiB) : (s.after2KiB[i] ?? 0) - (s.idleKiB[i] ?? 0);
    return [
      {
        n,
        samples: ss.length,
        idleMiB: median(ss.map((s) => sum(s.idleKiB))) / 1024,
        withMiB: median(ss.map((s) => sum(s.after2KiB))) / 1024,
        deltaMiB: median(ss.map((s) => d(s))) / 1024,
        deltaAMiB: median(ss.map((s) => d(s, 0))) / 1024,
        deltaBMiB: median(ss.map((s) => d(s, 1))) / 1024,
        kibPerConn: median(ss.map((s) => d(s) / s.ready)),
        kibPerConnA: median(ss.map((s) => d(s, 0) / s.ready)),
        kibPerConnB: median(ss.map((s) => d(s, 1) / s.ready)),
        kibPerConnSamples: ss.map((s) => d(s) / s.ready),
      },
    ];
  });
}

export async function connsScale(o: ConnsScaleOptions): Promise<PartResult> {
  if (process.getuid?.() !== 0) throw new Error('the connection part needs root (network namespaces)');
  const fits = connsThatFit();
  const wanted = o.counts ?? WANTED_COUNTS;
  const counts = wanted.filter((n) => n <= fits);
  const notMeasured = [...new Set([...wanted.filter((n) => n > fits), ...EXTRAPOLATE_TO])]
    .filter((n) => n > fits)
    .sort((a, b) => a - b);
  if (counts.length < 2) throw new Error(`at least two counts must fit in ${fits} connections`);
  const notes = notMeasured.length === 0 ? [] : [whyNotMeasured(notMeasured)];
  const { lab, close } = await openLoadLab(`scale${process.pid % 10000}`);
  const samples: Sample[] = [];
  try {
    startIn(
      lab.pod('server').ns,
      [process.execPath, PEER_PROGRAM, 'serve', '--port', String(BACKEND.echo)],
      ['ignore', 'ignore', 'ignore'],
    );
    await sleep(1000);
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const n of counts) {
        const t0 = Date.now();
        try {
          const s = await one(lab, n, rep);
          samples.push(s);
          if (s.failed > 0) notes.push(`run ${rep}, ${n} connections: ${s.failed} failed.`);
          process.stderr.write(
            `conns: run ${rep}/${o.reps}, ${n} idle connections (${((Date.now() - t0) / 1000).toFixed(0)} s): ready ${s.ready}, wards ${s.idleKiB.map((k) => fmt(k / 1024)).join('+')} → ${s.after2KiB.map((k) => fmt(k / 1024)).join('+')} MiB\n`,
          );
        } catch (e) {
          notes.push(`run ${rep}, ${n} connections: ${(e as Error).message.split('\n')[0]}`);
          process.stderr.write(`conns: run ${rep}, ${n} connections failed: ${(e as Error).message}\n`);
        }
      }
    }
  } finally {
    await close();
  }
  return connsReport({ samples, counts, notMeasured, reps: o.reps, notes });
}

export interface ConnsMeasured {
  readonly samples: readonly Sample[];
  readonly counts: readonly number[];
  readonly notMeasured: readonly number[];
  readonly reps: number;
  readonly notes: readonly string[];
}

/** Figures, fits, extrapolations and plots from the samples (pure: a run's JSON can be re-reported). */
export function connsReport(m: ConnsMeasured): PartResult {
  const { samples, counts, notMeasured, notes } = m;
  const o = { reps: m.reps };
  const fits = connsThatFit();
  const rs = rows(samples, counts);
  const fitOf = (k: keyof Row): GrowthFit | undefined => {
    try {
      return fitGrowth(rs.map((r) => ({ n: r.n, y: r[k] as number })));
    } catch (e) {
      if (e instanceof RangeError) return undefined; // fewer than two positive points
      throw e;
    }
  };
  const fitsOut = { both: fitOf('deltaMiB'), a: fitOf('deltaAMiB'), b: fitOf('deltaBMiB') };
  const linear = rs.length < 2 ? undefined : fitLinear(rs.map((r) => ({ n: r.n, y: r.deltaMiB * 1024 })));
  const idle = median(rs.map((r) => r.idleMiB));
  const both = fitsOut.both;
  const extrapolated =
    both === undefined
      ? []
      : notMeasured.map((n) => {
          const delta = predictPower(both, n);
          const lin = linear === undefined ? Number.NaN : (linear.intercept + linear.perUnit * n) / 1024;
          return {
            n,
            deltaMiB: delta,
            rssMiB: idle + delta,
            kibPerConn: (delta * 1024) / n,
            linearDeltaMiB: lin,
            linearRssMiB: idle + lin,
          };
        });
  const json = {
    description:
      'Memory per idle connection through ward mTLS (HBONE), both wards: VmRSS with N idle echo connections minus VmRSS just before, fresh wards per count.',
    limits: {
      hardNofile: hardNofile(),
      wardMaxConnections: wardMaxConns(),
      largestThatFits: fits,
      notMeasured,
      why: notes[0] ?? null,
    },
    counts,
    repetitions: o.reps,
    rows: rs,
    fits: Object.fromEntries(
      Object.entries(fitsOut).flatMap(([k, f]) => (f === undefined ? [] : [[k, fitJson(f)]])),
    ),
    marginal:
      linear === undefined
        ? null
        : { kibPerConnection: linear.perUnit, interceptKiB: linear.intercept, r2: linear.r2 },
    extrapolated: extrapolated.map((e) => ({
      ...e,
      note: 'extrapolated, not measured: deltaMiB, rssMiB and kibPerConn from the fitted power law; linear* from the least-squares line',
    })),
    notes,
    samples,
  };
  return {
    name: 'conns',
    json,
    markdown: markdown(o, rs, fitsOut, linear, extrapolated, idle, notes),
    charts: charts(rs, fitsOut.both, extrapolated),
  };
}

function markdown(
  o: ConnsScaleOptions,
  rs: readonly Row[],
  fits: { both: GrowthFit | undefined; a: GrowthFit | undefined; b: GrowthFit | undefined },
  linear: LinearFit | undefined,
  ex: readonly {
    n: number;
    deltaMiB: number;
    rssMiB: number;
    kibPerConn: number;
    linearDeltaMiB: number;
    linearRssMiB: number;
  }[],
  idle: number,
  notes: readonly string[],
): string {
  const g = (f: GrowthFit | undefined): string => (f === undefined ? '–' : describeGrowth(f));
  const L: string[] = [
    '## Memory per idle connection (ward mTLS, both wards)',
    '',
    `Fresh wards for every count (1 worker, the lab's mesh config, HBONE mTLS with authentication required), warmed with 20 connections; then \`bench/clients/hold.ts\` opens N echo connections end to end; VmRSS of both wards 2 s after all are up minus just before. Medians of ${o.reps} run(s).`,
    '',
    ...table(
      [
        'idle connections',
        'runs',
        'RSS before, both (MiB)',
        'RSS with N, both (MiB)',
        'Δ both (MiB)',
        'Δ ward a / ward b (MiB)',
        'KiB per connection, both',
        'ward a / ward b (KiB)',
      ],
      [
        ...rs.map((r) => [
          r.n.toLocaleString('en-US'),
          String(r.samples),
          fmt(r.idleMiB),
          fmt(r.withMiB),
          fmt(r.deltaMiB),
          `${fmt(r.deltaAMiB)} / ${fmt(r.deltaBMiB)}`,
          fmt(r.kibPerConn),
          `${fmt(r.kibPerConnA)} / ${fmt(r.kibPerConnB)}`,
        ]),
        ...ex.map((e) => [
          `${e.n.toLocaleString('en-US')} (extrapolated, not measured)`,
          '0',
          fmt(idle),
          `≈ ${fmt(e.rssMiB)}`,
          `≈ ${fmt(e.deltaMiB)}`,
          '–',
          `≈ ${fmt(e.kibPerConn)}`,
          '–',
        ]),
      ],
    ),
    '',
    `Growth of the RSS Δ with the count: both wards ${g(fits.both)}; ward a ${g(fits.a)}; ward b ${g(fits.b)}.${linear === undefined ? '' : ` Least-squares line: Δ ≈ ${fmt(linear.intercept / 1024)} MiB + ${fmt(linear.perUnit, 2)} KiB × N (R² ${fmt(linear.r2, 3)}).`}`,
    '',
  ];
  if (ex.length > 0)
    L.push(
      `The rows marked *extrapolated, not measured* are the fitted power law (Δ ∝ N^${fits.both?.slope.toFixed(2) ?? '?'}) evaluated outside the measured range and added to the median RSS before the connections; they are predictions, not measurements. The least-squares line predicts instead: ${ex.map((e) => `${e.n.toLocaleString('en-US')}: Δ ≈ ${fmt(e.linearDeltaMiB)} MiB, RSS ≈ ${fmt(e.linearRssMiB)} MiB`).join('; ')}.`,
      '',
    );
  if (notes.length > 0) L.push('Notes:', '', ...notes.map((n) => `- ${n}`), '');
  return `${L.join('\n')}\n`;
}

function charts(
  rs: readonly Row[],
  fit: GrowthFit | undefined,
  ex: readonly { n: number; deltaMiB: number }[],
): Chart[] {
  if (rs.length === 0) return [];
  const lo = rs[0]!.n;
  const hi = rs[rs.length - 1]!.n;
  return [
    {
      file: 'conns-memory.svg',
      svg: lineChart({
        title: 'RSS added by N idle connections through ward mTLS',
        subtitle:
          fit === undefined
            ? 'both wards'
            : `both wards: ${describeGrowth(fit)}; hollow = extrapolated, not measured`,
        xLabel: 'idle connections',
        yLabel: 'RSS Δ (MiB)',
        series: [
          {
            name: 'both wards',
            points: rs.map((r) => ({ x: r.n, y: r.deltaMiB })),
            ...(fit === undefined
              ? {}
              : { fit: fitLine(fit, lo, hi), fitLabel: `fit: ${fit.model}, slope ${fit.slope.toFixed(2)}` }),
            extrapolated: ex.map((e) => ({ x: e.n, y: e.deltaMiB, label: `extrapolated ${e.n / 1000}k` })),
          },
          { name: 'ward a (client node)', points: rs.map((r) => ({ x: r.n, y: r.deltaAMiB })) },
          { name: 'ward b (server node)', points: rs.map((r) => ({ x: r.n, y: r.deltaBMiB })) },
        ],
      }),
    },
    {
      file: 'conns-per-connection.svg',
      svg: lineChart({
        title: 'Memory per idle connection, both wards',
        subtitle: 'RSS Δ ÷ connections held',
        xLabel: 'idle connections',
        yLabel: 'KiB per connection',
        linearY: true,
        series: [
          { name: 'both wards', points: rs.map((r) => ({ x: r.n, y: r.kibPerConn })) },
          { name: 'ward a', points: rs.map((r) => ({ x: r.n, y: r.kibPerConnA })) },
          { name: 'ward b', points: rs.map((r) => ({ x: r.n, y: r.kibPerConnB })) },
        ],
      }),
    },
  ];
}
