// The per-worker data plane: its listeners, its connections, its counters, and the flows that run on
// each accepted connection, as named phases:
//   outbound (:15001)  accept → original destination → source workload → egress decision
//                      → HBONE to <dst pod>:15008 | plaintext passthrough → splice → record
//   inbound  (:15006)  accept → original destination → source peer → ingress decision (unauthenticated)
//                      → passthrough → splice → record
//   tunnel   (:15008)  accept → TLS by original destination → peer identity → CONNECT → ingress decision
//                      (authenticated) → connect target → splice → record        (hbone-server.ts)
import { Socket as NetSocket, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { describeError } from '../errors.ts';
import type { Workload } from '../inventory/index.ts';
import { type Endpoint, endpoint, type Family, familyOf, formatEndpoint, parseCidr } from '../net/address.ts';
import type { FlowRecord, TrafficDirection } from '../observe/flow.ts';
import { observe } from '../observe/histogram.ts';
import type { DirectionVerdict } from '../policy/index.ts';
import { HBONE_PORT } from './capture-rules.ts';
import { Connection, type ConnectionOwner, resetSide } from './connection.ts';
import { CapabilityError } from './errors.ts';
import { TUNNEL_SOCKET_BUFFER } from './hbone.ts';
import { connectViaTunnel } from './hbone-outbound.ts';
import { type Admission, HboneServer, type TunnelPeer } from './hbone-server.ts';
import type { MeshView } from './mesh.ts';
import {
  createUpstreamFd,
  setAbortiveClose,
  setAbortiveCloseFd,
  setBufferSizesFd,
} from './socket-options.ts';
import {
  type CloseReason,
  type Direction,
  decisionKey,
  emptyCounters,
  type WorkerCounters,
} from './stats.ts';
import { Sweeper } from './sweeper.ts';
import { listenTransparent } from './tproxy-listener.ts';
import { TunnelPool } from './tunnel-pool.ts';

export interface DataPlaneOptions {
  readonly config: Readonly<Config>;
  /** This worker's share of proxy.maxConnections. */
  readonly maxConnections: number;
  /** The worker's component logger. */
  readonly log: Logger;
  /** Where access-log lines go (component "access"), or null when the access log is off. */
  readonly accessLog: Logger | null;
  readonly mesh: MeshView;
  readonly onFlow: (f: FlowRecord) => void;
}

export class DataPlane implements ConnectionOwner {
  readonly sweeper: Sweeper;
  readonly counters: WorkerCounters;
  readonly accessLog: Logger | null;
  readonly mesh: MeshView;
  readonly pool: TunnelPool;
  readonly #config: Readonly<Config>;
  readonly #log: Logger;
  readonly #maxConnections: number;
  readonly #active = new Set<Connection>();
  readonly #servers: Server[] = [];
  readonly #ownPorts: ReadonlySet<number>;
  readonly #hbone: HboneServer;
  readonly #onFlow: (f: FlowRecord) => void;
  #preserveSource: boolean;
  #draining = false;
  #onIdle: (() => void) | null = null;

  constructor(opts: DataPlaneOptions) {
    const config = opts.config;
    this.#config = config;
    this.#log = opts.log;
    this.#maxConnections = opts.maxConnections;
    this.#onFlow = opts.onFlow;
    this.mesh = opts.mesh;
    this.counters = emptyCounters();
    this.accessLog = opts.accessLog;
    this.sweeper = new Sweeper(config.proxy.idleTimeout, config.proxy.connectTimeout);
    this.#preserveSource = config.proxy.preserveSourceAddress;
    const l = config.listeners;
    this.#ownPorts = new Set([l.outboundPort, l.inboundPlaintextPort, l.inboundTunnelPort]);
    this.pool = new TunnelPool({
      maxStreams: config.mesh.maxStreamsPerTunnel,
      idleTimeoutMs: config.mesh.tunnelIdleTimeout,
      keepaliveIntervalMs: config.mesh.keepaliveInterval,
      keepaliveTimeoutMs: config.mesh.keepaliveTimeout,
      socketFactory: (peer, sourceIp) => this.#tunnelSocket(peer, sourceIp),
      log: opts.log.child({ component: 'tunnel' }),
      onTunnelOpened: (setupSeconds) => {
        this.counters.tunnels.opened++;
        observe(this.counters.timings.tunnelSetup, setupSeconds);
      },
      onHandshake: (seconds) => observe(this.counters.timings.tlsClient, seconds),
    });
    this.#hbone = new HboneServer({
      owner: this,
      log: opts.log,
      connectTimeoutMs: config.proxy.connectTimeout,
      handshakeTimeoutMs: config.mesh.handshakeTimeout,
      maxPendingHandshakes: config.mesh.maxPendingHandshakes,
      headerTimeoutMs: config.mesh.headerTimeout,
      keepaliveIntervalMs: config.mesh.keepaliveInterval,
      keepaliveTimeoutMs: config.mesh.keepaliveTimeout,
      serverTls: (ip) => this.#serverTls(ip),
      admit: (peer, target) => this.#admitTunnel(peer, target),
      upstreamSocket: (source, target) => this.#upstreamSocket(source, target),
      onRefused: (reason) => {
        this.counters.tunnels.refused[reason] = (this.counters.tunnels.refused[reason] ?? 0) + 1;
      },
      onAccepted: () => {
        this.counters.tunnels.accepted++;
      },
      onHandshake: (seconds) => observe(this.counters.timings.tlsServer, seconds),
    });
  }

  get activeConnections(): number {
    return this.#active.size;
  }

  /** Binds every listener (one per direction and address family) before any connection is served. */
  async start(): Promise<void> {
    const l = this.#config.listeners;
    const families = new Set<Family>(this.#config.capture.podCidrs.map((c) => parseCidr(c).family));
    const wanted: [number, (s: Socket) => void][] = [
      [l.outboundPort, this.#onOutbound],
      [l.inboundPlaintextPort, this.#onInbound],
      [l.inboundTunnelPort, this.#onTunnel],
    ];
    for (const family of families) {
      const ip = family === familyOf(l.address) ? l.address : family === 4 ? '0.0.0.0' : '::';
      for (const [port, onConnection] of wanted) {
        this.#servers.push(
          await listenTransparent({ at: endpoint(ip, port), backlog: l.backlog, onConnection }),
        );
      }
    }
  }

  readonly #onOutbound = (socket: Socket): void => {
    const conn = this.#accept('outbound', socket);
    if (conn !== null) this.#outbound(conn);
  };

  readonly #onInbound = (socket: Socket): void => {
    const conn = this.#accept('inbound', socket);
    if (conn !== null) this.#inboundPlaintext(conn);
  };

  readonly #onTunnel = (socket: Socket): void => {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    this.#hbone.handle(socket);
  };

  // ── outbound ──────────────────────────────────────────────────────────────────────────────────────

  #outbound(conn: Connection): void {
    const mesh = this.mesh;
    const inv = mesh.inventory;
    const srcW = inv.lookup(conn.src.ip);
    const dstW = inv.lookup(conn.dst.ip);
    if (!mesh.enforcing && srcW === undefined) {
      // No policy source and nothing known about the source: ward is a plain transparent proxy.
      this.#passthrough(conn);
      return;
    }
    if (!mesh.isLocal(srcW)) {
      this.#refuse(conn, 'EGRESS', 'unknown_source', null, `${conn.src.ip} is not a workload of this node`);
      return;
    }
    const dstPeer = dstW?.peer ?? inv.peer(conn.dst.ip);
    const egress = mesh.decide('egress', srcW.peer, dstPeer, conn.dst.port);
    if (mesh.isLocal(dstW)) {
      this.#sameNode(conn, srcW, dstW, egress);
      return;
    }
    if (mesh.isMeshed(dstW)) {
      const allowed = mesh.check(egress, true);
      if (!allowed.ok) {
        this.#refuse(conn, 'EGRESS', allowed.reason, allowed.dir, allowed.message);
        return;
      }
      this.#viaTunnel(conn, srcW, dstW, egress);
      return;
    }
    // Not meshed: nobody else will enforce ingress or authenticate, so both directions are decided here.
    const ingress = mesh.decide('ingress', srcW.peer, dstPeer, conn.dst.port);
    for (const [direction, dir] of [
      ['EGRESS', egress],
      ['INGRESS', ingress],
    ] as const) {
      const allowed = mesh.check(dir, false);
      if (!allowed.ok) {
        this.#refuse(conn, direction, allowed.reason, allowed.dir, allowed.message);
        return;
      }
    }
    this.#record(conn, 'EGRESS', egress, false);
    conn.recheck = () => this.#recheckPlain(conn, srcW.peer.identity, true);
    this.#passthrough(conn);
  }

  /** Both workloads here: ward holds both identities, so it checks them itself instead of a handshake. */
  #sameNode(conn: Connection, srcW: Workload, dstW: Workload, egress: DirectionVerdict | null): void {
    const mesh = this.mesh;
    const ingress = mesh.decide('ingress', srcW.peer, dstW.peer, conn.dst.port);
    const srcId = mesh.spiffeIdOf(srcW);
    const dstId = mesh.spiffeIdOf(dstW);
    // Authentication is satisfied exactly when an HBONE handshake between the two would succeed: ward
    // holds a valid SVID for each side.
    const authenticated = mesh.contextFor(srcId) !== null && mesh.contextFor(dstId) !== null;
    const mtls = (egress?.authRequired ?? false) || (ingress?.authRequired ?? false);
    for (const [direction, dir] of [
      ['EGRESS', egress],
      ['INGRESS', ingress],
    ] as const) {
      const allowed = mesh.check(dir, authenticated);
      if (!allowed.ok) {
        this.#refuse(
          conn,
          direction,
          allowed.reason === 'auth_required' ? 'identity_unavailable' : allowed.reason,
          allowed.dir,
          allowed.message,
        );
        return;
      }
    }
    conn.extra.sameNode = true;
    this.#record(conn, 'EGRESS', egress, mtls && authenticated);
    this.#record(conn, 'INGRESS', ingress, mtls && authenticated);
    conn.recheck = () => {
      const e = mesh.decide('egress', srcW.peer, dstW.peer, conn.dst.port);
      const i = mesh.decide('ingress', srcW.peer, dstW.peer, conn.dst.port);
      const auth = mesh.contextFor(srcId) !== null && mesh.contextFor(dstId) !== null;
      const a = mesh.check(e, auth);
      const b = mesh.check(i, auth);
      return !a.ok ? a.reason : !b.ok ? b.reason : null;
    };
    this.#passthrough(conn);
  }

  #viaTunnel(conn: Connection, srcW: Workload, dstW: Workload, egress: DirectionVerdict | null): void {
    const mesh = this.mesh;
    const srcId = mesh.spiffeIdOf(srcW);
    const dstId = mesh.spiffeIdOf(dstW);
    const ctx = mesh.contextFor(srcId);
    if (ctx === null) {
      this.#refuse(conn, 'EGRESS', 'identity_unavailable', egress, `no valid SVID held for ${srcId}`);
      return;
    }
    conn.extra.srcId = srcId;
    this.#record(conn, 'EGRESS', egress, true, dstId);
    conn.recheck = () => {
      const e = mesh.decide('egress', srcW.peer, dstW.peer, conn.dst.port);
      const ok = mesh.check(e, true);
      return !ok.ok ? ok.reason : mesh.contextFor(srcId) === null ? 'identity_unavailable' : null;
    };
    const sourceIp =
      this.#preserveSource && familyOf(conn.src.ip) === familyOf(conn.dst.ip) ? conn.src.ip : undefined;
    connectViaTunnel(
      conn,
      this.pool,
      {
        // The serial makes a rotated SVID start new tunnels; tunnels made with the old one drain idle.
        key: `${srcId}#${mesh.serialOf(srcId) ?? ''}|${dstId}|${conn.dst.ip}|${sourceIp ?? ''}`,
        peer: endpoint(conn.dst.ip, HBONE_PORT),
        sourceIp,
        tls: { options: { secureContext: ctx }, verify: (s) => mesh.verify(s, dstId) },
      },
      this.#config.proxy.connectTimeout,
    );
  }

  // ── inbound ───────────────────────────────────────────────────────────────────────────────────────

  /** Plaintext to a local workload: never authenticated, so a rule that requires it refuses. */
  #inboundPlaintext(conn: Connection): void {
    const mesh = this.mesh;
    const inv = mesh.inventory;
    const dstW = inv.lookup(conn.dst.ip);
    if (!mesh.enforcing && dstW === undefined) {
      this.#passthrough(conn);
      return;
    }
    const srcPeer = inv.peer(conn.src.ip);
    const dstPeer = dstW?.peer ?? inv.peer(conn.dst.ip);
    const ingress = mesh.decide('ingress', srcPeer, dstPeer, conn.dst.port);
    const allowed = mesh.check(ingress, false);
    if (!allowed.ok) {
      this.#refuse(conn, 'INGRESS', allowed.reason, allowed.dir, allowed.message);
      return;
    }
    this.#record(conn, 'INGRESS', ingress, false);
    conn.recheck = () => this.#recheckPlain(conn, srcPeer.identity, false);
    this.#passthrough(conn);
  }

  #recheckPlain(conn: Connection, _srcIdentity: number, outbound: boolean): string | null {
    const mesh = this.mesh;
    const inv = mesh.inventory;
    const src = inv.peer(conn.src.ip);
    const dst = inv.peer(conn.dst.ip);
    const dirs = outbound ? (['egress', 'ingress'] as const) : (['ingress'] as const);
    for (const d of dirs) {
      const ok = mesh.check(mesh.decide(d, src, dst, conn.dst.port), false);
      if (!ok.ok) return ok.reason;
    }
    return null;
  }

  /** The certificate of the local workload that owns `ip`, chosen by the tunnel's original destination. */
  #serverTls(ip: string) {
    const mesh = this.mesh;
    const w = mesh.inventory.lookup(ip);
    if (!mesh.isLocal(w)) return null;
    const ctx = mesh.contextFor(mesh.spiffeIdOf(w));
    if (ctx === null) return null;
    return { secureContext: ctx, verify: (s: Parameters<MeshView['verify']>[0]) => mesh.verify(s, null) };
  }

  #admitTunnel(peer: TunnelPeer, target: Endpoint): Admission {
    const mesh = this.mesh;
    const inv = mesh.inventory;
    const targetW = inv.lookup(target.ip);
    if (!mesh.isLocal(targetW)) {
      return {
        ok: false,
        status: 403,
        reason: 'target_not_local',
        message: `${target.ip} is not a workload of this node`,
      };
    }
    if (target.ip !== peer.dst.ip) {
      return {
        ok: false,
        status: 403,
        reason: 'target_mismatch',
        message: `CONNECT to ${target.ip} over a tunnel authenticated for ${peer.dst.ip}`,
      };
    }
    const srcW = mesh.tunnelSource(peer.spiffeId, peer.src.ip);
    if (srcW === undefined) {
      return {
        ok: false,
        status: 403,
        reason: 'unknown_identity',
        message: `no workload in the inventory has identity ${peer.spiffeId}`,
      };
    }
    const ingress = mesh.decide('ingress', srcW.peer, targetW.peer, target.port);
    const allowed = mesh.check(ingress, true);
    const flowArgs = { src: { ip: peer.src.ip, port: peer.src.port }, dst: target };
    if (!allowed.ok) {
      this.#decided(
        mesh.flow({
          direction: 'INGRESS',
          forwarded: false,
          reason: allowed.reason,
          ...flowArgs,
          dir: allowed.dir,
          mtls: true,
          peer: peer.spiffeId,
        }),
        allowed.dir,
      );
      return { ok: false, status: 403, reason: allowed.reason as CloseReason, message: allowed.message };
    }
    this.#decided(
      mesh.flow({
        direction: 'INGRESS',
        forwarded: true,
        reason: 'allowed',
        ...flowArgs,
        dir: ingress,
        mtls: true,
        peer: peer.spiffeId,
      }),
      ingress,
    );
    return {
      ok: true,
      extra: { policies: ingress?.matched.map((m) => m.policy) ?? [] },
      recheck: () => {
        const w = mesh.tunnelSource(peer.spiffeId, peer.src.ip);
        const t = mesh.inventory.lookup(target.ip);
        if (w === undefined) return 'unknown_identity';
        if (!mesh.isLocal(t)) return 'target_not_local';
        const ok = mesh.check(mesh.decide('ingress', w.peer, t.peer, target.port), true);
        return ok.ok ? null : ok.reason;
      },
    };
  }

  // ── shared phases ─────────────────────────────────────────────────────────────────────────────────

  #record(
    conn: Connection,
    direction: TrafficDirection,
    dir: DirectionVerdict | null,
    mtls: boolean,
    peer?: string,
  ): void {
    if (dir !== null) conn.extra.policies = dir.matched.map((m) => m.policy);
    conn.extra.mtls = mtls;
    this.#decided(
      this.mesh.flow({
        direction,
        forwarded: true,
        reason: 'allowed',
        src: conn.src,
        dst: conn.dst,
        dir,
        mtls,
        peer,
      }),
      dir,
    );
  }

  /** Every policy decision: counted (direction, verdict, authRequired, reason) and sent as a flow. */
  #decided(f: FlowRecord, dir: DirectionVerdict | null): void {
    const key = decisionKey(f.traffic_direction, f.verdict, dir?.authRequired ?? false, f.ward.reason);
    this.counters.decisions[key] = (this.counters.decisions[key] ?? 0) + 1;
    this.#onFlow(f);
  }

  #refuse(
    conn: Connection,
    direction: TrafficDirection,
    reason: string,
    dir: DirectionVerdict | null,
    message: string,
  ): void {
    this.#decided(
      this.mesh.flow({ direction, forwarded: false, reason, src: conn.src, dst: conn.dst, dir, mtls: false }),
      dir,
    );
    if (dir !== null) conn.extra.policies = dir.matched.map((m) => m.policy);
    conn.close(reason as CloseReason, new Error(message));
  }

  /** Plaintext to the original destination, from the client's own address. */
  #passthrough(conn: Connection): void {
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
    // Should this process or worker die, the kernel resets the client instead of closing it in order.
    setAbortiveClose(socket, true);
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
    const fd = this.#upstreamFd(dst.family, src.family === dst.family ? src.ip : undefined);
    setAbortiveCloseFd(fd, true);
    return new NetSocket({ fd, allowHalfOpen: true, manualStart: true } as ConstructorParameters<
      typeof NetSocket
    >[0]);
  }

  #tunnelSocket(peer: Endpoint, sourceIp: string | undefined): NetSocket {
    const fd = this.#upstreamFd(peer.family, sourceIp);
    setBufferSizesFd(fd, TUNNEL_SOCKET_BUFFER, TUNNEL_SOCKET_BUFFER);
    return new NetSocket({ fd, manualStart: true } as ConstructorParameters<typeof NetSocket>[0]);
  }

  /** A socket with the bypass mark, bound to `sourceIp` (kept from the client) where the kernel allows. */
  #upstreamFd(family: Family, sourceIp: string | undefined): number {
    const mark = this.#config.capture.bypassMark;
    if (this.#preserveSource && sourceIp !== undefined) {
      try {
        return createUpstreamFd({ family, mark, source: { ip: sourceIp, port: 0 } });
      } catch (err) {
        if (!(err instanceof CapabilityError)) throw err;
        this.#preserveSource = false;
        this.#log.warn(
          { err: describeError(err).message },
          'cannot keep client addresses as upstream source; using the node address from now on',
        );
      }
    }
    return createUpstreamFd({ family, mark });
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

  /** After a policy, inventory or identity change: closes the open connections no longer allowed. */
  recheckAll(): number {
    let closed = 0;
    for (const conn of [...this.#active]) {
      const reason = conn.recheck?.() ?? null;
      if (reason === null) continue;
      closed++;
      this.#decided(
        this.mesh.flow({
          direction: conn.direction === 'outbound' ? 'EGRESS' : 'INGRESS',
          forwarded: false,
          reason: 'policy_changed',
          src: conn.src,
          dst: conn.dst,
          dir: null,
          mtls: conn.extra.mtls === true,
        }),
        null,
      );
      conn.close(
        'policy_changed',
        new Error(`no longer allowed (${reason}) after a policy, inventory or identity change`),
      );
    }
    if (closed > 0) this.#log.info({ closed }, 'closed connections no longer allowed');
    return closed;
  }

  /**
   * Stops accepting, lets open connections finish until the deadline, then closes what is left.
   * Resolves with the number of connections closed at the deadline.
   */
  async drain(deadlineMs: number): Promise<number> {
    this.#draining = true;
    for (const s of this.#servers) s.close();
    this.pool.close();
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
    this.#hbone.close();
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

  describe(): string {
    return `${this.#active.size} connections; tunnels ${JSON.stringify(this.pool.stats())}; listening ${this.#servers
      .map((s) => {
        const a = s.address();
        return typeof a === 'object' && a !== null ? formatEndpoint(endpoint(a.address, a.port)) : String(a);
      })
      .join(', ')}`;
  }
}
