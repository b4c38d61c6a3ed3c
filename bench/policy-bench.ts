// Policy engine benchmark: 1,000 policies × 10,000 workloads.
//   node bench/policy-bench.ts [--policies N] [--workloads N] [--replicas N] [--seconds S]
// Measures: manifest parse+validation, snapshot compile, inventory build, snapshot memory, uncached
// decide() and cached engine.decide() throughput on one core (this process, one thread).

import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buildInventory, type WorkloadInput } from '../src/inventory/inventory.ts';
import type { Connection } from '../src/policy/decide.ts';
import { compileSnapshot, createPolicyEngine, decide, parseDocuments } from '../src/policy/index.ts';
import type { RawDocument } from '../src/policy/manifest.ts';

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
const NAMESPACES = 100;
const REPLICAS = Number(values.replicas);
const APPS_PER_NS = Math.max(1, Math.floor(W / NAMESPACES / REPLICAS)); // pods per identity: REPLICAS

// Deterministic pseudo-random numbers (mulberry32), so runs compare.
let seed = 42;
const rand = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = (n: number) => Math.floor(rand() * n);

// Workloads: 100 namespaces, APPS_PER_NS apps each, REPLICAS pods per app (one identity per app).
const workloads: WorkloadInput[] = [];
for (let i = 0; i < W; i++) {
  const ns = i % NAMESPACES;
  const appN = Math.floor(i / NAMESPACES) % APPS_PER_NS;
  workloads.push({
    name: `w${i}`,
    namespace: `ns${ns}`,
    labels: { app: `app${appN}`, tier: appN % 3 === 0 ? 'web' : 'db' },
    ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  });
}

// Policies: per namespace, CNPs selecting one app with ingress from two apps on 80/443 (every fourth
// requires authentication), every tenth also an egress rule and a deny; 2% cluster-wide.
const docs: RawDocument[] = [];
for (let i = 0; i < P; i++) {
  const ns = `ns${i % NAMESPACES}`;
  const subject = `app${pick(APPS_PER_NS)}`;
  const clusterwide = i % 50 === 0;
  const spec: Record<string, unknown> = {
    endpointSelector: { matchLabels: { app: subject } },
    ingress: [
      {
        fromEndpoints: [
          { matchLabels: { app: `app${pick(APPS_PER_NS)}` } },
          { matchLabels: { app: `app${pick(APPS_PER_NS)}` } },
        ],
        toPorts: [
          {
            ports: [
              { port: '80', protocol: 'TCP' },
              { port: '443', protocol: 'TCP' },
            ],
          },
        ],
        ...(i % 4 === 0 ? { authentication: { mode: 'required' } } : {}),
      },
    ],
  };
  if (i % 10 === 0) {
    spec.egress = [
      { toEndpoints: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'db'] }] }] },
      { toEntities: ['world'] },
    ];
    spec.ingressDeny = [
      {
        fromEndpoints: [{ matchLabels: { app: `app${pick(APPS_PER_NS)}` } }],
        toPorts: [{ ports: [{ port: '22' }] }],
      },
    ];
  }
  docs.push({
    file: `bench/${i}.yaml`,
    document: 0,
    prefix: '',
    value: clusterwide
      ? {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumClusterwideNetworkPolicy',
          metadata: { name: `p${i}` },
          spec,
        }
      : {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: `p${i}`, namespace: ns },
          spec,
        },
  });
}

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
const conn = (): Connection => ({
  src: peers[pick(peers.length)]!,
  dst: peers[pick(peers.length)]!,
  dport: rand() < 0.5 ? 80 : 443,
  protocol: 'TCP',
});

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
