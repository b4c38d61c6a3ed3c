// The processes of the SVID scale benchmark (bench/scale/svid.ts starts them):
//
//   node bench/scale/svid-child.ts issue --ca DIR --n N --sets S --extra E --part J --parts K --out FILE
//     issues this part's share of the certificate pool with the development CA (not timed)
//   node --expose-gc bench/scale/svid-child.ts measure --pool DIR --n N --reps R --spread S --workers W
//     holds N identities in ward's identity store and measures memory and rotation CPU
//
// measure drives the path a running ward takes: a Delegated Identity API response (DER chain and PKCS#8
// key per SVID, as SPIRE or `ward ca serve` sends it) → parseDelegatedSvidsInTurns with the source's
// OwnSvidMemo (parse, SVID profile checks, key ↔ certificate match for SVIDs whose bytes are new; the
// others reused) → the source's snapshot → the identity store (PEM for the workers, timers at half-life
// and expiry, one log line per SVID) → the main thread's CredentialView (a SecureContext per changed
// identity) and the snapshot serialized once per worker, as postMessage does → each worker thread's
// CredentialView (the snapshot deserialized, then a SecureContext per changed identity again). The views build large change sets in chunks between turns
// of the event loop: each phase is timed until its view has built everything, and the longest stretch the
// main thread (parse in turns, store, main view) and a worker view (apply() itself, or one chunk) kept
// their thread busy is measured with an event-loop probe.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { deserialize, serialize } from 'node:v8';
import pino from 'pino';
import type { Logger } from '../../src/log.ts';
import { pemBlocks } from '../../src/svid/certificate.ts';
import {
  type CredentialsSnapshot,
  type CredentialView,
  createCredentialView,
} from '../../src/svid/credentials.ts';
import {
  parseDelegatedBundles,
  parseDelegatedSvids,
  parseDelegatedSvidsInTurns,
} from '../../src/svid/delegated-identity-client.ts';
import { DEFAULT_SVID_TTL_MS, loadCaDir } from '../../src/svid/dev-ca.ts';
import type { SubscribeToX509SvidsResponse } from '../../src/svid/grpc-protos.ts';
import { createIdentityStore } from '../../src/svid/identity-store.ts';
import { OwnSvidMemo } from '../../src/svid/own-svid-memo.ts';
import { SourceBase, type SvidSnapshot } from '../../src/svid/source.ts';
import { fullGc } from '../lib/child.ts';
import { decodeEntries, type PoolEntry, type SvidChildResult, type SvidPool, TRUST_DOMAIN } from './svid.ts';

/** Identity i of every set is spiffe://spiffe.cilium/identity/<FIRST_ID + i>. */
const FIRST_ID = 1000;
/** The warm-up set holds two certificates each of this many identities (a load, then a rotation). */
const WARM_IDS = 10;

const [mode, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: {
    ca: { type: 'string' },
    n: { type: 'string' },
    sets: { type: 'string' },
    extra: { type: 'string', default: '0' },
    warm: { type: 'string', default: '0' },
    part: { type: 'string', default: '0' },
    parts: { type: 'string', default: '1' },
    out: { type: 'string' },
    pool: { type: 'string' },
    reps: { type: 'string', default: '3' },
    spread: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1' },
  },
});

/** Issues every (set, identity) pair of the pool whose ordinal falls to this part. */
async function issue(): Promise<void> {
  const ca = loadCaDir(values.ca ?? '');
  const n = Number(values.n);
  const sets = Number(values.sets);
  const extra = Number(values.extra);
  const warm = Number(values.warm);
  const part = Number(values.part);
  const parts = Number(values.parts);
  const out: [number, number, string, string][] = [];
  const cpu0 = process.cpuUsage();
  let k = 0;
  // Groups: `sets` sets of n, then the extras, then the warm-up set (two rounds of WARM_IDS identities).
  for (let s = 0; s <= sets + 1; s++) {
    const count = s < sets ? n : s === sets ? extra : warm;
    for (let i = 0; i < count; i++, k++) {
      if (k % parts !== part) continue;
      const id = FIRST_ID + (s === sets + 1 ? i % WARM_IDS : i);
      const svid = await ca.issue(`spiffe://${TRUST_DOMAIN}/identity/${id}`, DEFAULT_SVID_TTL_MS);
      out.push([s, i, (svid.chain[0] as Buffer).toString('base64'), svid.key.toString('base64')]);
    }
  }
  writeFileSync(values.out ?? '', JSON.stringify(out));
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ issued: out.length, cpuS: (cpu.user + cpu.system) / 1e6 })}\n`);
}

/** A source that publishes what it is handed, as the Delegated Identity client does with each message. */
class BenchSource extends SourceBase {
  readonly kind = 'delegated' as const;
  start(): void {}
  refresh(): void {}
  async close(): Promise<void> {}
  push(s: SvidSnapshot): void {
    this.publish(s);
  }
}

type Entry = PoolEntry;

function response(entries: readonly Entry[]): SubscribeToX509SvidsResponse {
  return {
    x509_svids: entries.map((e, i) => ({
      x509_svid: {
        cert_chain: [e.cert],
        id: { trust_domain: TRUST_DOMAIN, path: `/identity/${FIRST_ID + i}` },
        expires_at: 0,
        hint: '',
      },
      x509_svid_key: e.key,
    })),
    federates_with: [],
  };
}

const cpuS = (since: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
};

interface Mem {
  readonly heapUsed: number;
  readonly external: number;
  readonly rss: number;
}

function mem(): Mem {
  fullGc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, rss: m.rss };
}

/**
 * Runs the whole path once on a few identities of its own (a load, then a rotation) and drops it, so the
 * code it loads and compiles (pino, @peculiar/x509, the TLS bindings) is in the baseline, not in the Δ.
 */
async function warmUp(
  entries: readonly Entry[],
  bundles: SvidSnapshot['bundles'],
  log: Logger,
): Promise<void> {
  const source = new BenchSource(log);
  const memo = new OwnSvidMemo();
  const store = createIdentityStore({ source, log });
  const view = createCredentialView();
  store.onChange((s) => view.apply(structuredClone(s)));
  for (let r = 0; r * WARM_IDS < entries.length; r++) {
    const parsed = parseDelegatedSvids(
      response(entries.slice(r * WARM_IDS, (r + 1) * WARM_IDS)),
      TRUST_DOMAIN,
      memo,
    );
    source.push({ svids: parsed.svids, bundles, federatesWith: [] });
    await Promise.all([store.view().built(), view.built()]);
  }
  if (view.identities().length !== WARM_IDS) throw new Error('the warm-up did not load');
  void store.close();
}

/**
 * The longest stretch the event loop was held while `work` ran: a setImmediate probe re-arms itself each
 * turn and records the largest gap between two of its runs (apply() itself is timed by the caller).
 */
async function longestTurnMs(work: () => Promise<void>): Promise<number> {
  let max = 0;
  let last = performance.now();
  let running = true;
  const probe = (): void => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
    if (running) setImmediate(probe);
  };
  setImmediate(probe);
  await work();
  running = false;
  probe();
  return max;
}

async function measure(): Promise<void> {
  const n = Number(values.n);
  const reps = Number(values.reps);
  const spread = Number(values.spread);
  const workers = Number(values.workers);
  let sets: Entry[][];
  let extras: Entry[];
  let warmSet: Entry[];
  let caPem: string;
  {
    const dir = values.pool ?? '';
    const pool = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as SvidPool;
    const read = (file: string, limit?: number): Entry[] =>
      decodeEntries(readFileSync(join(dir, file)), limit);
    if (pool.n < n || pool.sets.length < reps + 1)
      throw new Error(`the pool holds ${pool.sets.length} sets of ${pool.n}, not ${reps + 1} of ${n}`);
    sets = pool.sets.slice(0, reps + 1).map((f) => read(f, n));
    extras = read(pool.extras, spread);
    if (extras.length < spread) throw new Error(`the pool holds ${extras.length} extras, not ${spread}`);
    warmSet = read(pool.warm);
    caPem = pool.caPem;
  }
  const caDer = pemBlocks(caPem)[0]?.der;
  if (caDer === undefined) throw new Error('the pool has no CA certificate');
  const bundles = parseDelegatedBundles({ ca_certificates: { [TRUST_DOMAIN]: caDer } });
  // Where a ward's lines go (pino, sync writes), only to /dev/null: the per-SVID lines are part of the cost.
  const log: Logger = pino(
    {
      level: 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: '/dev/null', sync: true }),
  );

  await warmUp(warmSet, bundles, log);
  const m0 = mem();
  const source = new BenchSource(log);
  // The Delegated Identity client's memo: SVIDs whose bytes the last message held are not parsed again.
  const memo = new OwnSvidMemo();
  const store = createIdentityStore({ source, log });
  const workerViews: CredentialView[] = [];
  // What the store posts; each worker view applies it after the main thread is done (postMessage is
  // asynchronous), so the CPU of each phase is measured on its own. postMessage serializes the snapshot
  // on the main thread, once per worker (src/proxy/supervisor.ts): v8.serialize is the same serializer.
  let posted: Buffer[] = [];
  store.onChange((s) => {
    posted = [];
    for (let w = 0; w < workers; w++) posted.push(serialize(s));
  });

  /** One message through the whole path; CPU seconds per phase, the longest main and worker turns in ms. */
  const deliver = async (entries: readonly Entry[]) => {
    const resp = response(entries);
    posted = [];
    const t0 = process.cpuUsage();
    const w0 = process.hrtime.bigint();
    let parse = 0;
    let storeMain = 0;
    const mainStallMs = await longestTurnMs(async () => {
      const parsed = await parseDelegatedSvidsInTurns(resp, TRUST_DOMAIN, memo);
      parse = cpuS(t0);
      if (parsed.rejected.length > 0) throw new Error(`SVIDs refused: ${JSON.stringify(parsed.rejected[0])}`);
      const t1 = process.cpuUsage();
      source.push({ svids: parsed.svids, bundles, federatesWith: [] });
      await store.view().built();
      storeMain = cpuS(t1);
    });
    if (posted.length !== workers) throw new Error('the store published nothing');
    let workersS = 0;
    let workerStallMs = 0;
    for (const [w, view] of workerViews.entries()) {
      const t = process.cpuUsage();
      let applyMs = 0;
      const chunkMs = await longestTurnMs(async () => {
        const a = performance.now();
        // The worker's side of postMessage: the snapshot deserialized, then applied.
        view.apply(deserialize(posted[w] as Buffer) as CredentialsSnapshot);
        applyMs = performance.now() - a;
        await view.built();
      });
      workersS += cpuS(t);
      workerStallMs = Math.max(workerStallMs, applyMs, chunkMs);
    }
    const wallS = Number(process.hrtime.bigint() - w0) / 1e9;
    return {
      parseS: parse,
      storeMainS: storeMain,
      workersS,
      workerStallMs,
      mainStallMs,
      totalS: parse + storeMain + workersS,
      wallS,
    };
  };

  const load = await deliver(sets[0]!);
  if (store.view().identities().length !== n)
    throw new Error(`the store holds ${store.view().identities().length} of ${n} identities`);
  const m1 = mem();
  for (let w = 0; w < workers; w++) {
    const view = createCredentialView();
    view.apply(structuredClone(store.snapshot()));
    await view.built();
    workerViews.push(view);
  }
  const m2 = mem();

  const rotations = [];
  for (let r = 1; r <= reps; r++) {
    fullGc();
    rotations.push(await deliver(sets[r]!));
  }
  const m3 = mem();
  // One identity rotated among n unchanged: the source sends the full list again (a snapshot per change).
  let held = sets[reps]!;
  const single = [];
  for (let k = 0; k < spread; k++) {
    held = held.slice();
    held[k] = extras[k]!;
    fullGc();
    single.push(await deliver(held));
  }
  for (const v of workerViews) {
    if (v.identities().length !== n) throw new Error('a worker view lost identities');
  }
  const stats = store.stats();
  const lifetimeMs = (() => {
    const c = store.snapshot().identities[0];
    return c === undefined ? Number.NaN : c.notAfter - c.notBefore;
  })();
  void store.close();
  const result: SvidChildResult = {
    n,
    workers,
    lifetimeMs,
    rotationsAccepted: stats.rotations,
    svidParses: memo.stats(),
    memory: { before: m0, storeAndMainView: m1, withWorkers: m2, afterRotations: m3 },
    load,
    rotations,
    single,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (mode === 'issue') await issue();
else if (mode === 'measure') await measure();
else throw new Error(`usage: svid-child.ts issue|measure …, not ${mode}`);
