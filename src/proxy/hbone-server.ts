// Inbound HBONE (:15008, captured for local pod IPs): TLS with the certificate of the workload that owns
// the original destination IP, a client certificate required and verified, then HTTP/2 CONNECT streams,
// each admitted, connected to its target and spliced.
//   accept → original destination → TLS (server cert by dst IP) → peer identity → CONNECT → admit
//   → connect target → 200 → splice → record
import {
  createServer as createH2Server,
  type Http2Server,
  constants as h2,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { type Endpoint, endpoint, formatEndpoint } from '../net/address.ts';
import { Connection, type ConnectionOwner } from './connection.ts';
import {
  CONNECTION_WINDOW,
  H2_SETTINGS,
  HBONE_ALPN,
  MAX_SESSION_MEMORY_MB,
  parseAuthority,
} from './hbone.ts';
import type { CloseReason } from './stats.ts';
import { TUNNEL_TLS_BASE, type TunnelServerTls } from './tunnel-tls.ts';

/** What ward knows about a verified tunnel peer. */
export interface TunnelPeer {
  /** The SPIFFE ID proven by the client certificate. */
  readonly spiffeId: string;
  /** The tunnel's TCP source (the client pod's address when the other ward kept it). */
  readonly src: Endpoint;
  /** The tunnel's original destination (a local pod IP, port 15008). */
  readonly dst: Endpoint;
}

export type Admission =
  | { readonly ok: true; readonly extra?: Record<string, unknown>; readonly recheck?: () => string | null }
  | {
      readonly ok: false;
      readonly status: number;
      readonly reason: CloseReason;
      readonly message: string;
      readonly extra?: Record<string, unknown>;
    };

export interface HboneServerOptions {
  readonly owner: ConnectionOwner;
  readonly log: Logger;
  readonly connectTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** TLS handshakes in progress at once; past it a new tunnel connection is refused (`handshake_limit`). */
  readonly maxPendingHandshakes?: number;
  /** After the handshake, the first CONNECT's headers must be complete within this (default: handshakeTimeoutMs). */
  readonly headerTimeoutMs?: number;
  /** PING each session this often; no answer within keepaliveTimeoutMs destroys it (its streams reset). */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveTimeoutMs?: number;
  /** Certificate and verification for the workload owning `ip`; null when ward holds no identity for it. */
  serverTls(ip: string): TunnelServerTls | null;
  /** Policy on a CONNECT: may `peer` reach `target`? (Target locality is checked here too.) */
  admit(peer: TunnelPeer, target: Endpoint): Admission;
  /** An unconnected socket to reach `target` from `source` (bypass mark, source address kept). */
  upstreamSocket(source: Endpoint, target: Endpoint): Socket;
  /** Counts a tunnel connection refused before any stream. */
  onRefused(reason: string): void;
  onAccepted(): void;
  /** A finished TLS handshake, with seconds since the connection was accepted. */
  onHandshake?(seconds: number): void;
}

const peers = new WeakMap<object, TunnelPeer>();

export class HboneServer {
  readonly #opts: HboneServerOptions;
  readonly #h2: Http2Server;
  /** The peer of the connection being handed to the HTTP/2 server; its 'session' event fires synchronously. */
  #handingOver: TunnelPeer | null = null;
  /** The header timer of the connection being handed over (set with #handingOver). */
  #headerTimer: NodeJS.Timeout | null = null;
  /** The header timer of each session that has not had a stream yet. */
  readonly #firstStream = new WeakMap<object, NodeJS.Timeout>();
  /** TLS handshakes started and not yet finished or failed. */
  #pending = 0;

  /** TLS handshakes in progress now. */
  get pendingHandshakes(): number {
    return this.#pending;
  }

  constructor(opts: HboneServerOptions) {
    this.#opts = opts;
    this.#h2 = createH2Server({
      settings: { ...H2_SETTINGS, maxConcurrentStreams: 1000 },
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
    });
    this.#h2.on('session', (session) => {
      if (this.#handingOver !== null) peers.set(session, this.#handingOver);
      if (this.#headerTimer !== null) this.#firstStream.set(session, this.#headerTimer);
      session.setLocalWindowSize(CONNECTION_WINDOW);
      if (opts.keepaliveIntervalMs !== undefined) this.#keepalive(session, opts.keepaliveIntervalMs);
      session.on('error', (err) =>
        opts.log.debug({ err: describeError(err).message }, 'tunnel session error'),
      );
    });
    this.#h2.on('stream', (stream, headers) => this.#onStream(stream, headers));
    // Bytes that are not HTTP/2 after a good handshake: Node reports them here; the socket is closed.
    this.#h2.on('sessionError', (err) =>
      opts.log.debug({ err: describeError(err).message }, 'tunnel session error'),
    );
  }

  /** A raw TCP connection captured for <local pod IP>:15008. */
  handle(socket: Socket): void {
    const acceptedAt = performance.now();
    let dst: Endpoint;
    let src: Endpoint;
    try {
      dst = endpoint(socket.localAddress ?? '', socket.localPort ?? 0);
      src = endpoint(socket.remoteAddress ?? '', socket.remotePort ?? 0);
    } catch {
      socket.destroy();
      return;
    }
    const maxPending = this.#opts.maxPendingHandshakes ?? 1024;
    if (this.#pending >= maxPending) {
      this.#refuse(socket, 'handshake_limit', `${maxPending} TLS handshakes already in progress`, src, dst);
      return;
    }
    const creds = this.#opts.serverTls(dst.ip);
    if (creds === null) {
      this.#refuse(socket, 'no_identity', `no identity held for ${dst.ip}`, src, dst);
      return;
    }
    const tls = new TLSSocket(socket, {
      ...TUNNEL_TLS_BASE,
      isServer: true,
      secureContext: creds.secureContext,
      requestCert: true,
    });
    this.#pending++;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      this.#pending--;
    };
    tls.once('close', settle);
    const timer = setTimeout(() => {
      settle();
      this.#refuse(
        tls,
        'handshake_timeout',
        `no TLS handshake within ${this.#opts.handshakeTimeoutMs} ms`,
        src,
        dst,
      );
    }, this.#opts.handshakeTimeoutMs);
    timer.unref();
    const onError = (err: Error) => {
      clearTimeout(timer);
      settle();
      this.#refuse(tls, 'tls_error', describeError(err).message, src, dst);
    };
    tls.once('error', onError);
    socket.resume();
    tls.once('secure', () => {
      clearTimeout(timer);
      settle();
      this.#opts.onHandshake?.((performance.now() - acceptedAt) / 1000);
      tls.off('error', onError);
      tls.on('error', () => {});
      if (tls.alpnProtocol !== HBONE_ALPN) {
        this.#refuse(tls, 'alpn', 'client did not offer h2', src, dst);
        return;
      }
      const check = creds.verify(tls);
      if (!check.ok) {
        this.#refuse(tls, check.code, check.message, src, dst);
        return;
      }
      this.#opts.onAccepted();
      // A server-side TLSSocket made outside tls.Server keeps secureConnecting = true after its handshake
      // (tls.Server clears it); Http2Session would then wait for a 'secureConnect' that never comes.
      (tls as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      this.#handingOver = { spiffeId: check.spiffeId, src, dst };
      // Slowloris: a verified peer that never completes a request (HEADERS without END_HEADERS, or
      // nothing at all) must not hold the session forever; the first stream has to arrive in time.
      const headerTimeoutMs = this.#opts.headerTimeoutMs ?? this.#opts.handshakeTimeoutMs;
      const headerTimer = setTimeout(() => {
        this.#refuse(tls, 'header_timeout', `no complete CONNECT within ${headerTimeoutMs} ms`, src, dst);
      }, headerTimeoutMs);
      headerTimer.unref();
      tls.once('close', () => clearTimeout(headerTimer));
      this.#headerTimer = headerTimer;
      try {
        this.#h2.emit('connection', tls);
      } finally {
        this.#handingOver = null;
        this.#headerTimer = null;
      }
    });
  }

  /**
   * A tunnel whose TCP path is cut sends nothing and closes nothing: without a PING of its own the server
   * would keep the session, its streams and their upstream connections until the idle timeout.
   */
  #keepalive(session: ServerHttp2Session, intervalMs: number): void {
    const timeoutMs = this.#opts.keepaliveTimeoutMs ?? intervalMs;
    let sentAt = 0;
    let lastAck = Date.now();
    const timer = setInterval(
      () => {
        const now = Date.now();
        if (session.destroyed) {
          clearInterval(timer);
        } else if (sentAt !== 0) {
          if (now - sentAt > timeoutMs) {
            clearInterval(timer);
            this.#opts.log.info({ component: 'tunnel', afterMs: now - sentAt }, 'tunnel keepalive timed out');
            session.destroy();
          }
        } else if (now - lastAck >= intervalMs) {
          sentAt = now;
          try {
            session.ping((err) => {
              if (err !== null) return;
              sentAt = 0;
              lastAck = Date.now();
            });
          } catch {
            clearInterval(timer);
          }
        }
      },
      Math.max(10, Math.min(intervalMs, timeoutMs) / 2),
    );
    timer.unref();
    session.once('close', () => clearInterval(timer));
  }

  #refuse(socket: Socket, reason: string, message: string, src: Endpoint, dst: Endpoint): void {
    this.#opts.onRefused(reason);
    this.#opts.log.info(
      { component: 'tunnel', src: formatEndpoint(src), dst: formatEndpoint(dst), reason, error: message },
      'tunnel refused',
    );
    socket.destroy();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    if (stream.session !== undefined) {
      clearTimeout(this.#firstStream.get(stream.session));
      this.#firstStream.delete(stream.session);
    }
    const peer = stream.session === undefined ? undefined : peers.get(stream.session);
    const owner = this.#opts.owner;
    if (peer === undefined) {
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      return;
    }
    owner.counters.inbound.opened++;
    const authority = parseAuthority(headers[':authority']);
    const target = authority.ok ? authority.target : peer.dst;
    const conn = new Connection(owner, 'inbound', stream, peer.src, target);
    conn.extra.peer = peer.spiffeId;
    conn.extra.tunnel = true;
    owner.register(conn);
    if (headers[':method'] !== 'CONNECT') {
      this.#reject(conn, stream, 405, 'bad_request', `method ${String(headers[':method'])} is not CONNECT`);
      return;
    }
    if (!authority.ok) {
      this.#reject(conn, stream, 400, 'bad_request', authority.reason);
      return;
    }
    const admission = this.#opts.admit(peer, target);
    if (admission.extra !== undefined) Object.assign(conn.extra, admission.extra);
    if (!admission.ok) {
      this.#reject(conn, stream, admission.status, admission.reason, admission.message);
      return;
    }
    if (admission.recheck !== undefined) conn.recheck = admission.recheck;
    let upstream: Socket;
    try {
      upstream = this.#opts.upstreamSocket(peer.src, target);
    } catch (err) {
      this.#reject(conn, stream, 503, 'upstream_socket', describeError(err).message);
      return;
    }
    conn.connectUpstream(upstream, this.#opts.connectTimeoutMs, () => {
      stream.respond({ ':status': 200 });
    });
  }

  /** Answers a CONNECT with an HTTP status and records the refusal (the client was told, so no RST). */
  #reject(
    conn: Connection,
    stream: ServerHttp2Stream,
    status: number,
    reason: CloseReason,
    message: string,
  ): void {
    if (!stream.destroyed && !stream.headersSent) stream.respond({ ':status': status }, { endStream: true });
    conn.close(reason, new Error(message), true);
  }

  close(): void {
    this.#h2.close();
  }
}
