// One cell of the policy scale grid, in its own process (bench/scale/policy.ts starts it):
//
//   node --expose-gc bench/scale/policy-child.ts --policies P --workloads W [--reps 3] [--seconds 0.5]
//
// The synthetic cluster of bench/policy-bench.ts (bench/lib/policy-gen.ts) through the real engine:
// parseDocuments (schema validation + parse) → compileSnapshot → buildInventory → the per-identity rule
// selection a live node warms as identities appear → decide() (uncached) and engine.decide() (cached).
// Times are medians of `reps` repetitions; heaps are after a full GC, each minus the heap before it.
import { parseArgs } from 'node:util';
import { buildInventory } from '../../src/inventory/inventory.ts';
import { compileSnapshot, createPolicyEngine, decide, parseDocuments } from '../../src/policy/index.ts';
import { fullGc } from '../lib/child.ts';
import { mulberry32, randomConnection, syntheticCluster } from '../lib/policy-gen.ts';
import { median } from '../lib/stats.ts';
import type { PolicyCell } from './policy.ts';

const { values } = parseArgs({
  options: {
    policies: { type: 'string' },
    workloads: { type: 'string' },
    replicas: { type: 'string', default: '5' },
    reps: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '0.5' },
  },
});
const P = Number(values.policies);
const W = Number(values.workloads);
const REPS = Number(values.reps);
const SECONDS = Number(values.seconds);

const rng = mulberry32(42);
const { workloads, docs } = syntheticCluster(
  { policies: P, workloads: W, replicas: Number(values.replicas) },
  rng,
);

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const heap = (): number => {
  fullGc();
  return process.memoryUsage().heapUsed;
};

function compileOnce() {
  const t0 = process.hrtime.bigint();
  const parsed = parseDocuments(docs);
  const parseMs = ms(t0);
  if (parsed.issues.some((i) => i.severity === 'error'))
    throw new Error(`bench policies invalid: ${parsed.issues[0]?.message}`);
  const t1 = process.hrtime.bigint();
  const snapshot = compileSnapshot(parsed.policies, { issues: parsed.issues });
  return {
    snapshot,
    parseMs,
    compileMs: ms(t1),
    rules: parsed.policies.reduce((n, p) => n + p.rules.length, 0),
  };
}

/**
 * The whole path once on a small cluster of its own, dropped before the baseline: the code it loads and
 * compiles (bytecode lives in the heap) is then in neither the Δ of the first size nor its first timing.
 */
function warmUp(): void {
  const r = mulberry32(7);
  const small = syntheticCluster({ policies: 50, workloads: 500, replicas: 5 }, r);
  const parsed = parseDocuments(small.docs);
  const snap = compileSnapshot(parsed.policies, { issues: parsed.issues });
  const ps = buildInventory({ workloads: small.workloads })
    .workloads()
    .map((w) => w.peer);
  const eng = createPolicyEngine(snap);
  for (let i = 0; i < 20_000; i++) {
    const c = randomConnection(ps, r);
    decide(c, snap);
    eng.decide(c);
  }
}
warmUp();

// The kept snapshot is the first; the other repetitions only time (and are collected).
const h0 = heap();
const first = compileOnce();
const snapshot = first.snapshot;
const h1 = heap();
const parseMs = [first.parseMs];
const compileMs = [first.compileMs];
for (let r = 1; r < REPS; r++) {
  const again = compileOnce();
  parseMs.push(again.parseMs);
  compileMs.push(again.compileMs);
}

const h2 = heap();
let t0 = process.hrtime.bigint();
const inventory = buildInventory({ workloads });
const inventoryMs = [ms(t0)];
const h3 = heap();
for (let r = 1; r < REPS; r++) {
  t0 = process.hrtime.bigint();
  buildInventory({ workloads });
  inventoryMs.push(ms(t0));
}

const peers = inventory.workloads().map((w) => w.peer);
const identities = new Map(peers.map((p) => [p.identity, p]));
const h4 = heap();
t0 = process.hrtime.bigint();
for (const p of identities.values()) {
  snapshot.selecting(p.labels, 'ingress');
}
const warmMs = ms(t0);
const h5 = heap();
let selected = 0;
for (const p of identities.values()) selected += snapshot.selecting(p.labels, 'ingress').length;

function rate(f: () => void): number {
  const end = process.hrtime.bigint() + BigInt(Math.round(SECONDS * 1e9));
  let n = 0;
  const t = process.hrtime.bigint();
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 1000; i++) f();
    n += 1000;
  }
  return n / (Number(process.hrtime.bigint() - t) / 1e9);
}

const uncachedConns = Array.from({ length: 100_000 }, () => randomConnection(peers, rng));
let k = 0;
let allowed = 0;
let decided = 0;
const uncached: number[] = [];
for (let r = 0; r < REPS; r++)
  uncached.push(
    rate(() => {
      const v = decide(uncachedConns[k++ % uncachedConns.length]!, snapshot);
      decided++;
      if (v.verdict === 'allow') allowed++;
    }),
  );

const engine = createPolicyEngine(snapshot, { cacheSize: 65_536 });
const hot = Array.from({ length: 10_000 }, () => randomConnection(peers, rng));
for (const c of hot) engine.decide(c);
k = 0;
const cached: number[] = [];
for (let r = 0; r < REPS; r++)
  cached.push(
    rate(() => {
      engine.decide(hot[k++ % hot.length]!);
    }),
  );

const MiB = 1024 * 1024;
const cell: PolicyCell = {
  policies: P,
  workloads: W,
  rules: first.rules,
  identities: identities.size,
  ingressRulesPerIdentity: identities.size === 0 ? 0 : selected / identities.size,
  parseMs: median(parseMs),
  compileMs: median(compileMs),
  parseCompileMs: median(parseMs.map((p, i) => p + (compileMs[i] ?? Number.NaN))),
  parseCompileSamplesMs: parseMs.map((p, i) => p + (compileMs[i] ?? Number.NaN)),
  inventoryMs: median(inventoryMs),
  selectionWarmMs: warmMs,
  snapshotHeapMiB: (h1 - h0) / MiB,
  inventoryHeapMiB: (h3 - h2) / MiB,
  selectionMemoHeapMiB: (h5 - h4) / MiB,
  uncachedPerS: median(uncached),
  uncachedSamples: uncached,
  cachedPerS: median(cached),
  cachedSamples: cached,
  allowedShare: decided === 0 ? Number.NaN : allowed / decided,
  rssMiB: process.memoryUsage().rss / MiB,
  cache: engine.cacheStats(),
};
process.stdout.write(`${JSON.stringify(cell)}\n`);
