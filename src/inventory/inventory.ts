// The workload inventory: IP → workload (name, namespace, labels, service account, node, numeric
// identity), and IP → the peer policy sees (a pod, this node, another node, or the world).
import { normaliseIp } from '../net/address.ts';
import type { PolicyPeer } from '../policy/decide.ts';
import {
  DEFAULT_CLUSTER_NAME,
  type LabelSet,
  podIdentityLabels,
  RESERVED_IDENTITIES,
  reservedLabels,
  worldLabels,
} from '../policy/labels.ts';
import { InventoryError } from './errors.ts';
import { assignIdentities, isClusterIdentity, type SpiffeScheme, spiffeIdFor } from './identity.ts';

export interface Workload {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  readonly node: string | undefined;
  readonly ips: readonly string[];
  /** Numeric security identity (Cilium's, or derived: see identity.ts). */
  readonly identity: number;
  /** Where the identity came from. */
  readonly identitySource: 'cilium' | 'pinned' | 'derived';
  readonly securityLabels: LabelSet;
  readonly namedPorts: ReadonlyMap<string, number>;
  /** The peer decide() takes for this workload. */
  readonly peer: PolicyPeer;
}

export interface WorkloadInput {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount?: string | undefined;
  readonly node?: string | undefined;
  readonly ips: readonly string[];
  /** An identity fixed elsewhere (CiliumEndpoint, the inventory file). */
  readonly identity?: number | undefined;
  readonly identitySource?: 'cilium' | 'pinned';
  /** Cilium's own security labels for that identity (CiliumIdentity), when known. */
  readonly securityLabels?: LabelSet | undefined;
  readonly namedPorts?: Readonly<Record<string, number>> | undefined;
}

export interface InventoryInput {
  readonly clusterName?: string | undefined;
  /** 0..255; the high byte of derived identities (Cilium's `cluster.id`). */
  readonly clusterId?: number | undefined;
  readonly namespaces?: Readonly<Record<string, Readonly<Record<string, string>>>> | undefined;
  readonly nodes?: readonly { readonly name: string; readonly ips: readonly string[] }[] | undefined;
  readonly workloads: readonly WorkloadInput[];
  /** This node's name: its IPs are `reserved:host`, other nodes' `reserved:remote-node`. */
  readonly localNode?: string | undefined;
}

export interface Inventory {
  readonly revision: number;
  readonly clusterName: string;
  /** What it was built from (plain data): worker threads rebuild the same inventory from it. */
  readonly input: InventoryInput;
  /** The workload that owns `ip`, if any. */
  lookup(ip: string): Workload | undefined;
  /** The peer policy sees at `ip`: a pod, `reserved:host`, `reserved:remote-node`, or the world. */
  peer(ip: string): PolicyPeer;
  workloads(): readonly Workload[];
  /** The SPIFFE ID of the workload at `ip`, or undefined when no workload owns it. */
  spiffeId(ip: string, scheme?: SpiffeScheme, trustDomain?: string): string | undefined;
}

function namedPortsKey(m: ReadonlyMap<string, number>): string {
  return [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function buildInventory(input: InventoryInput, revision = 0): Inventory {
  const clusterName = input.clusterName ?? DEFAULT_CLUSTER_NAME;
  const clusterId = input.clusterId ?? 0;
  const prepared = input.workloads.map((w) => {
    const labels =
      w.securityLabels ??
      podIdentityLabels({
        namespace: w.namespace,
        labels: w.labels,
        serviceAccount: w.serviceAccount,
        namespaceLabels: input.namespaces?.[w.namespace],
        cluster: clusterName,
      });
    return { w, labels };
  });
  const pinned = new Map<string, number>();
  const pinnedBy = new Map<number, string>();
  for (const { w, labels } of prepared) {
    if (w.identity === undefined) continue;
    if (!isClusterIdentity(w.identity)) {
      throw new InventoryError(
        'INV_INVALID',
        `workload ${w.namespace}/${w.name}: identity ${w.identity} is reserved or node-local (must be 256..16777215)`,
      );
    }
    const prev = pinned.get(labels.canonical);
    const owner = pinnedBy.get(w.identity);
    if ((prev !== undefined && prev !== w.identity) || (owner !== undefined && owner !== labels.canonical)) {
      throw new InventoryError(
        'INV_INVALID',
        `workload ${w.namespace}/${w.name}: identity ${w.identity} conflicts with another workload's (one identity per set of security labels)`,
      );
    }
    pinned.set(labels.canonical, w.identity);
    pinnedBy.set(w.identity, labels.canonical);
  }
  const ids = assignIdentities(
    prepared.map((p) => p.labels),
    clusterId,
    pinned,
  );
  const byIp = new Map<string, Workload>();
  const all: Workload[] = [];
  for (const { w, labels } of prepared) {
    const identity = ids.get(labels.canonical)!;
    const namedPorts = new Map(Object.entries(w.namedPorts ?? {}));
    const ips = w.ips.map(normaliseIp);
    const peer: PolicyPeer = Object.freeze({
      kind: 'pod',
      identity,
      labels,
      ip: ips[0],
      namedPorts,
      namedPortsKey: namedPortsKey(namedPorts),
    });
    const wl: Workload = Object.freeze({
      name: w.name,
      namespace: w.namespace,
      labels: Object.freeze({ ...w.labels }),
      serviceAccount: w.serviceAccount ?? 'default',
      node: w.node,
      ips: Object.freeze(ips),
      identity,
      identitySource: w.identity === undefined ? 'derived' : (w.identitySource ?? 'pinned'),
      securityLabels: labels,
      namedPorts,
      peer,
    });
    all.push(wl);
    for (const ip of ips) {
      const prev = byIp.get(ip);
      if (prev !== undefined) {
        throw new InventoryError(
          'INV_INVALID',
          `IP ${ip} belongs to both ${prev.namespace}/${prev.name} and ${w.namespace}/${w.name}`,
        );
      }
      byIp.set(ip, wl);
    }
  }
  const nodeIps = new Map<string, string>();
  for (const n of input.nodes ?? []) for (const ip of n.ips) nodeIps.set(normaliseIp(ip), n.name);
  const hostPeer = Object.freeze({
    kind: 'reserved',
    identity: RESERVED_IDENTITIES.host,
    labels: reservedLabels('host'),
  });
  const remotePeer = Object.freeze({
    kind: 'reserved',
    identity: RESERVED_IDENTITIES['remote-node'],
    labels: reservedLabels('remote-node'),
  });
  return Object.freeze({
    revision,
    clusterName,
    input,
    lookup: (ip: string) => byIp.get(normaliseIp(ip)),
    peer(ip: string): PolicyPeer {
      const n = normaliseIp(ip);
      const w = byIp.get(n);
      if (w !== undefined) return w.ips[0] === n ? w.peer : { ...w.peer, ip: n };
      const node = nodeIps.get(n);
      if (node !== undefined) {
        const base = node === input.localNode ? hostPeer : remotePeer;
        return { ...base, kind: 'reserved', ip: n };
      }
      return worldPeer(n);
    },
    workloads: () => all,
    spiffeId(ip: string, scheme?: SpiffeScheme, trustDomain?: string) {
      const w = byIp.get(normaliseIp(ip));
      return w === undefined ? undefined : spiffeIdFor(w, scheme, trustDomain);
    },
  });
}

/** An address outside the cluster: `reserved:world` (§1.2), matched by entities and CIDR rules. */
export function worldPeer(ip: string): PolicyPeer {
  const labels = worldLabels(ip);
  const v6 = labels.bySourceKey.has('reserved:world-ipv6');
  return {
    kind: 'world',
    identity: v6 ? RESERVED_IDENTITIES['world-ipv6'] : RESERVED_IDENTITIES['world-ipv4'],
    labels,
    ip,
  };
}
