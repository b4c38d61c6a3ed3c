import { describe, expect, it } from 'vitest';
import { formatStatus, type StatusReport } from '../../../src/cli/status-command.ts';
import { healthyOf, type NodeStatus, problemsOf, readinessOf } from '../../../src/observe/node-status.ts';
import { nodeStatus, svidStatus } from './fixtures.ts';

describe('readiness', () => {
  it('is ready when serving with listeners, rules, a policy snapshot and SVIDs for the local workloads', () => {
    expect(readinessOf(nodeStatus())).toEqual({ ready: true, missing: [] });
  });

  it.each<[string, Partial<NodeStatus>, string[]]>([
    ['starting', { phase: 'starting' }, ['starting: ward has not finished starting']],
    [
      'draining',
      { phase: 'draining', listeners: { ...nodeStatus().listeners, bound: false } },
      ['draining: ward is shutting down'],
    ],
    [
      'no listeners',
      { listeners: { ...nodeStatus().listeners, bound: false } },
      ['listeners: no worker has its listeners bound'],
    ],
    [
      'rules missing',
      { rules: { ...nodeStatus().rules, installed: false } },
      ['capture rules: not installed'],
    ],
    [
      'rules not ward’s to manage',
      { rules: { ...nodeStatus().rules, managed: false, installed: false } },
      [],
    ],
    [
      'no policy snapshot',
      { control: { ...(nodeStatus().control ?? ({} as never)), loaded: false } },
      ['policy: no snapshot loaded yet'],
    ],
    [
      'a local workload without SVID',
      {
        localWorkloads: [
          {
            name: 'client',
            namespace: 'default',
            spiffeId: 'spiffe://spiffe.cilium/identity/1001',
            svid: 'valid',
          },
          {
            name: 'other',
            namespace: 'prod',
            spiffeId: 'spiffe://spiffe.cilium/identity/1002',
            svid: 'missing',
          },
        ],
      },
      ['svid: no valid SVID for prod/other (spiffe://spiffe.cilium/identity/1002)'],
    ],
    [
      'the SVID source never answered',
      {
        svid: svidStatus({ storeState: 'Initializing', sourceState: 'Unavailable', identities: [] }),
        localWorkloads: [],
      },
      ['svid: the delegated source has not delivered SVIDs yet (Unavailable)'],
    ],
    [
      'no SVID source configured: nothing to wait for',
      {
        svid: null,
        localWorkloads: [{ name: 'c', namespace: 'default', spiffeId: 'x', svid: 'not_needed' }],
      },
      [],
    ],
    [
      'the source is down but the SVIDs are still valid: ready (it degrades, status says so)',
      { svid: svidStatus({ sourceState: 'Unavailable' }) },
      [],
    ],
  ])('%s', (_name, over, missing) => {
    const r = readinessOf(nodeStatus(over));
    expect(r.missing).toEqual(missing);
    expect(r.ready).toBe(missing.length === 0);
  });

  it('lists at most ten workloads without SVID, then counts the rest', () => {
    const many = Array.from({ length: 13 }, (_, i) => ({
      name: `w${i}`,
      namespace: 'default',
      spiffeId: `spiffe://td/identity/${i}`,
      svid: 'missing' as const,
    }));
    const r = readinessOf(nodeStatus({ localWorkloads: many }));
    expect(r.missing).toHaveLength(11);
    expect(r.missing.at(-1)).toBe('svid: …and 3 more workloads');
  });
});

describe('problems and health', () => {
  it('a stopped SVID source, a stall, rejected policies and a restarting worker are problems', () => {
    const s = nodeStatus({
      svid: svidStatus({ sourceState: 'Unavailable', sourceReason: 'connect ECONNREFUSED' }),
      liveness: { live: false, maxLagMs: 7000, thresholdMs: 5000 },
      control: { ...(nodeStatus().control ?? ({} as never)), rejected: 2 },
      workers: [
        { index: 0, threadId: 2, state: 'ready', restarts: 0, activeConnections: 0 },
        { index: 1, threadId: null, state: 'restarting', restarts: 3, activeConnections: 0 },
      ],
    });
    expect(problemsOf(s)).toEqual([
      'liveness: the main event loop stalled for 7000 ms (limit 5000 ms)',
      'svid source: delegated is Unavailable since 2025-01-01T00:00:00.000Z (connect ECONNREFUSED)',
      'policy: 2 document(s) rejected (ward policy validate shows why)',
      'worker 1: restarting',
    ]);
    expect(healthyOf(s)).toBe(false);
    expect(healthyOf(nodeStatus())).toBe(true);
  });
});

describe('ward status output', () => {
  const report = (s: NodeStatus): StatusReport => ({
    ...s,
    readiness: readinessOf(s),
    problems: problemsOf(s),
    healthy: healthyOf(s),
  });
  const now = Date.parse('2025-01-01T00:10:00.000Z');

  it('sums a healthy node up, cilium-status style', () => {
    const text = formatStatus(report(nodeStatus()), false, now);
    expect(text).toContain('Ward:            OK   node a, ward 0.0.0-test, pid 42, serving for 10m00s\n');
    expect(text).toContain('Capture rules:   OK   installed (iptables-nft, chain WARD_PREROUTING)\n');
    expect(text).toContain('SVID source:     OK   delegated: Available for 10m00s\n');
    expect(text).toContain(
      'Identities:      1 SVIDs held (Available), soonest expiry in 30m00s (spiffe://spiffe.cilium/identity/1001); 4 loaded/rotated, 1 expired unreplaced\n',
    );
    expect(text).toContain('Policy:          files: revision 3, 4 valid, 0 rejected, 1 warnings\n');
    expect(text).toContain(
      'Connections:     3 active; opened 10 outbound, 7 inbound; 2 tunnels, 3 streams\n',
    );
    expect(text).not.toContain('Problems:');
    expect(text).not.toContain('serial AB01');
    expect(formatStatus(report(nodeStatus()), true, now)).toContain(
      '  spiffe://spiffe.cilium/identity/1001  serial AB01  expires 2025-01-01T01:00:00.000Z (in 30m00s)',
    );
  });

  it('reports a stopped SVID source and lists the problems', () => {
    const s = nodeStatus({ svid: svidStatus({ sourceState: 'Unavailable', sourceReason: 'stream closed' }) });
    const text = formatStatus(report(s), false, now);
    expect(text).toContain('SVID source:     STOPPED   delegated: Unavailable for 10m00s (stream closed)\n');
    expect(text).toContain('Ward:            FAILING');
    expect(text).toContain(
      '\nProblems:\n  - svid source: delegated is Unavailable since 2025-01-01T00:00:00.000Z (stream closed)\n',
    );
  });
});

describe('source health in the problems list', () => {
  it('names a source that stopped delivering and why', () => {
    const base = nodeStatus();
    if (base.control === null) throw new Error('fixture has a control status');
    const s = {
      ...base,
      control: {
        ...base.control,
        inventoryUp: false,
        sourceProblems: ['inventory source: file is down (bad YAML (the last good inventory stays))'],
      },
    };
    expect(problemsOf(s)).toContain(
      'inventory source: file is down (bad YAML (the last good inventory stays))',
    );
    expect(healthyOf(s)).toBe(false);
  });
});
