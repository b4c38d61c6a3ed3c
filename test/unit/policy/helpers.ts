// Test helpers: policies from YAML text, peers from short descriptions.
import { worldPeer } from '../../../src/inventory/inventory.ts';
import type { PolicyPeer } from '../../../src/policy/decide.ts';
import type { PolicyIssue } from '../../../src/policy/errors.ts';
import {
  podIdentityLabels,
  RESERVED_IDENTITIES,
  type ReservedIdentity,
  reservedLabels,
} from '../../../src/policy/labels.ts';
import { type ParseOptions, parseDocuments, splitDocuments } from '../../../src/policy/manifest.ts';
import { compileSnapshot, type PolicySnapshot } from '../../../src/policy/snapshot.ts';

let nextId = 1000;
const ids = new Map<string, number>();

export interface PodSpec {
  ns?: string;
  labels?: Record<string, string>;
  sa?: string;
  nsLabels?: Record<string, string>;
  cluster?: string;
  ip?: string;
  ports?: Record<string, number>;
}

export function pod(spec: PodSpec): PolicyPeer {
  const labels = podIdentityLabels({
    namespace: spec.ns ?? 'default',
    labels: spec.labels ?? {},
    serviceAccount: spec.sa,
    namespaceLabels: spec.nsLabels,
    cluster: spec.cluster ?? 'default',
  });
  let id = ids.get(labels.canonical);
  if (id === undefined) {
    id = nextId++;
    ids.set(labels.canonical, id);
  }
  const namedPorts = spec.ports === undefined ? undefined : new Map(Object.entries(spec.ports));
  return {
    kind: 'pod',
    identity: id,
    labels,
    ip: spec.ip ?? '10.0.0.1',
    namedPorts,
    namedPortsKey: JSON.stringify(spec.ports ?? {}),
  };
}

export const app = (name: string, ns = 'default', extra: Omit<PodSpec, 'labels' | 'ns'> = {}): PolicyPeer =>
  pod({ ns, labels: { app: name }, ...extra });

export function world(ip: string): PolicyPeer {
  return worldPeer(ip);
}

export function reserved(name: ReservedIdentity, ip = '192.168.0.1'): PolicyPeer {
  return { kind: 'reserved', identity: RESERVED_IDENTITIES[name], labels: reservedLabels(name), ip };
}

export function parseYaml(text: string, opts: ParseOptions = {}, file = 'test.yaml') {
  const split = splitDocuments(file, text);
  const parsed = parseDocuments(split.docs, opts);
  return { policies: parsed.policies, issues: [...split.issues, ...parsed.issues] };
}

/** Compiles YAML into a snapshot; throws if any document has an error (tests of semantics want valid input). */
export function snap(text: string, opts: ParseOptions = {}): PolicySnapshot {
  const { policies, issues } = parseYaml(text, opts);
  const errors = issues.filter((i: PolicyIssue) => i.severity === 'error');
  if (errors.length > 0)
    throw new Error(`unexpected policy errors: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return compileSnapshot(policies, { clusterName: opts.clusterName ?? 'default', issues });
}

export function errorsOf(text: string, opts: ParseOptions = {}): PolicyIssue[] {
  return parseYaml(text, opts).issues.filter((i) => i.severity === 'error');
}

/** A CNP in YAML from its spec body (already indented by the caller as a YAML mapping under spec). */
export function cnp(name: string, ns: string, spec: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${indent(spec, 2)}
---
`;
}

export function ccnp(name: string, spec: string): string {
  return `apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: { name: ${name} }
spec:
${indent(spec, 2)}
---
`;
}

export function knp(name: string, ns: string, spec: string): string {
  return `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: ${name}, namespace: ${ns} }
spec:
${indent(spec, 2)}
---
`;
}

function indent(text: string, n: number): string {
  const lines = text.replace(/^\n+|\s+$/g, '').split('\n');
  const min = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  return lines.map((l) => ' '.repeat(n) + l.slice(min)).join('\n');
}
