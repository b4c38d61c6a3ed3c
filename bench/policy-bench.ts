// Policy engine benchmark: 1,000 policies × 10,000 workloads.
//   node bench/policy-bench.ts [--policies N] [--workloads N] [--replicas N] [--seconds S]
// Measures: manifest parse+validation, snapshot compile, inventory build, snapshot memory, uncached
// decide() and cached engine.decide() throughput on one core (this process, one thread).

import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildInventory } from '../src/inventory/inventory.ts';
import type { Connection } from '../src/policy/decide.ts';
import { compileSnapshot, createPolicyEngine, decide, parseDocuments } from '../src/policy/index.ts';
import { mulberry32, randomConnection, syntheticCluster } from './lib/policy-gen.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '1000' },
    workloads: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '2' },
    replicas: { type: 'string', default: '5' },
  },
});
const P = Number(values.policies);
const W = Number(values.workloads);
const SECONDS = Number(values.seconds);
const REPLICAS = Number(values.replicas);

// Deterministic pseudo-random numbers, so runs compare; the cluster generator is shared with bench/scale.
const rng = mulberry32(42);
const { workloads, docs } = syntheticCluster({ policies: P, workloads: W, replicas: REPLICAS }, rng);

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

gc();
const heap0 = process.memoryUsage().heapUsed;
let t0 = process.hrtime.bigint();
const parsed = parseDocuments(docs);
const parseMs = ms(t0);
if (parsed.issues.some((i) => i.severity === 'error'))
  throw new Error(`bench policies invalid: ${parsed.issues[0]?.message}`);
t0 = process.hrtime.bigint();
const snapshot = compileSnapshot(parsed.policies, { issues: parsed.issues });
const compileMs = ms(t0);
gc();
const heap1 = process.memoryUsage().heapUsed;
t0 = process.hrtime.bigint();
const inventory = buildInventory({ workloads });
const inventoryMs = ms(t0);
gc();
const heap2 = process.memoryUsage().heapUsed;

const peers = inventory.workloads().map((w) => w.peer);
const conn = (): Connection => randomConnection(peers, rng);

// Warm the per-identity rule selection once (what a live node does as identities first appear).
t0 = process.hrtime.bigint();
const identities = new Map(peers.map((p) => [p.identity, p]));
for (const p of identities.values()) {
  snapshot.selecting(p.labels, 'ingress');
}
const warmMs = ms(t0);
gc();
const heap3 = process.memoryUsage().heapUsed;

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

const uncachedConns = Array.from({ length: 100_000 }, conn);
let k = 0;
let allowed = 0;
const uncached = rate(() => {
  const v = decide(uncachedConns[k++ % uncachedConns.length]!, snapshot);
  if (v.verdict === 'allow') allowed++;
});

const engine = createPolicyEngine(snapshot, { cacheSize: 65_536 });
const hot = Array.from({ length: 10_000 }, conn);
for (const c of hot) engine.decide(c);
k = 0;
const cached = rate(() => {
  engine.decide(hot[k++ % hot.length]!);
});

const mb = (b: number) => (b / 1024 / 1024).toFixed(1);
const out = {
  node: process.version,
  policies: P,
  rules: parsed.policies.reduce((n, p) => n + p.rules.length, 0),
  workloads: W,
  identities: identities.size,
  parseValidateMs: Math.round(parseMs),
  compileMs: Math.round(compileMs * 10) / 10,
  inventoryBuildMs: Math.round(inventoryMs),
  selectionWarmupMs: Math.round(warmMs),
  policyHeapMB: mb(heap1 - heap0),
  inventoryHeapMB: mb(heap2 - heap1),
  selectionMemoHeapMB: mb(heap3 - heap2),
  uncachedDecisionsPerSec: Math.round(uncached),
  cachedDecisionsPerSec: Math.round(cached),
  allowedShareUncached: Math.round((allowed / (uncached * SECONDS)) * 100) / 100,
  cache: engine.cacheStats(),
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
