// Counters of one worker, posted whole to the main thread, which sums them across workers.
import { addHistogram, emptyHistogram, type HistogramCounts } from '../observe/histogram.ts';

export type Direction = 'outbound' | 'inbound';

/** Why a connection ended; one of these ends every access-log line. */
export type CloseReason =
  | 'completed'
  | 'client_reset'
  | 'upstream_reset'
  | 'client_error'
  | 'upstream_error'
  | 'upstream_refused'
  | 'upstream_unreachable'
  | 'upstream_socket'
  | 'connect_timeout'
  | 'idle_timeout'
  | 'connection_limit'
  | 'self_connect'
  | 'shutdown'
  // HBONE, outbound: the tunnel to the destination node could not be had.
  | 'tunnel_failed'
  | 'peer_rejected'
  | 'tunnel_refused'
  // HBONE, inbound: a CONNECT stream ward would not serve.
  | 'bad_request'
  | 'target_not_local'
  | 'target_mismatch'
  // Policy and identity.
  | 'policy_denied'
  | 'auth_required'
  | 'auth_failed'
  | 'unknown_source'
  | 'unknown_identity'
  | 'identity_unavailable'
  | 'policy_changed';

export interface DirectionCounters {
  opened: number;
  closed: Partial<Record<CloseReason, number>>;
  bytesUp: number;
  bytesDown: number;
}

export interface TunnelCounters {
  /** Outbound tunnel connections opened (TLS handshakes made as a client). */
  opened: number;
  /** Inbound tunnel connections accepted after a verified handshake. */
  accepted: number;
  /** Inbound tunnel connections refused before any stream, by reason. */
  refused: Record<string, number>;
}

/** Handshake and setup durations, in seconds. */
export interface TimingCounters {
  /** Outbound tunnels: TCP connect start to TLS handshake done (ward as the TLS client). */
  tlsClient: HistogramCounts;
  /** Inbound tunnels: accepted to TLS handshake done (ward as the TLS server), successful ones only. */
  tlsServer: HistogramCounts;
  /** Outbound tunnels: TCP connect start to the HTTP/2 session being ready for streams. */
  tunnelSetup: HistogramCounts;
}

export interface WorkerCounters {
  active: number;
  outbound: DirectionCounters;
  inbound: DirectionCounters;
  tunnels: TunnelCounters;
  timings: TimingCounters;
  /** Policy decisions, keyed `decisionKey(...)`. */
  decisions: Record<string, number>;
}

/** The key of a policy decision counter: `<INGRESS|EGRESS>|<FORWARDED|DROPPED>|<authRequired>|<reason>`. */
export function decisionKey(
  direction: string,
  verdict: string,
  authRequired: boolean,
  reason: string,
): string {
  return `${direction}|${verdict}|${authRequired ? 'true' : 'false'}|${reason}`;
}

export function emptyCounters(): WorkerCounters {
  return {
    active: 0,
    outbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
    inbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
    tunnels: { opened: 0, accepted: 0, refused: {} },
    timings: { tlsClient: emptyHistogram(), tlsServer: emptyHistogram(), tunnelSetup: emptyHistogram() },
    decisions: {},
  };
}

function addDirection(into: DirectionCounters, from: DirectionCounters): void {
  into.opened += from.opened;
  into.bytesUp += from.bytesUp;
  into.bytesDown += from.bytesDown;
  for (const [reason, n] of Object.entries(from.closed) as [CloseReason, number][]) {
    into.closed[reason] = (into.closed[reason] ?? 0) + n;
  }
}

export function sumCounters(all: Iterable<WorkerCounters>): WorkerCounters {
  const total = emptyCounters();
  for (const c of all) {
    total.active += c.active;
    addDirection(total.outbound, c.outbound);
    addDirection(total.inbound, c.inbound);
    total.tunnels.opened += c.tunnels.opened;
    total.tunnels.accepted += c.tunnels.accepted;
    for (const [reason, n] of Object.entries(c.tunnels.refused)) {
      total.tunnels.refused[reason] = (total.tunnels.refused[reason] ?? 0) + n;
    }
    addHistogram(total.timings.tlsClient, c.timings.tlsClient);
    addHistogram(total.timings.tlsServer, c.timings.tlsServer);
    addHistogram(total.timings.tunnelSetup, c.timings.tunnelSetup);
    for (const [key, n] of Object.entries(c.decisions))
      total.decisions[key] = (total.decisions[key] ?? 0) + n;
  }
  return total;
}
