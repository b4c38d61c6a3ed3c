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
  | 'shutdown';

export interface DirectionCounters {
  opened: number;
  closed: Partial<Record<CloseReason, number>>;
  bytesUp: number;
  bytesDown: number;
}

export interface WorkerCounters {
  active: number;
  outbound: DirectionCounters;
  inbound: DirectionCounters;
}

export function emptyCounters(): WorkerCounters {
  return {
    active: 0,
    outbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
    inbound: { opened: 0, closed: {}, bytesUp: 0, bytesDown: 0 },
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
  }
  return total;
}
