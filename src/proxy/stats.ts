// Counters of one worker, posted whole to the main thread, which sums them across workers.
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

export interface WorkerCounters {
  active: number;
  outbound: DirectionCounters;
  inbound: DirectionCounters;
  tunnels: TunnelCounters;
}

export function emptyCounters(): WorkerCounters {
  return {
    active: 0,
    outbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
    inbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
    tunnels: { opened: 0, accepted: 0, refused: {} },
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
  }
  return total;
}
