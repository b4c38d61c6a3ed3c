// A synthetic cluster for the policy benchmarks (bench/policy-bench.ts, bench/scale): workloads spread
// over namespaces with one identity per app, CiliumNetworkPolicies selecting those apps, and random
// connections between the workloads. Deterministic for a given seed, so runs compare.
import type { WorkloadInput } from '../../src/inventory/inventory.ts';
import type { Connection, PolicyPeer } from '../../src/policy/decide.ts';
import type { RawDocument } from '../../src/policy/manifest.ts';

export interface Rng {
  /** Uniform in [0, 1). */
  rand(): number;
  /** Uniform integer in [0, n). */
  pick(n: number): number;
}

/** mulberry32: small, fast, and the same sequence on every platform. */
export function mulberry32(seed: number): Rng {
  let s = seed | 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { rand, pick: (n) => Math.floor(rand() * n) };
}

export interface ClusterShape {
  readonly policies: number;
  readonly workloads: number;
  /** Pods per app (one identity per app). */
  readonly replicas: number;
  /** Default 100. */
  readonly namespaces?: number;
}

export interface SyntheticCluster {
  readonly workloads: WorkloadInput[];
  readonly docs: RawDocument[];
  /** Apps (identities) per namespace. */
  readonly appsPerNamespace: number;
}

/**
 * Workloads: `namespaces` namespaces, apps per namespace so that each app has `replicas` pods.
 * Policies: per namespace, CNPs selecting one app with ingress from two apps on 80/443 (every fourth
 * requires authentication), every tenth also an egress rule and a deny; 2% cluster-wide.
 */
export function syntheticCluster(shape: ClusterShape, rng: Rng): SyntheticCluster {
  const { pick } = rng;
  const W = shape.workloads;
  const NAMESPACES = shape.namespaces ?? 100;
  const APPS_PER_NS = Math.max(1, Math.floor(W / NAMESPACES / shape.replicas));
  const workloads: WorkloadInput[] = [];
  for (let i = 0; i < W; i++) {
    const ns = i % NAMESPACES;
    const appN = Math.floor(i / NAMESPACES) % APPS_PER_NS;
    workloads.push({
      name: `w${i}`,
      namespace: `ns${ns}`,
      labels: { app: `app${appN}`, tier: appN % 3 === 0 ? 'web' : 'db' },
      ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
    });
  }
  const docs: RawDocument[] = [];
  for (let i = 0; i < shape.policies; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const subject = `app${pick(APPS_PER_NS)}`;
    const clusterwide = i % 50 === 0;
    const spec: Record<string, unknown> = {
      endpointSelector: { matchLabels: { app: subject } },
      ingress: [
        {
          fromEndpoints: [
            { matchLabels: { app: `app${pick(APPS_PER_NS)}` } },
            { matchLabels: { app: `app${pick(APPS_PER_NS)}` } },
          ],
          toPorts: [
            {
              ports: [
                { port: '80', protocol: 'TCP' },
                { port: '443', protocol: 'TCP' },
              ],
            },
          ],
          ...(i % 4 === 0 ? { authentication: { mode: 'required' } } : {}),
        },
      ],
    };
    if (i % 10 === 0) {
      spec.egress = [
        { toEndpoints: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'db'] }] }] },
        { toEntities: ['world'] },
      ];
      spec.ingressDeny = [
        {
          fromEndpoints: [{ matchLabels: { app: `app${pick(APPS_PER_NS)}` } }],
          toPorts: [{ ports: [{ port: '22' }] }],
        },
      ];
    }
    docs.push({
      file: `bench/${i}.yaml`,
      document: 0,
      prefix: '',
      value: clusterwide
        ? {
            apiVersion: 'cilium.io/v2',
            kind: 'CiliumClusterwideNetworkPolicy',
            metadata: { name: `p${i}` },
            spec,
          }
        : {
            apiVersion: 'cilium.io/v2',
            kind: 'CiliumNetworkPolicy',
            metadata: { name: `p${i}`, namespace: ns },
            spec,
          },
    });
  }
  return { workloads, docs, appsPerNamespace: APPS_PER_NS };
}

/** A random TCP connection between two of the peers, to port 80 or 443. */
export function randomConnection(peers: readonly PolicyPeer[], rng: Rng): Connection {
  return {
    src: peers[rng.pick(peers.length)]!,
    dst: peers[rng.pick(peers.length)]!,
    dport: rng.rand() < 0.5 ? 80 : 443,
    protocol: 'TCP',
  };
}
