// Prometheus metrics, on the main thread, from counters the workers post (summed across live and exited
// workers) and from the control plane's state. Every value is read at scrape time by a collect()
// callback, so nothing on the data path touches prom-client. Labels are bounded enums (direction,
// reason, verdict, role, state), except spiffe_id on the expiry gauge: one series per identity this node
// holds, which the inventory bounds. Documented in docs/metrics.md.
import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import type { WorkerCounters } from '../proxy/stats.ts';
import { DROP_REASONS } from './flow.ts';
import { cumulative, DURATION_BUCKETS, type HistogramCounts } from './histogram.ts';
import { type NodeStatus, readinessOf } from './node-status.ts';

export interface MetricsSource {
  status(): NodeStatus;
  counters(): WorkerCounters;
  loopLagSeconds(): number;
}

const DIRECTIONS = ['outbound', 'inbound'] as const;

/** The verdict a close reason stands for: a policy or identity refusal is DROPPED. */
export function closeVerdict(reason: string): 'FORWARDED' | 'DROPPED' {
  return reason in DROP_REASONS ? 'DROPPED' : 'FORWARDED';
}

type Labels = Record<string, string>;

/** A histogram whose buckets come whole from elsewhere (the workers' bucket counts). */
class ForwardedHistogram extends Histogram<string> {
  readonly #read: () => readonly { labels: Labels; h: HistogramCounts }[];
  readonly #name: string;
  readonly #help: string;

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    registry: Registry,
    read: () => readonly { labels: Labels; h: HistogramCounts }[],
  ) {
    super({ name, help, labelNames, buckets: [...DURATION_BUCKETS], registers: [registry] });
    this.#read = read;
    this.#name = name;
    this.#help = help;
    // The registry formats from getForPromString() when a metric has one (prom-client's Histogram does,
    // and reads its own observations there): answer with the forwarded buckets instead.
    Object.defineProperty(this, 'getForPromString', { value: () => this.get() });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    for (const { labels, h } of this.#read()) {
      for (const b of cumulative(h)) {
        values.push({ metricName: `${this.#name}_bucket`, labels: { ...labels, le: b.le }, value: b.count });
      }
      values.push({ metricName: `${this.#name}_sum`, labels, value: h.sum });
      values.push({ metricName: `${this.#name}_count`, labels, value: h.count });
    }
    return {
      name: this.#name,
      help: this.#help,
      // prom-client types `type` as a TypeScript enum it does not export at run time; its value is the string.
      type: 'histogram' as unknown as MetricType,
      aggregator: 'sum',
      collect: () => {},
      values,
    };
  }
}

export interface WardMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The exposition text. */
  render(): Promise<string>;
}

export function createWardMetrics(
  source: MetricsSource,
  opts: { version: string; defaults?: boolean },
): WardMetrics {
  const registry = new Registry();
  if (opts.defaults !== false) collectDefaultMetrics({ register: registry });
  // One snapshot per scrape: every collect() of the scrape reads the same figures.
  let scrape: { status: NodeStatus; counters: WorkerCounters } | null = null;
  const snap = () => {
    scrape ??= { status: source.status(), counters: source.counters() };
    return scrape;
  };

  const counter = (
    name: string,
    help: string,
    labelNames: readonly string[],
    read: () => Iterable<[Labels, number]>,
  ) =>
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.inc(labels, v);
      },
    });
  const gauge = (
    name: string,
    help: string,
    labelNames: readonly string[],
    read: () => Iterable<[Labels, number]>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [labels, v] of read()) this.set(labels, v);
      },
    });

  gauge('ward_build_info', 'Always 1; the version of ward running.', ['version'], () => [
    [{ version: opts.version }, 1],
  ]);
  gauge('ward_ready', '1 when /healthz/ready answers 200 (serving), else 0.', [], () => [
    [{}, readinessOf(snap().status).ready ? 1 : 0],
  ]);

  // ── connections ──
  counter(
    'ward_tcp_connections_opened_total',
    'Connections accepted, by direction (outbound: from a local pod; inbound: to a local pod, plaintext or over HBONE).',
    ['direction'],
    () => DIRECTIONS.map((d) => [{ direction: d }, snap().counters[d].opened]),
  );
  counter(
    'ward_tcp_connections_closed_total',
    'Connections ended, by direction, close reason and the verdict the reason stands for.',
    ['direction', 'reason', 'verdict'],
    function* () {
      for (const d of DIRECTIONS) {
        for (const [reason, n] of Object.entries(snap().counters[d].closed)) {
          yield [{ direction: d, reason, verdict: closeVerdict(reason) }, n ?? 0];
        }
      }
    },
  );
  gauge('ward_tcp_connections_active', 'Connections open now, across workers.', [], () => [
    [{}, snap().counters.active],
  ]);
  counter(
    'ward_tcp_received_bytes_total',
    'Bytes read from clients (the request direction), counted when a connection ends.',
    ['direction'],
    () => DIRECTIONS.map((d) => [{ direction: d }, snap().counters[d].bytesUp]),
  );
  counter(
    'ward_tcp_sent_bytes_total',
    'Bytes read from upstreams and sent to clients (the response direction), counted when a connection ends.',
    ['direction'],
    () => DIRECTIONS.map((d) => [{ direction: d }, snap().counters[d].bytesDown]),
  );

  // ── tunnels ──
  new ForwardedHistogram(
    'ward_tls_handshake_duration_seconds',
    'TLS handshakes of HBONE tunnels that completed: role client (outbound, from TCP connect) or server (inbound, from accept).',
    ['role'],
    registry,
    () => [
      { labels: { role: 'client' }, h: snap().counters.timings.tlsClient },
      { labels: { role: 'server' }, h: snap().counters.timings.tlsServer },
    ],
  );
  new ForwardedHistogram(
    'ward_tunnel_setup_duration_seconds',
    'Outbound HBONE tunnels: TCP connect to HTTP/2 session ready for CONNECT streams.',
    [],
    registry,
    () => [{ labels: {}, h: snap().counters.timings.tunnelSetup }],
  );
  counter('ward_tunnels_opened_total', 'Outbound HBONE tunnel connections established.', [], () => [
    [{}, snap().counters.tunnels.opened],
  ]);
  counter(
    'ward_tunnels_accepted_total',
    'Inbound HBONE tunnel connections accepted after a verified handshake.',
    [],
    () => [[{}, snap().counters.tunnels.accepted]],
  );
  counter(
    'ward_tunnels_refused_total',
    'Inbound HBONE tunnel connections refused before any stream, by reason.',
    ['reason'],
    () => Object.entries(snap().counters.tunnels.refused).map(([reason, n]) => [{ reason }, n]),
  );
  gauge('ward_tunnels_pooled', 'Outbound tunnel connections in the pools now.', [], () => [
    [{}, snap().status.connections.tunnels],
  ]);
  gauge('ward_tunnel_streams_active', 'CONNECT streams open on pooled outbound tunnels now.', [], () => [
    [{}, snap().status.connections.streams],
  ]);

  // ── policy ──
  counter(
    'ward_policy_decisions_total',
    'Policy decisions (one per flow record), by traffic direction, verdict, whether a matching rule required authentication, and reason.',
    ['direction', 'verdict', 'auth_required', 'reason'],
    () =>
      Object.entries(snap().counters.decisions).map(([key, n]) => {
        const [direction = '', verdict = '', auth = '', reason = ''] = key.split('|');
        return [{ direction, verdict, auth_required: auth, reason }, n];
      }),
  );
  gauge(
    'ward_policies',
    'Policies in the current snapshot: accepted, rejected documents, warnings.',
    ['state'],
    function* () {
      const c = snap().status.control;
      if (c === null) return;
      yield [{ state: 'accepted' }, c.policies];
      yield [{ state: 'rejected' }, c.rejected];
      yield [{ state: 'warning' }, c.warnings];
    },
  );
  gauge('ward_policy_revision', 'Revision of the policy snapshot in force.', [], function* () {
    const c = snap().status.control;
    if (c !== null) yield [{}, c.revision];
  });
  gauge(
    'ward_inventory_workloads',
    'Workloads in the inventory: all, and those on this node.',
    ['scope'],
    function* () {
      const s = snap().status;
      if (s.control === null) return;
      yield [{ scope: 'all' }, s.control.workloads];
      yield [{ scope: 'local' }, s.localWorkloads.length];
    },
  );

  // ── identities ──
  gauge('ward_svids', 'Unexpired X.509-SVIDs ward holds.', [], function* () {
    const v = snap().status.svid;
    if (v !== null) yield [{}, v.identities.length];
  });
  gauge(
    'ward_svid_expiry_seconds',
    'Seconds until each held SVID expires (negative never: an expired SVID is dropped).',
    ['spiffe_id'],
    function* () {
      for (const i of snap().status.svid?.identities ?? [])
        yield [{ spiffe_id: i.spiffeId }, i.expiresInSeconds];
    },
  );
  gauge(
    'ward_local_workloads_without_svid',
    'Workloads of this node for which ward holds no valid SVID (ward is not ready while above 0).',
    [],
    function* () {
      if (snap().status.svid === null) return;
      yield [{}, snap().status.localWorkloads.filter((w) => w.svid === 'missing').length];
    },
  );
  const svidStat = (
    name: string,
    help: string,
    key: 'rotations' | 'expired' | 'refreshes' | 'refusedExpired',
  ) =>
    counter(name, help, [], function* () {
      const v = snap().status.svid;
      if (v !== null) yield [{}, v.stats[key]];
    });
  svidStat(
    'ward_svid_rotations_total',
    'SVIDs accepted from the source: first ones and rotations.',
    'rotations',
  );
  svidStat(
    'ward_svid_expired_total',
    'SVIDs that expired without a replacement (rotation failures).',
    'expired',
  );
  svidStat(
    'ward_svid_refreshes_total',
    'Refreshes ward asked for because no rotation came by half-life.',
    'refreshes',
  );
  svidStat('ward_svid_refused_total', 'SVIDs the source sent already expired.', 'refusedExpired');

  // ── sources ──
  gauge(
    'ward_source_up',
    '1 when a control-plane source is delivering: svid = its stream or directory Available; kubernetes = every watch watching (or relisting); files = a snapshot loaded; inventory file = read without error.',
    ['source', 'kind'],
    function* () {
      const s = snap().status;
      if (s.svid !== null)
        yield [{ source: 'svid', kind: s.svid.kind }, s.svid.sourceState === 'Available' ? 1 : 0];
      if (s.control !== null) {
        if (s.control.policySource !== 'none') {
          yield [{ source: 'policy', kind: s.control.policySource }, s.control.policyUp ? 1 : 0];
        }
        if (s.control.inventorySource !== 'none') {
          yield [{ source: 'inventory', kind: s.control.inventorySource }, s.control.inventoryUp ? 1 : 0];
        }
      }
    },
  );

  // ── process ──
  gauge('ward_workers', 'Worker threads by state.', ['state'], function* () {
    const by = new Map<string, number>();
    for (const w of snap().status.workers) by.set(w.state, (by.get(w.state) ?? 0) + 1);
    yield* [...by].map(([state, n]): [Labels, number] => [{ state }, n]);
  });
  counter('ward_worker_restarts_total', 'Worker threads replaced after they died.', [], () => [
    [{}, snap().status.workerRestarts],
  ]);
  gauge('ward_event_loop_lag_seconds', "How late the main thread's last lag-timer tick fired.", [], () => [
    [{}, source.loopLagSeconds()],
  ]);

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      scrape = null;
      try {
        return await registry.metrics();
      } finally {
        scrape = null;
      }
    },
  };
}
