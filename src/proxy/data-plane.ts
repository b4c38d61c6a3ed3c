// The per-worker data plane: its listeners, its connections, its counters, and the flows that run
// on each accepted connection.
//   accept → original destination → (identity, policy: later phases) → connect upstream → splice → record
import { Socket as NetSocket, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import { type Endpoint, endpoint, type Family, familyOf, parseCidr } from '../net/address.ts';
import { Connection, type ConnectionOwner, resetSide } from './connection.ts';
import { CapabilityError } from './errors.ts';
import { createUpstreamFd } from './socket-options.ts';
import { type Direction, emptyCounters, type WorkerCounters } from './stats.ts';
import { Sweeper } from './sweeper.ts';
import { listenTransparent } from './tproxy-listener.ts';

export interface DataPlaneOptions {
  readonly config: Readonly<Config>;
  /** This worker's share of proxy.maxConnections. */
  readonly maxConnections: number;
  /** The worker's component logger. */
  readonly log: Logger;
  /** Where access-log lines go (component "access"), or null when the access log is off. */
  readonly accessLog: Logger | null;
}

export class DataPlane implements ConnectionOwner {
  readonly sweeper: Sweeper;
  readonly counters: WorkerCounters;
  readonly accessLog: Logger | null;
  readonly #config: Readonly<Config>;
  readonly #log: Logger;
  readonly #maxConnections: number;
  readonly #active = new Set<Connection>();
  readonly #servers: Server[] = [];
  readonly #ownPorts: ReadonlySet<number>;
  #preserveSource: boolean;
  #draining = false;
  #onIdle: (() => void) | null = null;

  constructor(opts: DataPlaneOptions) {
    this.#config = opts.config;
    this.#log = opts.log;
    this.#maxConnections = opts.maxConnections;
    this.counters = emptyCounters();
    this.accessLog = opts.accessLog;
    this.sweeper = new Sweeper(opts.config.proxy.idleTimeout, opts.config.proxy.connectTimeout);
    this.#preserveSource = opts.config.proxy.preserveSourceAddress;
    const l = opts.config.listeners;
    this.#ownPorts = new Set([l.outboundPort, l.inboundPlaintextPort, l.inboundTunnelPort]);
  }

  get activeConnections(): number {
    return this.#active.size;
  }

  /** Binds every listener (one per direction and address family) before any connection is served. */
  async start(): Promise<void> {
    const l = this.#config.listeners;
    const families = new Set<Family>(this.#config.capture.podCidrs.map((c) => parseCidr(c).family));
    const wanted: [Direction, number][] = [
      ['outbound', l.outboundPort],
      ['inbound', l.inboundPlaintextPort],
    ];
    for (const family of families) {
      const ip = family === familyOf(l.address) ? l.address : family === 4 ? '0.0.0.0' : '::';
      for (const [direction, port] of wanted) {
        const server = await listenTransparent({
          at: endpoint(ip, port),
          backlog: l.backlog,
          onConnection: direction === 'outbound' ? this.#onOutbound : this.#onInbound,
        });
        this.#servers.push(server);
      }
    }
  }

  readonly #onOutbound = (socket: Socket): void => {
    this.#passthrough('outbound', socket);
  };

  readonly #onInbound = (socket: Socket): void => {
    this.#passthrough('inbound', socket);
  };

  /** Plaintext passthrough: the original destination, reached from the client's own address. */
  #passthrough(direction: Direction, socket: Socket): void {
    const conn = this.#accept(direction, socket);
    if (conn === null) return;
    let upstream: NetSocket;
    try {
      upstream = this.#upstreamSocket(conn.src, conn.dst);
    } catch (err) {
      conn.close('upstream_socket', err);
      return;
    }
    conn.connectUpstream(upstream, this.#config.proxy.connectTimeout);
  }

  /** accept → original destination; refuses what ward must not serve. Returns null when refused. */
  #accept(direction: Direction, socket: Socket): Connection | null {
    this.counters[direction].opened++;
    let src: Endpoint;
    let dst: Endpoint;
    try {
      src = endpoint(socket.remoteAddress ?? '', socket.remotePort ?? 0);
      dst = endpoint(socket.localAddress ?? '', socket.localPort ?? 0);
    } catch {
      // The socket closed between accept and now; there is nobody to answer.
      socket.destroy();
      this.counters[direction].closed.client_reset = (this.counters[direction].closed.client_reset ?? 0) + 1;
      return null;
    }
    const conn = new Connection(this, direction, socket, src, dst);
    this.register(conn);
    if (this.#draining) {
      conn.close('shutdown');
      return null;
    }
    if (this.#active.size > this.#maxConnections) {
      conn.close('connection_limit');
      return null;
    }
    if (this.#ownPorts.has(dst.port)) {
      // A connection to one of ward's own ports that TPROXY did not divert (someone dialled ward
      // directly); proxying it would connect ward to itself.
      conn.close('self_connect');
      return null;
    }
    return conn;
  }

  #upstreamSocket(src: Endpoint, dst: Endpoint): NetSocket {
    const mark = this.#config.capture.bypassMark;
    let fd: number;
    if (this.#preserveSource && src.family === dst.family) {
      try {
        fd = createUpstreamFd({ family: dst.family, mark, source: { ip: src.ip, port: 0 } });
      } catch (err) {
        if (!(err instanceof CapabilityError)) throw err;
        this.#preserveSource = false;
        this.#log.warn(
          { err: describeError(err).message },
          'cannot keep client addresses as upstream source; using the node address from now on',
        );
        fd = createUpstreamFd({ family: dst.family, mark });
      }
    } else {
      fd = createUpstreamFd({ family: dst.family, mark });
    }
    return new NetSocket({ fd, allowHalfOpen: true, manualStart: true } as ConstructorParameters<
      typeof NetSocket
    >[0]);
  }

  register(conn: Connection): void {
    this.#active.add(conn);
    this.sweeper.add(conn);
    this.counters.active = this.#active.size;
  }

  connectionClosed(conn: Connection): void {
    this.#active.delete(conn);
    this.sweeper.delete(conn);
    this.counters.active = this.#active.size;
    if (this.#draining && this.#active.size === 0) this.#onIdle?.();
  }

  /**
   * Stops accepting, lets open connections finish until the deadline, then closes what is left.
   * Resolves with the number of connections closed at the deadline.
   */
  async drain(deadlineMs: number): Promise<number> {
    this.#draining = true;
    for (const s of this.#servers) s.close();
    if (this.#active.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const left = [...this.#active];
    for (const conn of left) conn.close('shutdown');
    this.sweeper.stop();
    return left.length;
  }

  /** Drops every connection at once (a worker that is being torn down). */
  abortAll(): void {
    for (const conn of [...this.#active]) {
      resetSide(conn.client);
      conn.close('shutdown');
    }
  }
}
