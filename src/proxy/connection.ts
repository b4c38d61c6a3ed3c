// One proxied TCP connection: a client socket, an upstream socket, and exactly one end.
// Every terminal event (completion, reset, error, timeout, limit, shutdown) goes through finish(), which
// is idempotent and writes the connection's one access-log line.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { type Endpoint, formatEndpoint } from '../net/address.ts';
import type { CloseReason, Direction, WorkerCounters } from './stats.ts';
import type { Sweepable, Sweeper } from './sweeper.ts';

/** What a connection needs from the worker that owns it. */
export interface ConnectionOwner {
  readonly sweeper: Sweeper;
  readonly counters: WorkerCounters;
  readonly accessLog: Logger | null;
  readonly workerId: number;
  connectionClosed(conn: Connection): void;
}

const kConn = Symbol('ward.connection');
const kPeer = Symbol('ward.peer');

interface SplicedSocket extends Socket {
  [kConn]: Connection;
  [kPeer]: Socket;
}

/** Resets a socket (RST) where it is connected; a socket still connecting is simply closed. */
export function resetSocket(s: Socket): void {
  if (s.destroyed) return;
  if (s.connecting || (s as unknown as { _handle: unknown })._handle === null) s.destroy();
  else s.resetAndDestroy();
}

// Named handlers shared by every connection: `this` is the socket, its connection and peer hang off it.
function onData(this: SplicedSocket, chunk: Buffer): void {
  this[kConn].lastActive = this[kConn].owner.sweeper.now;
  if (!this[kPeer].write(chunk)) this.pause();
}

function onDrain(this: SplicedSocket): void {
  this[kPeer].resume();
}

/** FIN one way: pass it on and keep the other direction flowing (half-close). */
function onEnd(this: SplicedSocket): void {
  this[kPeer].end();
}

function onError(this: SplicedSocket, err: Error): void {
  this[kConn].abort(this, err);
}

function onClose(this: SplicedSocket): void {
  this[kConn].sideClosed(this);
}

let nextId = 1;

export class Connection implements Sweepable {
  readonly id: number;
  readonly direction: Direction;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly client: Socket;
  readonly owner: ConnectionOwner;
  readonly startedAt: number;
  upstream: Socket | null;
  lastActive: number;
  connectDeadline: number;
  #clientClosed: boolean;
  #upstreamClosed: boolean;
  #finished: boolean;

  constructor(owner: ConnectionOwner, direction: Direction, client: Socket, src: Endpoint, dst: Endpoint) {
    this.id = nextId++;
    this.owner = owner;
    this.direction = direction;
    this.client = client;
    this.src = src;
    this.dst = dst;
    this.startedAt = Date.now();
    this.upstream = null;
    this.lastActive = owner.sweeper.now;
    this.connectDeadline = 0;
    this.#clientClosed = false;
    this.#upstreamClosed = false;
    this.#finished = false;
    const c = client as SplicedSocket;
    c[kConn] = this;
    c.on('error', onError);
    c.on('close', onClose);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** Starts the upstream connect; the client stays paused until it succeeds. */
  connectUpstream(upstream: Socket, connectTimeoutMs: number): void {
    this.upstream = upstream;
    this.connectDeadline = this.owner.sweeper.now + connectTimeoutMs;
    const u = upstream as SplicedSocket;
    u[kConn] = this;
    u.once('connect', () => this.#spliceNow());
    u.on('error', onError);
    u.on('close', onClose);
    u.connect({ port: this.dst.port, host: this.dst.ip });
  }

  #spliceNow(): void {
    const client = this.client as SplicedSocket;
    const upstream = this.upstream as SplicedSocket;
    this.connectDeadline = 0;
    this.lastActive = this.owner.sweeper.now;
    client[kPeer] = upstream;
    upstream[kPeer] = client;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      s.on('data', onData);
      s.on('drain', onDrain);
      s.on('end', onEnd);
    }
    client.resume();
  }

  /** An error on one side: classify it, reset the other side, end the connection. */
  abort(side: Socket, err: Error): void {
    if (this.#finished) return;
    const { code } = describeError(err);
    const isClient = side === this.client;
    let reason: CloseReason;
    if (!isClient && this.connectDeadline !== 0) {
      reason =
        code === 'ECONNREFUSED'
          ? 'upstream_refused'
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'EHOSTDOWN'
            ? 'upstream_unreachable'
            : 'upstream_error';
    } else if (code === 'ECONNRESET') {
      reason = isClient ? 'client_reset' : 'upstream_reset';
    } else {
      reason = isClient ? 'client_error' : 'upstream_error';
    }
    this.close(reason, err);
  }

  sideClosed(side: Socket): void {
    if (side === this.client) this.#clientClosed = true;
    else this.#upstreamClosed = true;
    if (this.#finished) return;
    if (this.#clientClosed && (this.#upstreamClosed || this.upstream === null)) {
      // The client went away before there was an upstream (or without an error): nothing more to do.
      this.close(this.upstream === null || this.connectDeadline !== 0 ? 'client_reset' : 'completed');
    } else if (this.#upstreamClosed && this.#clientClosed) {
      this.close('completed');
    } else if (this.#upstreamClosed && this.connectDeadline !== 0) {
      this.close('upstream_error');
    }
  }

  onConnectTimeout(): void {
    this.close('connect_timeout');
  }

  onIdleTimeout(): void {
    this.close('idle_timeout');
  }

  /**
   * Ends the connection now. Abnormal ends reset the client (and the upstream), so a failure on one side
   * is seen as a failure on the other; idle timeouts and shutdown close both sides.
   */
  close(reason: CloseReason, err?: unknown): void {
    if (this.#finished) return;
    this.#finished = true;
    const upstream = this.upstream;
    if (reason === 'idle_timeout' || reason === 'shutdown' || reason === 'completed') {
      this.client.destroy();
      upstream?.destroy();
    } else {
      resetSocket(this.client);
      if (upstream !== null) resetSocket(upstream);
    }
    this.#record(reason, err);
    this.owner.connectionClosed(this);
  }

  #record(reason: CloseReason, err: unknown): void {
    const counters = this.owner.counters[this.direction];
    const bytesUp = this.client.bytesRead;
    const bytesDown = this.upstream?.bytesRead ?? 0;
    counters.closed[reason] = (counters.closed[reason] ?? 0) + 1;
    counters.bytesUp += bytesUp;
    counters.bytesDown += bytesDown;
    const log = this.owner.accessLog;
    if (log === null) return;
    const line: Record<string, unknown> = {
      direction: this.direction,
      src: formatEndpoint(this.src),
      dst: formatEndpoint(this.dst),
      bytesUp,
      bytesDown,
      durationMs: Date.now() - this.startedAt,
      reason,
    };
    if (err !== undefined) {
      const { message, code } = describeError(err);
      line.error = code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
    }
    log.info(line, 'connection');
  }
}
