// One proxied TCP connection: a client side, an upstream side, and exactly one end.
// A side is a TCP socket or an HTTP/2 CONNECT stream (HBONE); the splice treats both as duplex streams.
// Every terminal event (completion, reset, error, timeout, limit, refusal, shutdown) goes through close(),
// which is idempotent and writes the connection's one access-log line.
import { type Http2Stream, constants as h2 } from 'node:http2';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { describeError } from '../errors.ts';
import { type Endpoint, formatEndpoint } from '../net/address.ts';
import { resumePooledReads, returnReadBuffer, streamHandle, usePooledReads } from './pooled-reads.ts';
import { setAbortiveClose } from './socket-options.ts';
import type { CloseReason, Direction, WorkerCounters } from './stats.ts';
import type { Sweepable, Sweeper } from './sweeper.ts';

/** What a connection needs from the worker that owns it. */
export interface ConnectionOwner {
  readonly sweeper: Sweeper;
  readonly counters: WorkerCounters;
  readonly accessLog: Logger | null;
  /** Takes a new connection into the owner's books (active set, idle and connect timers). */
  register(conn: Connection): void;
  connectionClosed(conn: Connection): void;
}

const kConn = Symbol('ward.connection');
const kPeer = Symbol('ward.peer');
const kRead = Symbol('ward.bytesRead');
const kCorked = Symbol('ward.corked');
const kPooled = Symbol('ward.pooled');
const kInflight = Symbol('ward.inflight');
const kWritten = Symbol('ward.written');

interface Side extends Duplex {
  [kConn]: Connection;
  [kPeer]: Side;
  [kRead]: number;
  [kCorked]: boolean;
  /** Reads go to pooled buffers (see pooled-reads.ts): set once the side has carried bulk data. */
  [kPooled]: boolean;
  /** Pooled buffers written to the peer whose writes have not completed, oldest first. */
  [kInflight]: Buffer[];
  /** This side's write-completion callback (bound once), returning the oldest in-flight buffer. */
  [kWritten]: (err?: Error | null) => void;
}

/**
 * Adaptive write batching. A chunk of CORK_MIN bytes or more marks bulk traffic: the side it is written
 * to is corked until the end of this event-loop turn, so what arrives in one turn leaves in one writev
 * (an HTTP/2 DATA frame spans two TLS records, and would otherwise go out as a large write plus a tiny
 * one). Small chunks — requests, interactive traffic — are written at once and add no latency.
 */
const CORK_MIN = 8192;
const corked: Side[] = [];
let flushScheduled = false;

function flushCorked(): void {
  flushScheduled = false;
  for (const s of corked) {
    s[kCorked] = false;
    s.uncork();
  }
  corked.length = 0;
}

function corkForTurn(s: Side): void {
  if (s[kCorked]) return;
  s[kCorked] = true;
  s.cork();
  corked.push(s);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushCorked);
  }
}

/** node:http2 exports no Http2Stream class to test against; a stream is what has a session and rstCode. */
function isH2Stream(s: Duplex): s is Duplex & Http2Stream {
  return 'rstCode' in s && 'session' in s;
}

/**
 * Resets a side: RST on a TCP socket, RST_STREAM(CONNECT_ERROR) on a CONNECT stream (RFC 9113 §8.5:
 * a TCP reset maps to CONNECT_ERROR). A socket still connecting is simply closed.
 *
 * The RST is SO_LINGER {1, 0} and a close, not socket.resetAndDestroy(): while a FIN is queued and not
 * yet sent (a shutdown request in flight, one loop turn after end()), libuv refuses the reset with
 * EINVAL, and Node 24 marks the handle closing all the same without closing it. That handle's fd then
 * leaks, and the worker thread holding it can never end: Node's teardown waits for it forever
 * (Environment::CleanupHandles), and so does process.exit().
 */
export function resetSide(s: Duplex): void {
  if (s.destroyed) return;
  if (s instanceof Socket) {
    if (!s.connecting) setAbortiveClose(s, true);
    s.destroy();
  } else if (isH2Stream(s)) {
    resetStream(s, h2.NGHTTP2_CONNECT_ERROR);
  } else {
    s.destroy();
  }
}

/**
 * RST_STREAM without a preceding END_STREAM. Node's Http2Stream.close(code) first ends the writable side
 * (an empty DATA frame with END_STREAM) and only then submits RST_STREAM, so the peer sees an orderly
 * end of the stream before the reset — and would pass a FIN on where a reset is due. The native handle's
 * rstStream() submits the reset alone. (Node 24, the runtime ward pins; test/unit/hbone.test.ts checks
 * that the peer sees no END_STREAM.) Falls back to close(code) if the handle is not found.
 */
function resetStream(s: Http2Stream, code: number): void {
  const handle = streamHandle(s);
  if (handle !== null && typeof handle.rstStream === 'function') {
    handle.rstStream(code);
    s.destroy();
  } else {
    s.close(code);
  }
}

/** The RST_STREAM code a CONNECT stream was closed with (0 when it ended normally or is a socket). */
function rstCodeOf(s: Duplex): number {
  return isH2Stream(s) ? (s.rstCode ?? 0) : 0;
}

// Named handlers shared by every connection: `this` is the side; its connection and peer hang off it.
/** Counts a read of `n` bytes on `side` and keeps its connection from idling; corks the peer for bulk. */
function took(side: Side, n: number): Side {
  side[kRead] += n;
  side[kConn].lastActive = side[kConn].owner.sweeper.now;
  const peer = side[kPeer];
  if (n >= CORK_MIN) corkForTurn(peer);
  return peer;
}

function onData(this: Side, chunk: Buffer): void {
  const peer = took(this, chunk.length);
  // Bulk: later reads go to pooled buffers (no ArrayBuffer per read for the GC).
  if (chunk.length >= CORK_MIN && !this[kPooled] && switchToPooledReads(this)) {
    this[kPooled] = true;
    this[kInflight] = [];
    this[kWritten] = onWritten.bind(this);
  }
  if (!peer.write(chunk)) this.pause();
}

function switchToPooledReads(s: Side): boolean {
  return (s instanceof Socket || isH2Stream(s)) && usePooledReads(s, onPooledRead);
}

/** A read into a pooled buffer: the buffer travels with the write and comes back when it completes. */
function onPooledRead(this: Duplex, nread: number, buf: Buffer): boolean {
  const side = this as Side;
  const peer = took(side, nread);
  side[kInflight].push(buf);
  if (peer.write(nread === buf.length ? buf : buf.subarray(0, nread), side[kWritten])) return true;
  this.pause();
  return false;
}

/**
 * A write of a pooled buffer completed: its bytes are no longer referred to. Writes complete in order,
 * so it is the oldest in flight. After a failed write the buffer is left to the GC rather than reused.
 */
function onWritten(this: Side, err?: Error | null): void {
  const buf = this[kInflight].shift();
  if (buf !== undefined && (err === undefined || err === null)) returnReadBuffer(buf);
}

function onDrain(this: Side): void {
  const peer = this[kPeer];
  // A stream reading into pooled buffers restarts through its handle (pooled-reads.ts); the rest resume.
  if (peer[kPooled] && isH2Stream(peer)) resumePooledReads(peer);
  else peer.resume();
}

/**
 * FIN (or END_STREAM) one way: pass it on and keep the other direction flowing (half-close). A CONNECT
 * stream that ends because the peer reset it (RST_STREAM) is a reset, not a FIN: it must not reach the
 * other side as an orderly close.
 */
function onEnd(this: Side): void {
  if (rstCodeOf(this) !== 0) {
    this[kConn].sideClosed(this);
    return;
  }
  orderly(this[kPeer]).end();
}

/** A socket about to be closed in order: clear the abortive close set at accept (see socket-options). */
function orderly(s: Duplex): Duplex {
  if (s instanceof Socket) setAbortiveClose(s, false);
  return s;
}

function onError(this: Side, err: Error): void {
  this[kConn].abort(this, err);
}

function onClose(this: Side): void {
  this[kConn].sideClosed(this);
}

let nextId = 1;

export class Connection implements Sweepable {
  readonly id: number;
  readonly direction: Direction;
  readonly src: Endpoint;
  readonly dst: Endpoint;
  readonly client: Duplex;
  readonly owner: ConnectionOwner;
  readonly startedAt: number;
  upstream: Duplex | null;
  lastActive: number;
  connectDeadline: number;
  /** Fields added to the access-log line (peer identity, tunnel, policy), set by the flow. */
  readonly extra: Record<string, unknown>;
  /**
   * Re-decides this connection after a policy, inventory or identity change: the refusal reason when it
   * is no longer allowed, else null. Null for connections that nothing decides.
   */
  recheck: (() => string | null) | null;
  #clientClosed: boolean;
  #upstreamClosed: boolean;
  #finished: boolean;
  #onReady: (() => void) | null;

  constructor(owner: ConnectionOwner, direction: Direction, client: Duplex, src: Endpoint, dst: Endpoint) {
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
    this.extra = {};
    this.recheck = null;
    this.#clientClosed = false;
    this.#upstreamClosed = false;
    this.#finished = false;
    this.#onReady = null;
    const c = client as Side;
    c[kConn] = this;
    c[kRead] = 0;
    c.on('error', onError);
    c.on('close', onClose);
  }

  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Adopts the upstream side while it is being set up (TCP connect, or a CONNECT stream waiting for its
   * response); the connect timeout runs from now. The client stays paused until upstreamReady().
   * `onReady` runs just before the splice starts (the HBONE server answers 200 there).
   */
  adoptUpstream(upstream: Duplex, connectTimeoutMs: number, onReady?: () => void): void {
    this.upstream = upstream;
    if (this.connectDeadline === 0) this.connectDeadline = this.owner.sweeper.now + connectTimeoutMs;
    this.#onReady = onReady ?? null;
    const u = upstream as Side;
    u[kConn] = this;
    u[kRead] = 0;
    u.on('error', onError);
    u.on('close', onClose);
  }

  /** Starts the connect clock before there is an upstream (a tunnel still coming up counts against it). */
  startConnectClock(connectTimeoutMs: number): void {
    this.connectDeadline = this.owner.sweeper.now + connectTimeoutMs;
  }

  /** Connects an adopted TCP upstream to the original destination and splices once connected. */
  connectUpstream(upstream: Socket, connectTimeoutMs: number, onReady?: () => void): void {
    this.adoptUpstream(upstream, connectTimeoutMs, onReady);
    upstream.once('connect', () => this.upstreamReady());
    upstream.connect({ port: this.dst.port, host: this.dst.ip });
  }

  /** The upstream is ready: start moving bytes both ways. */
  upstreamReady(): void {
    if (this.#finished) return;
    const client = this.client as Side;
    const upstream = this.upstream as Side;
    this.connectDeadline = 0;
    this.lastActive = this.owner.sweeper.now;
    this.#onReady?.();
    client[kPeer] = upstream;
    upstream[kPeer] = client;
    client[kCorked] = false;
    upstream[kCorked] = false;
    client[kPooled] = false;
    upstream[kPooled] = false;
    if (client instanceof Socket) client.setNoDelay(true);
    if (upstream instanceof Socket) upstream.setNoDelay(true);
    for (const s of [client, upstream]) {
      s.on('data', onData);
      s.on('drain', onDrain);
      s.on('end', onEnd);
    }
    client.resume();
  }

  /** An error on one side: classify it, reset the other side, end the connection. */
  abort(side: Duplex, err: Error): void {
    if (this.#finished) return;
    const { code, message } = describeError(err);
    const isClient = side === this.client;
    let reason: CloseReason;
    const wasReset =
      code === 'ECONNRESET' ||
      message.includes('NGHTTP2_CONNECT_ERROR') ||
      message.includes('NGHTTP2_CANCEL');
    if (!isClient && this.connectDeadline !== 0) {
      reason =
        code === 'ECONNREFUSED'
          ? 'upstream_refused'
          : wasReset
            ? // Connected and reset before the connect event ran (one turn): a reset all the same.
              'upstream_reset'
            : code === 'EHOSTUNREACH' ||
                code === 'ENETUNREACH' ||
                code === 'ETIMEDOUT' ||
                code === 'EHOSTDOWN'
              ? 'upstream_unreachable'
              : 'upstream_error';
    } else if (wasReset) {
      reason = isClient ? 'client_reset' : 'upstream_reset';
    } else {
      reason = isClient ? 'client_error' : 'upstream_error';
    }
    this.close(reason, err);
  }

  sideClosed(side: Duplex): void {
    const isClient = side === this.client;
    if (isClient) this.#clientClosed = true;
    else this.#upstreamClosed = true;
    if (this.#finished) return;
    // A CONNECT stream closed by the peer's RST_STREAM carries no error event: it is a reset.
    // So is one whose session died under it (its tunnel's TCP closed without GOAWAY): Node closes such
    // streams with code 0 and marks them aborted; passing that on as a FIN would leave the other side
    // open until its peer happens to close.
    const rst = rstCodeOf(side);
    if (rst !== 0 || (isH2Stream(side) && side.aborted)) {
      this.close(
        isClient ? 'client_reset' : this.connectDeadline !== 0 ? 'upstream_error' : 'upstream_reset',
        new Error(`RST_STREAM code ${rst}`),
      );
      return;
    }
    if (this.#clientClosed && this.upstream === null) {
      this.close('client_reset');
    } else if (this.#clientClosed && this.connectDeadline !== 0) {
      // The client left while the upstream was still being set up.
      this.close('client_reset');
    } else if (this.#upstreamClosed && this.connectDeadline !== 0) {
      this.close('upstream_error');
    } else if (this.#clientClosed && this.#upstreamClosed) {
      this.close('completed');
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
   * is seen as a failure on the other; completion, idle timeouts and shutdown close both sides, and so
   * does a `graceful` close (a refusal the client was already told about, e.g. an HTTP status).
   */
  close(reason: CloseReason, err?: unknown, graceful = false): void {
    if (this.#finished) return;
    this.#finished = true;
    const upstream = this.upstream;
    if (graceful || reason === 'idle_timeout' || reason === 'shutdown' || reason === 'completed') {
      orderly(this.client).destroy();
      if (upstream !== null) orderly(upstream).destroy();
    } else {
      resetSide(this.client);
      if (upstream !== null) resetSide(upstream);
    }
    this.#record(reason, err);
    this.owner.connectionClosed(this);
  }

  #record(reason: CloseReason, err: unknown): void {
    const counters = this.owner.counters[this.direction];
    const bytesUp = (this.client as Side)[kRead];
    const bytesDown = this.upstream === null ? 0 : ((this.upstream as Side)[kRead] ?? 0);
    counters.closed[reason] = (counters.closed[reason] ?? 0) + 1;
    counters.bytesUp += bytesUp;
    counters.bytesDown += bytesDown;
    const log = this.owner.accessLog;
    if (log === null) return;
    const line: Record<string, unknown> = {
      direction: this.direction,
      src: formatEndpoint(this.src),
      dst: formatEndpoint(this.dst),
      ...this.extra,
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
