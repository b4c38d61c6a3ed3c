import type { FlowRecord } from '../../../src/observe/flow.ts';
import type { NodeStatus, SvidStatus } from '../../../src/observe/node-status.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function svidStatus(over: Partial<SvidStatus> = {}): SvidStatus {
  return {
    kind: 'delegated',
    sourceState: 'Available',
    sourceSince: '2025-01-01T00:00:00.000Z',
    storeState: 'Available',
    identities: [
      {
        spiffeId: 'spiffe://spiffe.cilium/identity/1001',
        serial: 'AB01',
        notBefore: '2025-01-01T00:00:00.000Z',
        notAfter: '2025-01-01T01:00:00.000Z',
        expiresInSeconds: 1800,
      },
    ],
    stats: { rotations: 4, expired: 1, refreshes: 2, refusedExpired: 0 },
    ...over,
  };
}

/** A healthy, serving node; override what a case changes. */
export function nodeStatus(over: Partial<Mutable<NodeStatus>> = {}): NodeStatus {
  return {
    node: 'a',
    version: '0.0.0-test',
    phase: 'serving',
    pid: 42,
    startedAt: '2025-01-01T00:00:00.000Z',
    rules: { managed: true, installed: true, backend: 'iptables-nft', chain: 'WARD_PREROUTING' },
    listeners: {
      bound: true,
      outbound: '0.0.0.0:15001',
      inboundPlaintext: '0.0.0.0:15006',
      inboundTunnel: '0.0.0.0:15008',
    },
    endpoints: { admin: '127.0.0.1:15000', metrics: '0.0.0.0:15020', readiness: '0.0.0.0:15021' },
    workers: [{ index: 0, threadId: 2, state: 'ready', restarts: 1, activeConnections: 3 }],
    workerRestarts: 1,
    connections: { active: 3, opened: { outbound: 10, inbound: 7 }, tunnels: 2, streams: 3 },
    svid: svidStatus(),
    control: {
      policySource: 'files',
      inventorySource: 'file',
      loaded: true,
      revision: 3,
      policies: 4,
      rejected: 0,
      warnings: 1,
      workloads: 5,
      lastChange: '2025-01-01T00:00:00.000Z',
      policyUp: true,
      inventoryUp: true,
      sourceProblems: [],
    },
    localWorkloads: [
      {
        name: 'client',
        namespace: 'default',
        spiffeId: 'spiffe://spiffe.cilium/identity/1001',
        svid: 'valid',
      },
    ],
    liveness: { live: true, maxLagMs: 3, thresholdMs: 5000 },
    ...over,
  };
}

export function flow(over: Partial<Mutable<FlowRecord>> = {}): FlowRecord {
  return {
    time: '2025-03-04T11:35:18.651Z',
    uuid: '00000000-0000-4000-8000-000000000000',
    verdict: 'DROPPED',
    drop_reason_desc: 'POLICY_DENIED',
    traffic_direction: 'INGRESS',
    IP: { source: '198.19.1.11', destination: '198.19.2.10', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 50986, destination_port: 80, flags: { SYN: true } } },
    source: {
      ID: 77602,
      identity: 77602,
      namespace: 'default',
      pod_name: 'client2',
      labels: ['k8s:app=client2', 'k8s:io.kubernetes.pod.namespace=default'],
    },
    destination: {
      ID: 108597,
      identity: 108597,
      namespace: 'default',
      pod_name: 'demo-0',
      labels: ['k8s:app=demodeployment', 'k8s:io.kubernetes.pod.namespace=default'],
    },
    node_name: 'b',
    auth_type: 'SPIRE',
    policy_match_type: 'L3_L4',
    Summary: 'Policy denied DROPPED (TCP Flags: SYN; Auth: SPIRE)',
    ward: { reason: 'policy_denied', policies: [], mtls: true },
    ...over,
  };
}
