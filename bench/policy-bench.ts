// Policy engine benchmark: 1,000 policies × 10,000 workloads.
//   node bench/policy-bench.ts [--policies N] [--workloads N] [--replicas N] [--seconds S]
// Measures: manifest parse+validation, snapshot compile, inventory build, snapshot memory, uncached
// decide() and cached engine.decide() throughput on one core. One cell of the scale grid
// (bench/scale/policy-child.ts, in a fresh process with --expose-gc), printed for reading.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runNodeJson } from './lib/child.ts';
import type { PolicyCell } from './scale/policy.ts';

const CHILD = fileURLToPath(new URL('./scale/policy-child.ts', import.meta.url));

const { values } = parseArgs({
  options: {
    policies: { type: 'string', default: '1000' },
    workloads: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '2' },
    replicas: { type: 'string', default: '5' },
  },
});

const cell = await runNodeJson<PolicyCell>(
  CHILD,
  [
    ...['--policies', values.policies, '--workloads', values.workloads],
    ...['--replicas', values.replicas, '--seconds', values.seconds, '--reps', '1'],
  ],
  { nodeFlags: ['--expose-gc'] },
);
const mb = (mib: number) => mib.toFixed(1);
const out = {
  node: process.version,
  policies: cell.policies,
  rules: cell.rules,
  workloads: cell.workloads,
  identities: cell.identities,
  parseValidateMs: Math.round(cell.parseMs),
  compileMs: Math.round(cell.compileMs * 10) / 10,
  inventoryBuildMs: Math.round(cell.inventoryMs),
  selectionWarmupMs: Math.round(cell.selectionWarmMs),
  policyHeapMB: mb(cell.snapshotHeapMiB),
  inventoryHeapMB: mb(cell.inventoryHeapMiB),
  selectionMemoHeapMB: mb(cell.selectionMemoHeapMiB),
  uncachedDecisionsPerSec: Math.round(cell.uncachedPerS),
  cachedDecisionsPerSec: Math.round(cell.cachedPerS),
  allowedShareUncached: Math.round(cell.allowedShare * 100) / 100,
  cache: cell.cache,
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
