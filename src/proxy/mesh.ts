// The worker's view of the control plane: the policy engine, the inventory and the credentials, rebuilt
// from plain snapshots the main thread posts, and swapped whole. The data path asks it three questions:
// who is at this address, may this connection pass (and must it be authenticated), and with which
// certificate do I speak for this workload.
import { randomUUID } from 'node:crypto';
import type { SecureContext, TLSSocket } from 'node:tls';
// Imported module by module rather than through the packages' index files: a worker loads only what it
// runs (the indexes also pull in sources, gRPC clients, schemas and parsers: ~10 MiB more heap per worker,
// and every full GC under load marks it).
import { spiffeIdFor } from '../inventory/identity.ts';
import {
  buildInventory,
  type Inventory,
  type InventoryInput,
  type Workload,
} from '../inventory/inventory.ts';
import type { FlowEndpoint, FlowRecord, TrafficDirection } from '../observe/flow.ts';
import { DROP_REASONS, flowSummary } from '../observe/flow.ts';
import type { DirectionVerdict, PolicyPeer } from '../policy/decide.ts';
import { createPolicyEngine, type PolicyEngine } from '../policy/engine.ts';
import type { Policy } from '../policy/model.ts';
import { compileSnapshot } from '../policy/snapshot.ts';
import { type CredentialsSnapshot, type CredentialView, createCredentialView } from '../svid/credentials.ts';
import { isSvidError } from '../svid/errors.ts';
import type { PeerCheck } from './tunnel-tls.ts';

/** What the main thread posts when policy or inventory change. */
export interface ControlSnapshot {
  /** Accepted policies, or null when no policy source is configured (nothing is enforced). */
  readonly policies: readonly Policy[] | null;
  readonly policyRevision: number;
  readonly clusterName: string;
  readonly inventory: InventoryInput;
  readonly inventoryRevision: number;
}

export interface MeshSettings {
  readonly nodeName: string;
  readonly trustDomain: string;
  readonly idScheme: 'identity' | 'ns-sa';
  readonly plaintextNodes: readonly string[];
}

export type Check =
  | { ok: true; dir: DirectionVerdict | null }
  | { ok: false; reason: string; dir: DirectionVerdict | null; message: string };

export class MeshView {
  readonly credentials: CredentialView = createCredentialView();
  readonly settings: MeshSettings;
  #engine: PolicyEngine | null = null;
  #inventory: Inventory;
  #plaintext: ReadonlySet<string>;
  /** Flow endpoints by IP, for the current inventory (flows are written for every connection). */
  #endpoints = new Map<string, FlowEndpoint>();

  constructor(settings: MeshSettings) {
    this.settings = settings;
    this.#plaintext = new Set(settings.plaintextNodes);
    this.#inventory = buildInventory({ workloads: [], localNode: settings.nodeName });
  }

  /** True once a policy source is configured: connections are then decided, unknown sources refused. */
  get enforcing(): boolean {
    return this.#engine !== null;
  }

  get inventory(): Inventory {
    return this.#inventory;
  }

  applyControl(c: ControlSnapshot): void {
    this.#inventory = buildInventory(
      { ...c.inventory, localNode: this.settings.nodeName },
      c.inventoryRevision,
    );
    this.#engine =
      c.policies === null
        ? null
        : createPolicyEngine(
            compileSnapshot(c.policies, { revision: c.policyRevision, clusterName: c.clusterName }),
          );
  }

  applyCredentials(s: CredentialsSnapshot): void {
    this.credentials.apply(s);
  }

  spiffeIdOf(w: Workload): string {
    return spiffeIdFor(w, this.settings.idScheme, this.settings.trustDomain);
  }

  isLocal(w: Workload | undefined): w is Workload {
    return w !== undefined && w.node === this.settings.nodeName;
  }

  /** A workload on a node that runs ward (so it is reached over HBONE). */
  isMeshed(w: Workload | undefined): w is Workload {
    return w !== undefined && w.node !== undefined && !this.#plaintext.has(w.node);
  }

  /** The certificate ward presents for `spiffeId`, if it holds a usable one. */
  contextFor(spiffeId: string): SecureContext | null {
    return this.credentials.secureContext(spiffeId) ?? null;
  }

  /** The serial of the SVID ward holds for `spiffeId` (changes on every rotation), or null. */
  serialOf(spiffeId: string): string | null {
    return this.credentials.credentials(spiffeId)?.serial ?? null;
  }

  /** Decides one direction; `null` verdict when nothing is enforced. */
  decide(
    direction: 'egress' | 'ingress',
    src: PolicyPeer,
    dst: PolicyPeer,
    dport: number,
  ): DirectionVerdict | null {
    if (this.#engine === null) return null;
    const v = this.#engine.decide({ src, dst, dport, protocol: 'TCP' });
    return direction === 'egress' ? v.egress : v.ingress;
  }

  /** A direction's verdict as allow / refuse; `authenticated` says whether mTLS proved the source. */
  check(dir: DirectionVerdict | null, authenticated: boolean): Check {
    if (dir === null) return { ok: true, dir };
    if (dir.verdict === 'deny') {
      return {
        ok: false,
        reason: 'policy_denied',
        dir,
        message: `${dir.reason} by ${dir.matched[0]?.policy ?? 'default deny'}`,
      };
    }
    if (dir.auth === 'test-always-fail') {
      return {
        ok: false,
        reason: 'auth_failed',
        dir,
        message: 'authentication mode test-always-fail never succeeds',
      };
    }
    if (dir.authRequired && !authenticated) {
      return {
        ok: false,
        reason: 'auth_required',
        dir,
        message: `${dir.matched.find((m) => m.auth === 'required')?.policy ?? 'a rule'} requires authentication`,
      };
    }
    return { ok: true, dir };
  }

  /** The source of an inbound tunnel: the workload whose identity the client certificate proved. */
  tunnelSource(spiffeId: string, tunnelSrcIp: string): Workload | undefined {
    const atIp = this.#inventory.lookup(tunnelSrcIp);
    if (atIp !== undefined && this.spiffeIdOf(atIp) === spiffeId) return atIp;
    return this.#inventory.workloads().find((w) => this.spiffeIdOf(w) === spiffeId);
  }

  verify(socket: TLSSocket, expected: string | null): PeerCheck {
    try {
      const peer = this.credentials.verifyTlsPeer(
        socket,
        expected === null ? { kind: 'any' } : { kind: 'exact', id: expected },
      );
      return { ok: true, spiffeId: peer.spiffeId };
    } catch (err) {
      if (isSvidError(err)) return { ok: false, code: err.code, message: err.message };
      return { ok: false, code: 'SVID_VERIFY', message: (err as Error).message };
    }
  }

  endpointOf(ip: string): FlowEndpoint {
    const cached = this.#endpoints.get(ip);
    if (cached !== undefined) return cached;
    const e = this.#endpointOf(ip);
    // World addresses are many; keep the cache to what the inventory names plus a bounded rest.
    if (this.#endpoints.size < 65_536) this.#endpoints.set(ip, e);
    return e;
  }

  #endpointOf(ip: string): FlowEndpoint {
    const w = this.#inventory.lookup(ip);
    const peer = w?.peer ?? this.#inventory.peer(ip);
    const labels = [...peer.labels.bySourceKey.keys()].map((k) => {
      const v = peer.labels.bySourceKey.get(k);
      return v === undefined || v === '' ? k : `${k}=${v}`;
    });
    return w === undefined
      ? { ID: peer.identity, identity: peer.identity, labels }
      : { ID: peer.identity, identity: peer.identity, namespace: w.namespace, pod_name: w.name, labels };
  }

  flow(args: {
    direction: TrafficDirection;
    forwarded: boolean;
    reason: string;
    src: { ip: string; port: number };
    dst: { ip: string; port: number };
    dir: DirectionVerdict | null;
    mtls: boolean;
    peer?: string | undefined;
  }): FlowRecord {
    const verdict = args.forwarded ? 'FORWARDED' : 'DROPPED';
    const drop = args.forwarded ? undefined : (DROP_REASONS[args.reason] ?? 'POLICY_DENIED');
    return {
      time: new Date().toISOString(),
      uuid: randomUUID(),
      verdict,
      ...(drop === undefined ? {} : { drop_reason_desc: drop }),
      traffic_direction: args.direction,
      IP: {
        source: args.src.ip,
        destination: args.dst.ip,
        ipVersion: args.src.ip.includes(':') ? 'IPv6' : 'IPv4',
      },
      l4: { TCP: { source_port: args.src.port, destination_port: args.dst.port, flags: { SYN: true } } },
      source: this.endpointOf(args.src.ip),
      destination: this.endpointOf(args.dst.ip),
      node_name: this.settings.nodeName,
      auth_type: args.mtls ? 'SPIRE' : 'DISABLED',
      policy_match_type: 'L3_L4',
      Summary: flowSummary(verdict, args.direction, args.reason, args.mtls),
      ward: {
        reason: args.reason,
        policies: args.dir?.matched.map((m) => m.policy) ?? [],
        mtls: args.mtls,
        ...(args.peer === undefined ? {} : { peer: args.peer }),
      },
    };
  }
}
