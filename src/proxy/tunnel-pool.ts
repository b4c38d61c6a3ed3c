// Outbound HBONE tunnels, pooled per (source identity, destination identity, destination, source IP),
// with a bound on streams per connection and idle expiry. A stream asked for while its tunnel is coming
// up waits for it (bounded by the connection's own connect timeout): the first connection of a new
// identity pair is never dropped.
import { type ClientHttp2Session, type ClientHttp2Stream, connect as h2connect } from 'node:http2';
import type { Socket } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Logger } from 'pino';
import { describeError, WardError } from '../errors.ts';
import { type Endpoint, formatEndpoint } from '../net/address.ts';
import {
  CONNECTION_WINDOW,
  DEFAULT_MAX_STREAMS,
  H2_SETTINGS,
  HBONE_ALPN,
  MAX_SESSION_MEMORY_MB,
} from './hbone.ts';
import type { CloseReason } from './stats.ts';
import { TUNNEL_TLS_BASE, type TunnelClientTls } from './tunnel-tls.ts';

export class TunnelError extends WardError {
  readonly reason: CloseReason;

  constructor(reason: CloseReason, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = reason;
  }
}

export interface TunnelSpec {
  /** Pool key: the identities, the destination and the source address, serialised. */
  readonly key: string;
  /** Where the tunnel goes: `<destination pod IP>:15008`. */
  readonly peer: Endpoint;
  /** Source address for the tunnel's TCP connection (the client pod's), or undefined for the node's. */
  readonly sourceIp: string | undefined;
  readonly tls: TunnelClientTls;
}

export interface TunnelPoolOptions {
  readonly maxStreams?: number;
  readonly idleTimeoutMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** An unconnected TCP socket for the tunnel (bypass mark, source address, buffer sizes set). */
  readonly socketFactory: (peer: Endpoint, sourceIp: string | undefined) => Socket;
  readonly log: Logger;
  /** Called once per tunnel whose HTTP/2 session is ready, with seconds since its TCP connect began. */
  readonly onTunnelOpened?: (setupSeconds: number) => void;
  /** Called once per finished TLS handshake, with seconds since the TCP connect began. */
  readonly onHandshake?: (seconds: number) => void;
}

export type StreamCallback = (
  err: TunnelError | null,
  stream: ClientHttp2Stream | null,
  peerId: string | null,
) => void;

type TunnelState = 'connecting' | 'ready' | 'draining' | 'closed';

interface Waiter {
  readonly authority: string;
  readonly cb: StreamCallback;
}

class Tunnel {
  readonly spec: TunnelSpec;
  readonly pool: TunnelPool;
  state: TunnelState = 'connecting';
  session: ClientHttp2Session | null = null;
  peerId: string | null = null;
  streams = 0;
  maxStreams: number;
  lastUsed = Date.now();
  pingSentAt = 0;
  lastPingAck = Date.now();
  /** performance.now() when the TCP connect began, for the setup-duration metrics. */
  connectStartedAt = 0;
  readonly waiters: Waiter[] = [];

  constructor(pool: TunnelPool, spec: TunnelSpec, maxStreams: number) {
    this.pool = pool;
    this.spec = spec;
    this.maxStreams = maxStreams;
  }

  get load(): number {
    return this.streams + this.waiters.length;
  }

  transitionTo(from: readonly TunnelState[], to: TunnelState): boolean {
    if (!from.includes(this.state)) return false;
    if (this.pool.log.isLevelEnabled('debug')) {
      this.pool.log.debug(
        { tunnel: formatEndpoint(this.spec.peer), key: this.spec.key },
        `tunnel ${this.state} -> ${to}`,
      );
    }
    this.state = to;
    return true;
  }
}

export class TunnelPool {
  readonly log: Logger;
  readonly #opts: TunnelPoolOptions;
  readonly #maxStreams: number;
  readonly #groups = new Map<string, Tunnel[]>();
  readonly #timer: NodeJS.Timeout;

  constructor(opts: TunnelPoolOptions) {
    this.#opts = opts;
    this.log = opts.log;
    this.#maxStreams = opts.maxStreams ?? DEFAULT_MAX_STREAMS;
    const tick = Math.max(
      100,
      Math.min(1000, Math.floor(Math.min(opts.keepaliveIntervalMs, opts.idleTimeoutMs) / 4)),
    );
    this.#timer = setInterval(() => this.#sweep(), tick);
    this.#timer.unref();
  }

  /** Tunnels and streams, for counters and tests. */
  stats(): { tunnels: number; streams: number; ready: number } {
    let tunnels = 0;
    let streams = 0;
    let ready = 0;
    for (const group of this.#groups.values()) {
      for (const t of group) {
        tunnels++;
        streams += t.streams;
        if (t.state === 'ready') ready++;
      }
    }
    return { tunnels, streams, ready };
  }

  /**
   * Opens a CONNECT stream to `authority` over a tunnel for `spec`: on a ready tunnel with room at once,
   * else after the tunnel being set up (or a new one) is ready. The callback runs exactly once.
   */
  open(spec: TunnelSpec, authority: string, cb: StreamCallback): void {
    let group = this.#groups.get(spec.key);
    if (group === undefined) {
      group = [];
      this.#groups.set(spec.key, group);
    }
    for (const t of group) {
      if (t.state === 'ready' && t.load < t.maxStreams) {
        this.#request(t, authority, cb);
        return;
      }
    }
    for (const t of group) {
      if (t.state === 'connecting' && t.load < t.maxStreams) {
        t.waiters.push({ authority, cb });
        return;
      }
    }
    const t = new Tunnel(this, spec, this.#maxStreams);
    group.push(t);
    t.waiters.push({ authority, cb });
    this.#connect(t);
  }

  #connect(t: Tunnel): void {
    const { spec } = t;
    let raw: Socket;
    try {
      raw = this.#opts.socketFactory(spec.peer, spec.sourceIp);
    } catch (err) {
      this.#fail(
        t,
        new TunnelError('tunnel_failed', 'PXY_TUNNEL_SOCKET', describeError(err).message, { cause: err }),
      );
      return;
    }
    t.connectStartedAt = performance.now();
    raw.connect({ port: spec.peer.port, host: spec.peer.ip });
    // No SNI and no hostname check: the peer is named by its SPIFFE ID, which spec.tls.verify checks.
    const socket: TLSSocket = tlsConnect({
      ...spec.tls.options,
      ...TUNNEL_TLS_BASE,
      socket: raw,
      servername: '',
      checkServerIdentity: () => undefined,
    });
    const onEarlyError = (err: Error) => {
      const { code, message } = describeError(err);
      this.#fail(
        t,
        new TunnelError(
          'tunnel_failed',
          'PXY_TUNNEL_CONNECT',
          `tunnel to ${formatEndpoint(spec.peer)}: ${code ?? ''} ${message}`.replace('  ', ' '),
          {
            cause: err,
          },
        ),
      );
      socket.destroy();
    };
    socket.once('error', onEarlyError);
    socket.once('secureConnect', () => {
      this.#opts.onHandshake?.((performance.now() - t.connectStartedAt) / 1000);
      if (socket.alpnProtocol !== HBONE_ALPN) {
        socket.off('error', onEarlyError);
        socket.destroy();
        this.#fail(
          t,
          new TunnelError(
            'tunnel_failed',
            'PXY_TUNNEL_ALPN',
            `tunnel to ${formatEndpoint(spec.peer)}: peer did not agree to h2`,
          ),
        );
        return;
      }
      const check = spec.tls.verify(socket);
      if (!check.ok) {
        socket.off('error', onEarlyError);
        socket.destroy();
        this.#fail(
          t,
          new TunnelError(
            'peer_rejected',
            check.code,
            `tunnel to ${formatEndpoint(spec.peer)}: ${check.message}`,
          ),
        );
        return;
      }
      t.peerId = check.spiffeId;
      this.#startSession(t, socket, onEarlyError);
    });
  }

  #startSession(t: Tunnel, socket: TLSSocket, onEarlyError: (err: Error) => void): void {
    const session = h2connect(`https://${formatEndpoint(t.spec.peer)}`, {
      createConnection: () => socket,
      settings: H2_SETTINGS,
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      peerMaxConcurrentStreams: this.#maxStreams,
    });
    t.session = session;
    session.once('connect', () => {
      socket.off('error', onEarlyError);
      session.setLocalWindowSize(CONNECTION_WINDOW);
      if (!t.transitionTo(['connecting'], 'ready')) return;
      this.#opts.onTunnelOpened?.((performance.now() - t.connectStartedAt) / 1000);
      t.lastPingAck = Date.now();
      for (const w of t.waiters.splice(0)) this.#request(t, w.authority, w.cb);
    });
    session.on('remoteSettings', (s) => {
      if (typeof s.maxConcurrentStreams === 'number')
        t.maxStreams = Math.min(this.#maxStreams, s.maxConcurrentStreams);
    });
    session.on('goaway', () => t.transitionTo(['connecting', 'ready'], 'draining'));
    session.on('error', (err) => {
      this.log.warn({ tunnel: formatEndpoint(t.spec.peer), err: describeError(err).message }, 'tunnel error');
    });
    session.once('close', () => {
      t.transitionTo(['connecting', 'ready', 'draining'], 'closed');
      this.#remove(t);
      this.#fail(
        t,
        new TunnelError(
          'tunnel_failed',
          'PXY_TUNNEL_CLOSED',
          `tunnel to ${formatEndpoint(t.spec.peer)} closed`,
        ),
      );
    });
  }

  #request(t: Tunnel, authority: string, cb: StreamCallback): void {
    const session = t.session;
    if (session === null || session.destroyed || session.closed) {
      cb(
        new TunnelError(
          'tunnel_failed',
          'PXY_TUNNEL_CLOSED',
          `tunnel to ${formatEndpoint(t.spec.peer)} closed`,
        ),
        null,
        null,
      );
      return;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = session.request({ ':method': 'CONNECT', ':authority': authority }, { endStream: false });
    } catch (err) {
      cb(
        new TunnelError('tunnel_failed', 'PXY_TUNNEL_REQUEST', describeError(err).message, { cause: err }),
        null,
        null,
      );
      return;
    }
    t.streams++;
    t.lastUsed = Date.now();
    stream.once('close', () => {
      t.streams--;
      t.lastUsed = Date.now();
    });
    cb(null, stream, t.peerId);
  }

  #fail(t: Tunnel, err: TunnelError): void {
    if (t.state === 'connecting') t.transitionTo(['connecting'], 'closed');
    this.#remove(t);
    for (const w of t.waiters.splice(0)) w.cb(err, null, null);
  }

  #remove(t: Tunnel): void {
    const group = this.#groups.get(t.spec.key);
    if (group === undefined) return;
    const i = group.indexOf(t);
    if (i >= 0) group.splice(i, 1);
    if (group.length === 0) this.#groups.delete(t.spec.key);
  }

  /** Idle expiry and keepalive: one timer for every tunnel. */
  #sweep(): void {
    const now = Date.now();
    for (const group of [...this.#groups.values()]) {
      for (const t of [...group]) {
        const session = t.session;
        if (t.state !== 'ready' || session === null) continue;
        if (t.load === 0 && now - t.lastUsed >= this.#opts.idleTimeoutMs) {
          t.transitionTo(['ready'], 'draining');
          this.#remove(t);
          session.close();
          continue;
        }
        if (t.pingSentAt !== 0 && now - t.pingSentAt > this.#opts.keepaliveTimeoutMs) {
          this.log.warn(
            { tunnel: formatEndpoint(t.spec.peer), afterMs: now - t.pingSentAt },
            'tunnel keepalive timed out; closing it',
          );
          t.transitionTo(['ready'], 'closed');
          this.#remove(t);
          session.destroy(
            new TunnelError('tunnel_failed', 'PXY_TUNNEL_KEEPALIVE', 'tunnel keepalive timed out'),
          );
          continue;
        }
        if (t.pingSentAt === 0 && now - t.lastPingAck >= this.#opts.keepaliveIntervalMs) {
          t.pingSentAt = now;
          session.ping((err) => {
            if (err === null) {
              t.pingSentAt = 0;
              t.lastPingAck = Date.now();
            }
          });
        }
      }
    }
  }

  /** Closes every tunnel (GOAWAY, open streams finish) and stops the timer. */
  close(): void {
    clearInterval(this.#timer);
    for (const group of this.#groups.values()) {
      for (const t of group) {
        t.session?.close();
        for (const w of t.waiters.splice(0)) {
          w.cb(new TunnelError('tunnel_failed', 'PXY_TUNNEL_CLOSED', 'ward is shutting down'), null, null);
        }
      }
    }
    this.#groups.clear();
  }
}
