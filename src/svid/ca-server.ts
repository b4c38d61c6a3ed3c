// `ward ca serve`: the development CA speaking both SPIRE's Delegated Identity API and the SPIFFE
// Workload API on one Unix socket, so ward's clients always run over the real protocol. It issues an SVID
// per registered identity, rotates each at half its lifetime and pushes every change (rotation, entries,
// federated bundles) on the open streams, with SPIRE's error behaviour:
//   Workload API: header missing → InvalidArgument; no workload identity → PermissionDenied.
//   Delegated:   selectors and pid both or neither → InvalidArgument; bad selector → InvalidArgument;
//                delegate "no-identity" → PermissionDenied "no identity issued"; "unauthorized" →
//                PermissionDenied "caller not configured as an authorized delegate" (rechecked on every
//                update, as SPIRE does). The CA cannot attest processes, so PID mode is Unimplemented.
import { existsSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.ts';
import type { TrustBundle } from './bundle.ts';
import type { DevCa, IssuedSvid } from './dev-ca.ts';
import {
  CHANNEL_OPTIONS,
  type Selector,
  type SubscribeToX509SvidsRequest,
  services,
  WORKLOAD_HEADER,
} from './grpc-protos.ts';
import { parseSpiffeId, trustDomainId } from './spiffe-id.ts';

export interface CaEntry {
  readonly spiffeId: string;
  /** `type:value`; the delegated API returns the entry when all of them are in the request's set. */
  readonly selectors: readonly string[];
  /** Also served on the Workload API (in order; the first is the default identity). */
  readonly workload: boolean;
}

export type DelegateMode = 'authorized' | 'unauthorized' | 'no-identity';

export interface CaRegistry {
  readonly entries: readonly CaEntry[];
  readonly delegate: DelegateMode;
  /** Federated trust domains → their bundles (from files). */
  readonly federated: ReadonlyMap<string, TrustBundle>;
}

export interface CaServerOptions {
  readonly ca: DevCa;
  readonly socketPath: string;
  readonly ttlMs: number;
  readonly registry: CaRegistry;
  readonly log: Logger;
}

type Call<Req, Res> = grpc.ServerWritableStream<Req, Res>;

interface Subscriber {
  readonly kind: 'delegated-svids' | 'delegated-bundles' | 'workload-svids' | 'workload-bundles';
  readonly call: Call<unknown, unknown>;
  readonly selectors: readonly Selector[];
  last: string | undefined;
}

function selectorKey(s: Selector): string {
  return `${s.type}:${s.value}`;
}

export class DevCaServer {
  private readonly ca: DevCa;
  private readonly socketPath: string;
  private readonly ttlMs: number;
  private readonly log: Logger;
  private registry: CaRegistry;
  private readonly issued = new Map<string, IssuedSvid>();
  private readonly subscribers = new Set<Subscriber>();
  private server: grpc.Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private issuing: Promise<void> = Promise.resolve();
  /** How many SVIDs were issued, rotations included. */
  issuedCount = 0;

  constructor(options: CaServerOptions) {
    this.ca = options.ca;
    this.socketPath = options.socketPath;
    this.ttlMs = options.ttlMs;
    this.log = options.log;
    this.registry = options.registry;
    for (const e of this.registry.entries) parseSpiffeId(e.spiffeId);
  }

  async start(): Promise<void> {
    await this.reconcile();
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath);
    const server = new grpc.Server(CHANNEL_OPTIONS);
    const { workload, delegated } = services();
    server.addService(workload.service, {
      FetchX509SVID: (call: Call<unknown, unknown>) => this.workloadStream(call, 'workload-svids'),
      FetchX509Bundles: (call: Call<unknown, unknown>) => this.workloadStream(call, 'workload-bundles'),
      FetchJWTSVID: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(unimplemented('JWT-SVIDs')),
      FetchJWTBundles: (call: Call<unknown, unknown>) => call.emit('error', unimplemented('JWT bundles')),
      ValidateJWTSVID: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(unimplemented('JWT-SVIDs')),
    });
    server.addService(delegated.service, {
      SubscribeToX509SVIDs: (call: Call<SubscribeToX509SvidsRequest, unknown>) => this.delegatedSvids(call),
      SubscribeToX509Bundles: (call: Call<unknown, unknown>) => this.subscribe(call, 'delegated-bundles', []),
      FetchJWTSVIDs: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(unimplemented('JWT-SVIDs')),
      SubscribeToJWTBundles: (call: Call<unknown, unknown>) =>
        call.emit('error', unimplemented('JWT bundles')),
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    this.server = server;
    this.log.info(
      { socket: this.socketPath, trustDomain: this.ca.trustDomain, identities: this.issued.size },
      'serving',
    );
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const server = this.server;
    this.server = undefined;
    // End every stream with Unavailable (what a restarting agent's clients see), then drop the sockets.
    for (const sub of this.subscribers)
      sub.call.emit('error', status(grpc.status.UNAVAILABLE, 'server shutting down'));
    this.subscribers.clear();
    if (server !== undefined) {
      await new Promise((r) => setTimeout(r, 20));
      server.forceShutdown();
    }
    await this.issuing.catch(() => {});
  }

  /** Replaces the registry (entries, delegate mode, federated bundles) and pushes the change. */
  async update(registry: CaRegistry): Promise<void> {
    for (const e of registry.entries) parseSpiffeId(e.spiffeId);
    this.registry = registry;
    await this.reconcile();
  }

  /** Current SVIDs, for `ward ca` logs and tests. */
  svids(): ReadonlyMap<string, IssuedSvid> {
    return this.issued;
  }

  /** Issues missing SVIDs, rotates those past half-life, drops removed ones, then pushes to streams. */
  private reconcile(): Promise<void> {
    const run = this.issuing.then(async () => {
      const now = Date.now();
      const wanted = new Set(this.registry.entries.map((e) => e.spiffeId));
      for (const id of [...this.issued.keys()]) if (!wanted.has(id)) this.issued.delete(id);
      for (const id of wanted) {
        const cur = this.issued.get(id);
        if (cur === undefined || now >= halfLife(cur)) {
          const svid = await this.ca.issue(id, this.ttlMs, now);
          this.issuedCount++;
          this.issued.set(id, svid);
          this.log.info(
            { spiffeId: id, serial: svid.serial, notAfter: new Date(svid.notAfter).toISOString() },
            cur ? 'rotated' : 'issued',
          );
        }
      }
      this.pushAll();
      this.schedule();
    });
    this.issuing = run.catch((err: unknown) => {
      this.log.error({ err }, 'issuing failed');
    });
    return run;
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    let next = Number.POSITIVE_INFINITY;
    for (const s of this.issued.values()) next = Math.min(next, halfLife(s));
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => void this.reconcile(), Math.max(10, next - Date.now()));
  }

  private pushAll(): void {
    for (const s of [...this.subscribers]) this.push(s);
  }

  private subscribe(
    call: Call<unknown, unknown>,
    kind: Subscriber['kind'],
    selectors: readonly Selector[],
  ): void {
    const sub: Subscriber = { kind, call, selectors, last: undefined };
    this.subscribers.add(sub);
    const drop = (): void => {
      this.subscribers.delete(sub);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    // The first message waits for pending issuance, like SPIRE waits for cached SVIDs.
    void this.issuing.then(() => {
      if (this.subscribers.has(sub)) this.push(sub);
    });
  }

  private workloadStream(call: Call<unknown, unknown>, kind: 'workload-svids' | 'workload-bundles'): void {
    const values = call.metadata.get(WORKLOAD_HEADER);
    if (values.length !== 1 || values[0] !== 'true') {
      call.emit('error', status(grpc.status.INVALID_ARGUMENT, 'security header missing from request'));
      return;
    }
    this.subscribe(call, kind, []);
  }

  private delegatedSvids(call: Call<SubscribeToX509SvidsRequest, unknown>): void {
    const req = call.request;
    const selectors = req.selectors ?? [];
    const pid = req.pid ?? 0;
    if ((selectors.length > 0 && pid !== 0) || (selectors.length === 0 && pid === 0)) {
      call.emit(
        'error',
        status(grpc.status.INVALID_ARGUMENT, 'must provide either selectors or non-zero pid, but not both'),
      );
      return;
    }
    if (pid !== 0) {
      call.emit(
        'error',
        status(grpc.status.UNIMPLEMENTED, 'the development CA cannot attest processes; use selectors'),
      );
      return;
    }
    if (selectors.some((s) => s.type === '' || s.type.includes(':') || s.value === '')) {
      call.emit('error', status(grpc.status.INVALID_ARGUMENT, 'could not parse provided selectors'));
      return;
    }
    this.subscribe(call as Call<unknown, unknown>, 'delegated-svids', selectors);
  }

  private federatedBundles(): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (const [td, b] of this.registry.federated)
      out[trustDomainId(td)] = Buffer.concat(b.authorities.map((a) => a.der));
    return out;
  }

  private workloadEntries(): IssuedSvid[] {
    return this.registry.entries
      .filter((e) => e.workload)
      .map((e) => this.issued.get(e.spiffeId))
      .filter((s): s is IssuedSvid => s !== undefined);
  }

  private delegateRefusal(): grpc.StatusObject | undefined {
    if (this.registry.delegate === 'no-identity')
      return status(grpc.status.PERMISSION_DENIED, 'no identity issued');
    if (this.registry.delegate === 'unauthorized') {
      return status(grpc.status.PERMISSION_DENIED, 'caller not configured as an authorized delegate');
    }
    return undefined;
  }

  private message(sub: Subscriber): { body: object } | { error: grpc.StatusObject } {
    const own = this.ca.certificate.der;
    switch (sub.kind) {
      case 'workload-svids': {
        const svids = this.workloadEntries();
        if (svids.length === 0) return { error: status(grpc.status.PERMISSION_DENIED, 'no identity issued') };
        return {
          body: {
            svids: svids.map((s) => ({
              spiffe_id: s.spiffeId,
              x509_svid: Buffer.concat(s.chain as Buffer[]),
              x509_svid_key: s.key,
              bundle: own,
              hint: '',
            })),
            crl: [],
            federated_bundles: this.federatedBundles(),
          },
        };
      }
      case 'workload-bundles': {
        if (this.workloadEntries().length === 0) {
          return { error: status(grpc.status.PERMISSION_DENIED, 'no identity issued') };
        }
        return {
          body: {
            crl: [],
            bundles: { [trustDomainId(this.ca.trustDomain)]: own, ...this.federatedBundles() },
          },
        };
      }
      case 'delegated-svids': {
        const refusal = this.delegateRefusal();
        if (refusal !== undefined) return { error: refusal };
        const have = new Set(sub.selectors.map(selectorKey));
        const matching = this.registry.entries.filter(
          (e) => e.selectors.length > 0 && e.selectors.every((s) => have.has(s)),
        );
        return {
          body: {
            x509_svids: matching
              .map((e) => this.issued.get(e.spiffeId))
              .filter((s): s is IssuedSvid => s !== undefined)
              .map((s) => {
                const id = parseSpiffeId(s.spiffeId);
                return {
                  x509_svid: {
                    cert_chain: s.chain,
                    id: { trust_domain: id.trustDomain, path: id.path },
                    expires_at: Math.floor(s.notAfter / 1000),
                    hint: '',
                  },
                  x509_svid_key: s.key,
                };
              }),
            federates_with: [...this.registry.federated.keys()].map((td) => trustDomainId(td)).sort(),
          },
        };
      }
      case 'delegated-bundles': {
        const refusal = this.delegateRefusal();
        if (refusal !== undefined) return { error: refusal };
        return {
          body: {
            ca_certificates: { [trustDomainId(this.ca.trustDomain)]: own, ...this.federatedBundles() },
          },
        };
      }
    }
  }

  private push(sub: Subscriber): void {
    const m = this.message(sub);
    if ('error' in m) {
      this.subscribers.delete(sub);
      sub.call.emit('error', m.error);
      return;
    }
    // Like SPIRE, skip a message identical to the previous one on this stream.
    const key = fingerprint(m.body);
    if (key === sub.last) return;
    sub.last = key;
    sub.call.write(m.body);
  }
}

/** Rotation time: half-way from the issue time (notBefore is backdated, so use issue time + ttl/2). */
function halfLife(s: IssuedSvid): number {
  return s.issuedAt + (s.notAfter - s.issuedAt) / 2;
}

/** The message's contents, Buffers included, as a string to compare with the previous one. */
function fingerprint(body: object): string {
  const parts: string[] = [];
  const walk = (v: unknown): void => {
    if (Buffer.isBuffer(v)) parts.push(v.toString('base64'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        parts.push(k);
        walk(x);
      }
    } else parts.push(String(v));
  };
  walk(body);
  return parts.join(',');
}

function status(code: grpc.status, details: string): grpc.StatusObject {
  return { code, details, metadata: new grpc.Metadata() };
}

function unimplemented(what: string): grpc.StatusObject {
  return status(grpc.status.UNIMPLEMENTED, `the development CA does not serve ${what}`);
}
