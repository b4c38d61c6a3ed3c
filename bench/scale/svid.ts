// SVIDs held per node (issue 8, Build 4): memory of holding N identities in ward's identity store, and
// the CPU of rotating them, for N from 100 to 5,000. Certificates come from the development CA
// (src/svid/dev-ca.ts), issued in advance into a pool (not timed); each N is measured in its own
// process (bench/scale/svid-child.ts), so one size's memory does not pollute the next.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PARSE_CACHE_ENTRIES } from '../../src/svid/certificate.ts';
import { BUILD_CHUNK } from '../../src/svid/credentials.ts';
import { DEFAULT_SVID_TTL_MS, initCaDir } from '../../src/svid/dev-ca.ts';
import { TURN_BUDGET_MS } from '../../src/svid/turns.ts';
import { runNodeJson } from '../lib/child.ts';
import { describeGrowth, fitGrowth, fitLinear, type GrowthFit, type LinearFit } from '../lib/growth.ts';
import { lineChart } from '../lib/plot.ts';
import { median } from '../lib/stats.ts';
import { type Chart, fitJson, fitLine, fmt, type PartResult, sig, table } from './report.ts';

export const TRUST_DOMAIN = 'spiffe.cilium';
/** GC on demand; no bytecode flushing, which would free code between two heap readings and look like a saving. */
const CHILD_FLAGS = ['--expose-gc', '--no-flush-bytecode'];
const CHILD = fileURLToPath(new URL('svid-child.ts', import.meta.url));
/** Certificates in the warm-up set: 10 identities × 2 (src: svid-child.ts WARM_IDS). */
const WARM = 20;

/**
 * The certificate pool the measuring processes read: meta.json (this) and one binary file per set, each
 * entry a u16 length + certificate DER, then a u16 length + PKCS#8 key DER; binary, so that reading it
 * leaves little garbage behind in the measuring process (its memory is the figure).
 */
export interface SvidPool {
  readonly n: number;
  readonly caPem: string;
  /** Files (in the pool directory) of the sets of n, the extras and the warm-up set. */
  readonly sets: readonly string[];
  readonly extras: string;
  readonly warm: string;
}

export interface PoolEntry {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function encodeEntries(entries: readonly PoolEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    for (const b of [e.cert, e.key]) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** The first `limit` entries; each a copy, so the file's buffer is not kept alive by them. */
export function decodeEntries(buf: Buffer, limit = Number.POSITIVE_INFINITY): PoolEntry[] {
  const out: PoolEntry[] = [];
  let off = 0;
  const next = (): Buffer => {
    const len = buf.readUInt16BE(off);
    const b = Buffer.from(buf.subarray(off + 2, off + 2 + len));
    off += 2 + len;
    return b;
  };
  while (off < buf.length && out.length < limit) out.push({ cert: next(), key: next() });
  return out;
}

export interface Phases {
  /** parseDelegatedSvidsInTurns with the source's memo: DER parse, SVID profile checks, key ↔ certificate match. */
  readonly parseS: number;
  /** The identity store (PEM export, timers, log lines) and the main thread's view (SecureContexts). */
  readonly storeMainS: number;
  /** The worker threads' views: structured clone of the snapshot + a SecureContext per changed identity. */
  readonly workersS: number;
  /** The longest stretch one worker view held its thread: apply() itself, or one chunk of contexts (ms). */
  readonly workerStallMs: number;
  /** The longest stretch the main thread was held from the message to its built view (ms). */
  readonly mainStallMs: number;
  readonly totalS: number;
  readonly wallS: number;
}

interface Mem {
  readonly heapUsed: number;
  readonly external: number;
  readonly rss: number;
}

export interface SvidChildResult {
  readonly n: number;
  readonly workers: number;
  readonly lifetimeMs: number;
  readonly rotationsAccepted: number;
  /** The source memo's count of SVIDs parsed (new bytes) and reused (bytes equal to the last message's). */
  readonly svidParses: { readonly parsed: number; readonly reused: number };
  readonly memory: {
    readonly before: Mem;
    readonly storeAndMainView: Mem;
    readonly withWorkers: Mem;
    readonly afterRotations: Mem;
  };
  /** The first message (every SVID new). */
  readonly load: Phases;
  /** Messages in which every SVID rotated at once. */
  readonly rotations: readonly Phases[];
  /** Messages in which one SVID rotated and the other n − 1 came unchanged. */
  readonly single: readonly Phases[];
}

export interface SvidScaleOptions {
  readonly sizes: readonly number[];
  /** Rotations of all SVIDs per size (timing repetitions). */
  readonly reps: number;
  /** Single-SVID rotation messages per size. */
  readonly spread: number;
  /** Worker threads whose views are modelled (bench/run.ts runs ward with 1). */
  readonly workers: number;
  readonly tmp: string;
}

/** The development CA rotates each SVID at half its lifetime (src/svid/ca-server.ts, halfLife). */
const ROTATIONS_PER_HOUR = 3_600_000 / (DEFAULT_SVID_TTL_MS / 2);

async function issuePool(o: SvidScaleOptions, n: number): Promise<string> {
  const caDir = join(o.tmp, 'ca');
  const ca = await initCaDir(caDir, TRUST_DOMAIN, { force: true });
  const sets = o.reps + 1;
  const parts = 2;
  const t0 = Date.now();
  process.stderr.write(
    `svid: issuing ${sets} × ${n} + ${o.spread} SVIDs with the development CA in ${parts} processes (not timed)\n`,
  );
  const files = Array.from({ length: parts }, (_, j) => join(o.tmp, `pool-${j}.json`));
  await Promise.all(
    files.map((out, j) =>
      runNodeJson(CHILD, [
        'issue',
        '--ca',
        caDir,
        '--n',
        String(n),
        '--sets',
        String(sets),
        '--extra',
        String(o.spread),
        '--warm',
        String(WARM),
        '--part',
        String(j),
        '--parts',
        String(parts),
        '--out',
        out,
      ]),
    ),
  );
  const sorted: PoolEntry[][] = Array.from({ length: sets + 2 }, () => []);
  for (const f of files) {
    for (const [g, i, cert, key] of JSON.parse(readFileSync(f, 'utf8')) as [number, number, string, string][])
      sorted[g]![i] = { cert: Buffer.from(cert, 'base64'), key: Buffer.from(key, 'base64') };
    rmSync(f);
  }
  const dir = join(o.tmp, 'pool');
  mkdirSync(dir, { recursive: true });
  const name = (g: number): string => (g < sets ? `set-${g}.bin` : g === sets ? 'extras.bin' : 'warm.bin');
  sorted.forEach((entries, g) => {
    writeFileSync(join(dir, name(g)), encodeEntries(entries));
  });
  const pool: SvidPool = {
    n,
    caPem: ca.bundlePem(),
    sets: Array.from({ length: sets }, (_, g) => name(g)),
    extras: name(sets),
    warm: name(sets + 1),
  };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(pool));
  process.stderr.write(`svid: pool issued in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return dir;
}

interface Row {
  readonly n: number;
  readonly heapMiB: number;
  readonly externalMiB: number;
  readonly rssMiB: number;
  readonly heapKiBPerId: number;
  readonly externalKiBPerId: number;
  readonly rssKiBPerId: number;
  readonly workerHeapKiBPerId: number;
  readonly workerRssKiBPerId: number;
  readonly afterRotationsHeapMiB: number;
  readonly loadCpuS: number;
  readonly rotateAllCpuS: number;
  readonly rotateAllParseS: number;
  readonly rotateAllStoreMainS: number;
  readonly rotateAllWorkersS: number;
  readonly rotateAllWorkerStallMs: number;
  readonly rotateAllMainStallMs: number;
  readonly rotateAllSamples: readonly number[];
  readonly rotateAllCpuSPerHour: number;
  readonly singleMessageCpuMs: number;
  readonly singleParseMs: number;
  readonly singleStoreMainMs: number;
  readonly singleWorkersMs: number;
  readonly singleWorkerStallMs: number;
  readonly singleSamplesMs: readonly number[];
  readonly spreadCpuSPerHour: number;
}

const MiB = 1024 * 1024;

function row(r: SvidChildResult): Row {
  const { before, storeAndMainView, withWorkers, afterRotations } = r.memory;
  const n = r.n;
  const med = (xs: readonly Phases[], k: keyof Phases): number => median(xs.map((x) => x[k]));
  const rotateAll = med(r.rotations, 'totalS');
  const single = med(r.single, 'totalS');
  return {
    n,
    heapMiB: (withWorkers.heapUsed - before.heapUsed) / MiB,
    externalMiB: (withWorkers.external - before.external) / MiB,
    rssMiB: (withWorkers.rss - before.rss) / MiB,
    heapKiBPerId: (withWorkers.heapUsed - before.heapUsed) / 1024 / n,
    externalKiBPerId: (withWorkers.external - before.external) / 1024 / n,
    rssKiBPerId: (withWorkers.rss - before.rss) / 1024 / n,
    workerHeapKiBPerId: (withWorkers.heapUsed - storeAndMainView.heapUsed) / 1024 / n / r.workers,
    workerRssKiBPerId: (withWorkers.rss - storeAndMainView.rss) / 1024 / n / r.workers,
    afterRotationsHeapMiB: (afterRotations.heapUsed - before.heapUsed) / MiB,
    loadCpuS: r.load.totalS,
    rotateAllCpuS: rotateAll,
    rotateAllParseS: med(r.rotations, 'parseS'),
    rotateAllStoreMainS: med(r.rotations, 'storeMainS'),
    rotateAllWorkersS: med(r.rotations, 'workersS'),
    rotateAllWorkerStallMs: med(r.rotations, 'workerStallMs'),
    rotateAllMainStallMs: med(r.rotations, 'mainStallMs'),
    rotateAllSamples: r.rotations.map((x) => x.totalS),
    rotateAllCpuSPerHour: rotateAll * ROTATIONS_PER_HOUR,
    singleMessageCpuMs: single * 1000,
    singleParseMs: med(r.single, 'parseS') * 1000,
    singleStoreMainMs: med(r.single, 'storeMainS') * 1000,
    singleWorkersMs: med(r.single, 'workersS') * 1000,
    singleWorkerStallMs: med(r.single, 'workerStallMs'),
    singleSamplesMs: r.single.map((x) => x.totalS * 1000),
    spreadCpuSPerHour: single * n * ROTATIONS_PER_HOUR,
  };
}

export async function svidScale(o: SvidScaleOptions): Promise<PartResult> {
  const n = Math.max(...o.sizes);
  const pool = await issuePool(o, n);
  const results: SvidChildResult[] = [];
  for (const size of o.sizes) {
    const t0 = Date.now();
    const r = await runNodeJson<SvidChildResult>(
      CHILD,
      [
        'measure',
        '--pool',
        pool,
        '--n',
        String(size),
        '--reps',
        String(o.reps),
        '--spread',
        String(o.spread),
        '--workers',
        String(o.workers),
      ],
      { nodeFlags: CHILD_FLAGS, timeoutMs: 900_000 },
    );
    results.push(r);
    const x = row(r);
    process.stderr.write(
      `svid: ${size} identities (${((Date.now() - t0) / 1000).toFixed(0)} s): heap +${fmt(x.heapMiB)} MiB, RSS +${fmt(x.rssMiB)} MiB, rotate all ${sig(x.rotateAllCpuS)} CPU s, one of ${size} ${sig(x.singleMessageCpuMs)} ms\n`,
    );
  }
  rmSync(pool, { recursive: true, force: true });
  const rows = results.map(row);
  const fitOf = (k: keyof Row, rs: readonly Row[] = rows): GrowthFit | undefined =>
    rs.length < 2 ? undefined : fitGrowth(rs.map((r) => ({ n: r.n, y: r[k] as number })));
  const fits = {
    heap: fitOf('heapMiB'),
    external: fitOf('externalMiB'),
    rss: fitOf('rssMiB'),
    rotateAll: fitOf('rotateAllCpuSPerHour'),
    singleMessage: fitOf('singleMessageCpuMs'),
    spreadPerHour: fitOf('spreadCpuSPerHour'),
  };
  const marginal = {
    heapKiB: fitLinear(rows.map((r) => ({ n: r.n, y: r.heapMiB * 1024 }))),
    rssKiB: fitLinear(rows.map((r) => ({ n: r.n, y: r.rssMiB * 1024 }))),
  };
  const json = {
    description:
      'SVIDs held per node: memory of N identities in the identity store with the main-thread view and the worker views; CPU of rotating them (parse + checks + store + SecureContexts), per message and per hour.',
    assumptions: {
      svidTtlMs: DEFAULT_SVID_TTL_MS,
      rotationsPerHour: ROTATIONS_PER_HOUR,
      workerViews: o.workers,
      rotateAllRepetitions: o.reps,
      singleRotationMessages: o.spread,
    },
    rows,
    fits: Object.fromEntries(
      Object.entries(fits).flatMap(([k, f]) => (f === undefined ? [] : [[k, fitJson(f)]])),
    ),
    fitNotes: {
      singleMessage: `every size; own SVIDs no longer go through the certificate parse cache (${PARSE_CACHE_ENTRIES} entries), an unchanged SVID is reused by the source's memo`,
    },
    marginalKiBPerIdentity: {
      heap: {
        perIdentity: marginal.heapKiB.perUnit,
        interceptKiB: marginal.heapKiB.intercept,
        r2: marginal.heapKiB.r2,
      },
      rss: {
        perIdentity: marginal.rssKiB.perUnit,
        interceptKiB: marginal.rssKiB.intercept,
        r2: marginal.rssKiB.r2,
      },
    },
    raw: results,
  };
  return {
    name: 'svid',
    json,
    markdown: markdown(o, results, rows, fits, marginal),
    charts: charts(rows, fits),
  };
}

function markdown(
  o: SvidScaleOptions,
  results: readonly SvidChildResult[],
  rows: readonly Row[],
  fits: Record<string, GrowthFit | undefined>,
  marginal: { heapKiB: LinearFit; rssKiB: LinearFit },
): string {
  const g = (f: GrowthFit | undefined): string => (f === undefined ? '–' : describeGrowth(f));
  const L: string[] = [
    '## SVIDs held per node',
    '',
    `Identity store + main-thread CredentialView + ${o.workers} worker view(s), each SVID an EC P-256 leaf from the development CA; TTL ${DEFAULT_SVID_TTL_MS / 3_600_000} h (\`DEFAULT_SVID_TTL_MS\`), rotated at half-life (\`ca-server.ts\` halfLife) = ${ROTATIONS_PER_HOUR} rotations per identity per hour. Memory: after a full GC, minus the same process before the store existed. CPU: process.cpuUsage over one Delegated Identity API message through parseDelegatedSvidsInTurns (with the source's memo) → source → store → views, each view timed until it has built every context (large change sets are built in chunks of ${BUILD_CHUNK} between event-loop turns); the longest main-thread and worker turns by a setImmediate probe; medians of ${o.reps} all-at-once rotations and ${o.spread} single-SVID messages.`,
    '',
    '### Memory',
    '',
    ...table(
      [
        'identities',
        'heap Δ (MiB)',
        'external Δ (MiB)',
        'RSS Δ (MiB)',
        'heap / identity (KiB)',
        'RSS / identity (KiB)',
        'of which per worker view: heap / RSS (KiB)',
        'heap Δ after rotations (MiB)',
      ],
      rows.map((r) => [
        r.n.toLocaleString('en-US'),
        fmt(r.heapMiB),
        fmt(r.externalMiB),
        fmt(r.rssMiB),
        fmt(r.heapKiBPerId, 2),
        fmt(r.rssKiBPerId, 2),
        `${fmt(r.workerHeapKiBPerId, 2)} / ${fmt(r.workerRssKiBPerId, 2)}`,
        fmt(r.afterRotationsHeapMiB),
      ]),
    ),
    '',
    `Growth: heap ${g(fits.heap)}; external ${g(fits.external)}; RSS ${g(fits.rss)}. Marginal cost (least squares Δ = a + b·N): heap ${fmt(marginal.heapKiB.perUnit, 2)} KiB and RSS ${fmt(marginal.rssKiB.perUnit, 2)} KiB per identity (R² ${fmt(marginal.heapKiB.r2, 3)} / ${fmt(marginal.rssKiB.r2, 3)}).`,
    '',
    '### Rotation CPU',
    '',
    ...table(
      [
        'identities',
        'first load (CPU s)',
        'rotate all at once (CPU s)',
        '… parse + checks / store + main view / workers (s)',
        'longest main-thread / worker turn (ms)',
        'CPU s per hour, all at once',
        'one SVID rotated, full message (CPU ms)',
        '… parse + checks / store + main view / workers (ms)',
        'CPU s per hour, each SVID in its own message',
        'share of one core',
      ],
      rows.map((r) => [
        r.n.toLocaleString('en-US'),
        sig(r.loadCpuS),
        sig(r.rotateAllCpuS),
        `${sig(r.rotateAllParseS)} / ${sig(r.rotateAllStoreMainS)} / ${sig(r.rotateAllWorkersS)}`,
        `${sig(r.rotateAllMainStallMs)} / ${sig(r.rotateAllWorkerStallMs)}`,
        sig(r.rotateAllCpuSPerHour),
        sig(r.singleMessageCpuMs),
        `${sig(r.singleParseMs)} / ${sig(r.singleStoreMainMs)} / ${sig(r.singleWorkersMs)}`,
        sig(r.spreadCpuSPerHour),
        `${sig((r.spreadCpuSPerHour / 3600) * 100)} %`,
      ]),
    ),
    '',
    `Growth: rotating all at once ${g(fits.rotateAll)}; a one-SVID message ${g(fits.singleMessage)}, and per hour when every SVID rotates in its own message ${g(fits.spreadPerHour)}.`,
    '',
    "Two cadences bound the real one. *All at once*: the identities were issued together, so the CA rotates them together and sends one message (what the lab's development CA does). *Each in its own message*: identities issued at different times rotate at different times, and the Delegated Identity API sends the full list of SVIDs on every change; the source's memo (`src/svid/own-svid-memo.ts`) parses and checks only the SVID whose bytes changed and reuses the other N − 1 after a byte comparison, so what remains per message is linear bookkeeping (store, snapshot, structured clone, views comparing N entries) — " +
      'per hour that is N × rotations/h × (cost of one message of N).',
    '',
  ];
  const last = rows[rows.length - 1];
  const lastRaw = results[results.length - 1];
  if (last !== undefined && lastRaw !== undefined) {
    const parsedPerSingle =
      (lastRaw.svidParses.parsed - last.n * (1 + o.reps)) / Math.max(1, lastRaw.single.length);
    L.push(
      `At ${last.n.toLocaleString('en-US')} identities (${last.n > PARSE_CACHE_ENTRIES ? 'more than' : 'within'} the ${PARSE_CACHE_ENTRIES.toLocaleString('en-US')} entries of the certificate parse cache, which own SVIDs no longer use) a one-SVID message costs ${sig(last.singleMessageCpuMs)} CPU ms and parses ${sig(parsedPerSingle)} SVID(s); the source's memo counted ${lastRaw.svidParses.parsed.toLocaleString('en-US')} SVIDs parsed and ${lastRaw.svidParses.reused.toLocaleString('en-US')} reused over the run.`,
      '',
      `Rotating all ${last.n.toLocaleString('en-US')} at once keeps the main thread busy for ${sig(last.rotateAllParseS + last.rotateAllStoreMainS)} CPU s, ${sig(last.rotateAllParseS)} s of it parsing the message (every SVID is new) in turns of ${TURN_BUDGET_MS} ms; the longest stretch the main thread was held was ${sig(last.rotateAllMainStallMs)} ms (observe.livenessMaxLag is 5 s); each worker view spends ${sig(last.rotateAllWorkersS / o.workers)} CPU s on its ${last.n.toLocaleString('en-US')} SecureContexts, in chunks of ${BUILD_CHUNK}: the longest stretch it held its thread was ${sig(last.rotateAllWorkerStallMs)} ms (apply() itself or one chunk); meanwhile it serves connections, and an identity asked for before its chunk is built on demand.`,
      '',
    );
  }
  return `${L.join('\n')}\n`;
}

function charts(rows: readonly Row[], fits: Record<string, GrowthFit | undefined>): Chart[] {
  const lo = rows[0]?.n ?? 1;
  const hi = rows[rows.length - 1]?.n ?? 1;
  const pts = (k: keyof Row) => rows.map((r) => ({ x: r.n, y: r[k] as number }));
  const s = (name: string, k: keyof Row, f: GrowthFit | undefined, upTo = hi) => ({
    name,
    points: pts(k),
    ...(f === undefined
      ? {}
      : {
          fit: fitLine(f, lo, Math.min(hi, upTo)),
          fitLabel: `fit${upTo < hi ? ` ≤ ${upTo}` : ''}: ${f.model}, slope ${f.slope.toFixed(2)}`,
        }),
  });
  return [
    {
      file: 'svid-memory.svg',
      svg: lineChart({
        title: 'Memory of the SVIDs held per node',
        subtitle: 'identity store + main-thread view + 1 worker view; Δ against the process before the store',
        xLabel: 'identities held',
        yLabel: 'MiB',
        series: [s('heap Δ', 'heapMiB', fits.heap), s('RSS Δ', 'rssMiB', fits.rss)],
      }),
    },
    {
      file: 'svid-rotation-cpu.svg',
      svg: lineChart({
        title: 'Rotation CPU per hour (TTL 1 h, rotated at half-life)',
        subtitle:
          'all SVIDs in one message vs one message per rotated SVID (full list each time, unchanged SVIDs reused)',
        xLabel: 'identities held',
        yLabel: 'CPU seconds per hour',
        series: [
          s('all at once', 'rotateAllCpuSPerHour', fits.rotateAll),
          s('one per message', 'spreadCpuSPerHour', fits.spreadPerHour),
        ],
      }),
    },
  ];
}
