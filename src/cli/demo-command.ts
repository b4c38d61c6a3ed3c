// ward demo: the seed scenario (shared/seeds/, examples/seed/) played for real in the lab. Builds two
// node namespaces, starts the development CA and a ward per node, runs demodeployment (three replicas
// over both nodes, each serving a small page on port 80) and client1/2/3, applies the seed's policies,
// makes each client's requests, prints the Hubble-like flows and a summary, and tears everything down.
// Needs root.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabPod, type LogLine } from '../lab/lab.ts';
import { type FlowRecord, formatCompact } from '../observe/flow.ts';
import { parseCli } from './usage.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const PEER = join(ROOT, 'src', 'lab', 'peer.ts');
const SEED_POLICIES = join(ROOT, 'examples', 'seed', 'policies');
const DEMO_PODS = ['demodeployment-0', 'demodeployment-1', 'demodeployment-2'];

export interface DemoResult {
  readonly client: string;
  readonly target: string;
  readonly outcome: 'allowed' | 'denied';
  readonly mtls: boolean;
  readonly reason: string;
}

function peerJson(pod: LabPod, args: string[]): Record<string, unknown> {
  const out = pod.exec([process.execPath, '--disable-warning=ExperimentalWarning', PEER, ...args]);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

async function waitForFlows(lab: Lab, want: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const n = lab.nodes.reduce(
      (sum, node) => sum + (node.ward?.lines().filter((l) => l.component === 'flow').length ?? 0),
      0,
    );
    if (n >= want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runDemo(opts: { name?: string; log?: (line: string) => void } = {}): Promise<{
  results: DemoResult[];
  flows: FlowRecord[];
}> {
  const say = opts.log ?? (() => {});
  const policies = Object.fromEntries(
    readdirSync(SEED_POLICIES)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => [f, readFileSync(join(SEED_POLICIES, f), 'utf8')]),
  );
  say('building the lab: nodes a and b, the development CA, a ward per node …');
  const lab = await Lab.create({
    name: opts.name ?? 'demo',
    nodes: [
      { name: 'a', pods: ['client1', 'client3', 'demodeployment-0'] },
      { name: 'b', pods: ['client2', 'demodeployment-1', 'demodeployment-2'] },
    ],
    mesh: {
      workloads: Object.fromEntries([
        ...['client1', 'client2', 'client3'].map((c) => [c, { labels: { app: c } }]),
        ...DEMO_PODS.map((d) => [d, { labels: { app: 'demodeployment' } }]),
      ]),
      policies,
    },
  });
  const servers: { kill: () => void }[] = [];
  try {
    for (const d of DEMO_PODS) {
      const child = lab.pod(d).spawn([process.execPath, PEER, 'http', '--port', '80', '--body', '615']);
      servers.push({ kill: () => child.kill('SIGKILL') });
      await new Promise<void>((r) => child.stdout?.once('data', () => r()));
    }
    say(`policies: ${Object.keys(policies).join(', ')}`);
    const results: DemoResult[] = [];
    for (const client of ['client1', 'client2', 'client3']) {
      for (const target of DEMO_PODS) {
        const pod = lab.pod(client);
        const res = peerJson(pod, ['get', '--to', `${lab.pod(target).ip}:80`, '--timeout', '5000']);
        results.push({
          client,
          target,
          outcome: res.ok === true && res.status === 200 ? 'allowed' : 'denied',
          mtls: false,
          reason: '',
        });
      }
    }
    await waitForFlows(lab, results.length);
    await new Promise((r) => setTimeout(r, 200));
    const flows = lab.nodes
      .flatMap((n) => n.ward?.lines().filter((l) => l.component === 'flow') ?? [])
      .map((l) => l as unknown as FlowRecord)
      .sort((a, b) => (a.time < b.time ? -1 : 1));
    const access: LogLine[] = lab.nodes.flatMap((n) => n.ward?.accessLog() ?? []);
    const explained = results.map((r) => explain(lab, r, flows, access));
    return { results: explained, flows };
  } finally {
    for (const s of servers) s.kill();
    say('tearing the lab down …');
    await lab.destroy();
  }
}

/** mTLS and the reason, from the source ward's access line and the flows of this request. */
function explain(lab: Lab, r: DemoResult, flows: FlowRecord[], access: LogLine[]): DemoResult {
  const src = lab.pod(r.client).ip;
  const dst = lab.pod(r.target).ip;
  const mine = flows.filter((f) => f.IP.source === src && f.IP.destination === dst);
  const line = access.find(
    (l) => l.direction === 'outbound' && String(l.src).startsWith(`${src}:`) && l.dst === `${dst}:80`,
  );
  const mtls = line?.tunnel !== undefined && line.mtls === true;
  const drop = mine.find((f) => f.verdict === 'DROPPED');
  if (r.outcome === 'denied' || drop !== undefined) {
    const why =
      drop === undefined
        ? String(line?.reason ?? 'no answer')
        : drop.ward.reason === 'auth_required'
          ? 'Authentication required: the rule that allows it needs mTLS'
          : `Policy denied: no rule allows it (selected by ${drop.ward.policies.map(shortName).join(', ') || 'no policy'})`;
    return { ...r, outcome: 'denied', mtls, reason: why };
  }
  const ingress = mine.find((f) => f.traffic_direction === 'INGRESS');
  const policies = ingress?.ward.policies.join(', ') ?? '';
  const sameNode = line?.sameNode === true;
  const how = mtls ? 'mTLS (HBONE)' : sameNode ? 'same node, both identities held by ward' : 'plaintext';
  return {
    ...r,
    mtls,
    reason: `allowed by ${policies.split(', ').map(shortName).join(', ') || 'no policy selecting it'}; ${how}`,
  };
}

function shortName(policyKey: string): string {
  return policyKey.split('/').pop() ?? policyKey;
}

function table(rows: DemoResult[]): string {
  const head = ['client', 'target', 'outcome', 'mTLS', 'reason'];
  const cells = rows.map((r) => [r.client, r.target, r.outcome, r.mtls ? 'yes' : 'no', r.reason]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const fmt = (c: string[]) => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ');
  return [fmt(head), fmt(widths.map((w) => '-'.repeat(w))), ...cells.map(fmt)].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: { json: { type: 'boolean', default: false }, name: { type: 'string', default: 'demo' } },
    strict: true,
  });
  if (process.getuid?.() !== 0) {
    process.stderr.write('ward demo builds network namespaces and needs root\n');
    return 1;
  }
  const log = values.json ? undefined : (line: string) => process.stdout.write(`${line}\n`);
  const { results, flows } = await runDemo({ name: values.name, ...(log === undefined ? {} : { log }) });
  if (values.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return 0;
  }
  process.stdout.write('\nflows (as hubble observe prints them):\n');
  for (const f of flows) process.stdout.write(`${formatCompact(f)}\n`);
  process.stdout.write(`\n${table(results)}\n`);
  return 0;
}
