import { describe, expect, it } from 'vitest';
import { cumulative, emptyHistogram, observe } from '../../../src/observe/histogram.ts';
import { closeVerdict, createWardMetrics } from '../../../src/observe/metrics.ts';
import { parseExposition, sampleSum, sampleValue } from '../../../src/observe/prom-text.ts';
import { decisionKey, emptyCounters, sumCounters } from '../../../src/proxy/stats.ts';
import { nodeStatus } from './fixtures.ts';

function counters() {
  const c = emptyCounters();
  c.active = 2;
  c.outbound.opened = 5;
  c.outbound.closed = { completed: 3, policy_denied: 1 };
  c.outbound.bytesUp = 3015;
  c.outbound.bytesDown = 195;
  c.inbound.opened = 4;
  c.inbound.closed = { completed: 2, auth_required: 2 };
  c.tunnels = { opened: 1, accepted: 2, refused: { tls_error: 1 } };
  observe(c.timings.tlsClient, 0.004);
  observe(c.timings.tlsClient, 0.2);
  observe(c.timings.tlsServer, 0.003);
  observe(c.timings.tunnelSetup, 9);
  c.decisions[decisionKey('EGRESS', 'FORWARDED', false, 'allowed')] = 3;
  c.decisions[decisionKey('INGRESS', 'DROPPED', true, 'auth_required')] = 2;
  return c;
}

describe('duration histograms', () => {
  it('count per bucket, sum across workers, and print cumulative with +Inf', () => {
    const a = emptyHistogram([1, 2]);
    observe(a, 0.5, [1, 2]);
    observe(a, 1, [1, 2]); // on the bound: in that bucket (le)
    observe(a, 1.5, [1, 2]);
    observe(a, 3, [1, 2]);
    expect(a).toEqual({ counts: [2, 1, 1], sum: 6, count: 4 });
    expect(cumulative(a, [1, 2])).toEqual([
      { le: '1', count: 2 },
      { le: '2', count: 3 },
      { le: '+Inf', count: 4 },
    ]);
    const total = sumCounters([counters(), counters()]);
    expect(total.timings.tlsClient.count).toBe(4);
    expect(total.decisions[decisionKey('INGRESS', 'DROPPED', true, 'auth_required')]).toBe(4);
  });
});

describe('ward metrics', () => {
  it('expose the summed counters and the node state under Prometheus names', async () => {
    const metrics = createWardMetrics(
      { status: () => nodeStatus(), counters, loopLagSeconds: () => 0.002 },
      { version: '1.2.3', defaults: false },
    );
    const m = parseExposition(await metrics.render());
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(m, 'ward_build_info', { version: '1.2.3' })).toBe(1);
    expect(sampleValue(m, 'ward_ready')).toBe(1);
    expect(m.get('ward_tcp_connections_opened_total')?.type).toBe('counter');
    expect(sampleValue(m, 'ward_tcp_connections_opened_total', { direction: 'outbound' })).toBe(5);
    expect(sampleValue(m, 'ward_tcp_connections_opened_total', { direction: 'inbound' })).toBe(4);
    expect(
      sampleValue(m, 'ward_tcp_connections_closed_total', {
        direction: 'outbound',
        reason: 'policy_denied',
        verdict: 'DROPPED',
      }),
    ).toBe(1);
    expect(
      sampleValue(m, 'ward_tcp_connections_closed_total', {
        direction: 'outbound',
        reason: 'completed',
        verdict: 'FORWARDED',
      }),
    ).toBe(3);
    expect(sampleValue(m, 'ward_tcp_received_bytes_total', { direction: 'outbound' })).toBe(3015);
    expect(sampleValue(m, 'ward_tcp_sent_bytes_total', { direction: 'outbound' })).toBe(195);
    expect(sampleValue(m, 'ward_tcp_connections_active')).toBe(2);
    expect(m.get('ward_tls_handshake_duration_seconds')?.type).toBe('histogram');
    expect(
      sampleValue(m, 'ward_tls_handshake_duration_seconds_bucket', { role: 'client', le: '0.005' }),
    ).toBe(1);
    expect(sampleValue(m, 'ward_tls_handshake_duration_seconds_bucket', { role: 'client', le: '0.25' })).toBe(
      2,
    );
    expect(sampleValue(m, 'ward_tls_handshake_duration_seconds_count', { role: 'server' })).toBe(1);
    expect(sampleValue(m, 'ward_tls_handshake_duration_seconds_sum', { role: 'client' })).toBeCloseTo(0.204);
    expect(sampleValue(m, 'ward_tunnel_setup_duration_seconds_bucket', { le: '5' })).toBe(0);
    expect(sampleValue(m, 'ward_tunnel_setup_duration_seconds_bucket', { le: '+Inf' })).toBe(1);
    expect(sampleValue(m, 'ward_tunnels_refused_total', { reason: 'tls_error' })).toBe(1);
    expect(sampleValue(m, 'ward_tunnels_pooled')).toBe(2);
    expect(sampleValue(m, 'ward_tunnel_streams_active')).toBe(3);
    expect(
      sampleValue(m, 'ward_policy_decisions_total', {
        direction: 'INGRESS',
        verdict: 'DROPPED',
        auth_required: 'true',
        reason: 'auth_required',
      }),
    ).toBe(2);
    expect(sampleSum(m, 'ward_policy_decisions_total', { verdict: 'FORWARDED' })).toBe(3);
    expect(sampleValue(m, 'ward_svids')).toBe(1);
    expect(
      sampleValue(m, 'ward_svid_expiry_seconds', { spiffe_id: 'spiffe://spiffe.cilium/identity/1001' }),
    ).toBe(1800);
    expect(sampleValue(m, 'ward_svid_rotations_total')).toBe(4);
    expect(sampleValue(m, 'ward_svid_expired_total')).toBe(1);
    expect(sampleValue(m, 'ward_source_up', { source: 'svid', kind: 'delegated' })).toBe(1);
    expect(sampleValue(m, 'ward_source_up', { source: 'policy', kind: 'files' })).toBe(1);
    expect(sampleValue(m, 'ward_source_up', { source: 'inventory', kind: 'file' })).toBe(1);
    expect(sampleValue(m, 'ward_policies', { state: 'accepted' })).toBe(4);
    expect(sampleValue(m, 'ward_workers', { state: 'ready' })).toBe(1);
    expect(sampleValue(m, 'ward_worker_restarts_total')).toBe(1);
    expect(sampleValue(m, 'ward_event_loop_lag_seconds')).toBe(0.002);
  });

  it('follow the state from scrape to scrape: unready, source down, no SVIDs', async () => {
    let status = nodeStatus();
    const metrics = createWardMetrics(
      { status: () => status, counters: emptyCounters, loopLagSeconds: () => 0 },
      { version: 'x', defaults: false },
    );
    expect(sampleValue(parseExposition(await metrics.render()), 'ward_ready')).toBe(1);
    status = nodeStatus({
      svid: { ...(status.svid ?? ({} as never)), sourceState: 'Unavailable', identities: [] },
      localWorkloads: [{ name: 'client', namespace: 'default', spiffeId: 'x', svid: 'missing' }],
    });
    const m = parseExposition(await metrics.render());
    expect(sampleValue(m, 'ward_ready')).toBe(0);
    expect(sampleValue(m, 'ward_source_up', { source: 'svid', kind: 'delegated' })).toBe(0);
    expect(sampleValue(m, 'ward_svids')).toBe(0);
    expect(m.get('ward_svid_expiry_seconds')?.samples).toEqual([]);
    expect(sampleValue(m, 'ward_local_workloads_without_svid')).toBe(1);
  });

  it('say a policy or inventory source is down when it stops delivering', async () => {
    const base = nodeStatus();
    const control = base.control;
    if (control === null) throw new Error('fixture has a control status');
    const metrics = createWardMetrics(
      {
        status: () => ({
          ...base,
          control: {
            ...control,
            policyUp: false,
            inventoryUp: true,
            sourceProblems: ['policy source: kubernetes is down (ciliumnetworkpolicies backoff)'],
          },
        }),
        counters: emptyCounters,
        loopLagSeconds: () => 0,
      },
      { version: 'x', defaults: false },
    );
    const m = parseExposition(await metrics.render());
    expect(sampleValue(m, 'ward_source_up', { source: 'policy', kind: 'files' })).toBe(0);
    expect(sampleValue(m, 'ward_source_up', { source: 'inventory', kind: 'file' })).toBe(1);
  });

  it('keep label values to bounded sets: no addresses, ports or connection ids', async () => {
    const metrics = createWardMetrics(
      { status: () => nodeStatus(), counters, loopLagSeconds: () => 0 },
      { version: 'x', defaults: false },
    );
    const m = parseExposition(await metrics.render());
    const allowed: Record<string, RegExp> = {
      direction: /^(outbound|inbound|INGRESS|EGRESS)$/,
      verdict: /^(FORWARDED|DROPPED)$/,
      auth_required: /^(true|false)$/,
      role: /^(client|server)$/,
      le: /^([\d.]+|\+Inf)$/,
      reason: /^[a-z_]+$/,
      state: /^[a-z]+$/,
      source: /^(svid|policy|inventory)$/,
      kind: /^[a-z]+$/,
      scope: /^(all|local)$/,
      version: /^x$/,
      spiffe_id: /^spiffe:\/\//,
    };
    for (const f of m.values()) {
      expect(f.name).toMatch(/^ward_[a-z_]+$/);
      for (const s of f.samples) {
        for (const [k, v] of Object.entries(s.labels)) {
          expect(allowed[k], `label ${k} of ${s.name}`).toBeDefined();
          expect(v).toMatch(allowed[k] ?? /^$/);
        }
      }
    }
  });

  it('name a close reason DROPPED exactly when policy or identity refused the connection', () => {
    expect(closeVerdict('completed')).toBe('FORWARDED');
    expect(closeVerdict('upstream_refused')).toBe('FORWARDED');
    expect(closeVerdict('policy_denied')).toBe('DROPPED');
    expect(closeVerdict('auth_required')).toBe('DROPPED');
    expect(closeVerdict('policy_changed')).toBe('DROPPED');
  });
});
