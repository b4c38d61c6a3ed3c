// Security labels, as Cilium builds them for an identity (reference §1). Policies never see raw pod
// labels: they match the labels of the pod's security identity, each carrying a source (`k8s`,
// `reserved`, `cidr`, …).
import { familyOf } from '../net/address.ts';

export interface Label {
  readonly source: string;
  readonly key: string;
  readonly value: string;
}

/** An immutable set of security labels with the indexes selector matching needs. */
export interface LabelSet {
  readonly labels: readonly Label[];
  /** `source:key` → value. */
  readonly bySourceKey: ReadonlyMap<string, string>;
  /** key → the values it has under any source. */
  readonly byKey: ReadonlyMap<string, readonly string[]>;
  /** Sorted `source:key=value` lines joined by `;`: equal sets have equal strings. */
  readonly canonical: string;
}

// C:pkg/k8s/apis/cilium.io/const.go
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_NAMESPACE_META_LABELS = 'io.cilium.k8s.namespace.labels';
export const POLICY_LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const POLICY_LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';
/** Kubernetes puts this label on every namespace (KW: "kubernetes.io/metadata.name"). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
export const DEFAULT_CLUSTER_NAME = 'default';

export const SOURCE_K8S = 'k8s';
export const SOURCE_ANY = 'any';
export const SOURCE_RESERVED = 'reserved';
export const SOURCE_CIDR = 'cidr';

/** Reserved identities and their numeric ids (C:pkg/identity/numericidentity.go). */
export const RESERVED_IDENTITIES = {
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  'remote-node': 6,
  'kube-apiserver': 7,
  ingress: 8,
  'world-ipv4': 9,
  'world-ipv6': 10,
} as const;
export type ReservedIdentity = keyof typeof RESERVED_IDENTITIES;

export function labelSet(labels: Iterable<Label>): LabelSet {
  const bySourceKey = new Map<string, string>();
  const byKey = new Map<string, string[]>();
  const list: Label[] = [];
  for (const l of labels) {
    const sk = `${l.source}:${l.key}`;
    if (bySourceKey.has(sk)) continue;
    bySourceKey.set(sk, l.value);
    const values = byKey.get(l.key);
    if (values === undefined) byKey.set(l.key, [l.value]);
    else values.push(l.value);
    list.push(Object.freeze({ source: l.source, key: l.key, value: l.value }));
  }
  list.sort((a, b) => compareStrings(formatLabel(a), formatLabel(b)));
  return Object.freeze({
    labels: Object.freeze(list),
    bySourceKey,
    byKey,
    canonical: list.map(formatLabel).join(';'),
  });
}

export function formatLabel(l: Label): string {
  return `${l.source}:${l.key}=${l.value}`;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Cilium's default identity-relevant label filter (C:pkg/labelsfilter/filter.go
// `defaultLabelPrefixCfg`; C:Documentation/operations/performance/scalability/identity-relevant-labels.rst):
// pod labels matching an exclusive pattern are not part of the identity, unless an inclusive pattern
// matches them at least as specifically (longer pattern). Patterns are unanchored regular expressions.
const INCLUDE = [
  POD_NAMESPACE_LABEL,
  POD_NAMESPACE_META_LABELS,
  'app.kubernetes.io',
  'io.cilium.k8s.policy',
].map((p) => ({ re: new RegExp(p.replaceAll('.', '\\.')), len: p.length }));
const EXCLUDE = [
  'io\\.kubernetes',
  'kubernetes\\.io',
  'statefulset\\.kubernetes\\.io/pod-name',
  'apps\\.kubernetes\\.io/pod-index',
  'batch\\.kubernetes\\.io/job-completion-index',
  'batch\\.kubernetes\\.io/controller-uid',
  '.*beta\\.kubernetes\\.io',
  'k8s\\.io',
  'pod-template-generation',
  'pod-template-hash',
  'controller-revision-hash',
  'annotation.*',
  'etcd_node',
].map((p) => ({ re: new RegExp(p), len: p.length }));

/** Whether a pod label key is identity-relevant under Cilium's default label filter. */
export function isIdentityRelevant(key: string): boolean {
  let included = 0;
  let excluded = 0;
  for (const p of INCLUDE) if (p.len > included && p.re.test(key)) included = p.len;
  for (const p of EXCLUDE) if (p.len > excluded && p.re.test(key)) excluded = p.len;
  return excluded === 0 || included >= excluded;
}

export interface PodIdentityInput {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount?: string | undefined;
  /** Labels of the pod's namespace; `kubernetes.io/metadata.name` is added when missing. */
  readonly namespaceLabels?: Readonly<Record<string, string>> | undefined;
  readonly cluster?: string | undefined;
}

/**
 * The security labels of a pod (reference §1.1): every identity-relevant pod label as `k8s:k=v`,
 * `k8s:io.kubernetes.pod.namespace`, `k8s:io.cilium.k8s.policy.serviceaccount`,
 * `k8s:io.cilium.k8s.policy.cluster`, and each namespace label as
 * `k8s:io.cilium.k8s.namespace.labels.<k>=<v>`.
 */
export function podIdentityLabels(p: PodIdentityInput): LabelSet {
  const out: Label[] = [];
  for (const [k, v] of Object.entries(p.labels)) {
    if (isIdentityRelevant(k)) out.push({ source: SOURCE_K8S, key: k, value: v });
  }
  out.push({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, value: p.namespace });
  const sa = p.serviceAccount === undefined || p.serviceAccount === '' ? 'default' : p.serviceAccount;
  out.push({ source: SOURCE_K8S, key: POLICY_LABEL_SERVICE_ACCOUNT, value: sa });
  out.push({ source: SOURCE_K8S, key: POLICY_LABEL_CLUSTER, value: p.cluster ?? DEFAULT_CLUSTER_NAME });
  const nsLabels: Record<string, string> = {
    [NAMESPACE_NAME_LABEL]: p.namespace,
    ...(p.namespaceLabels ?? {}),
  };
  for (const [k, v] of Object.entries(nsLabels)) {
    out.push({ source: SOURCE_K8S, key: `${POD_NAMESPACE_META_LABELS}.${k}`, value: v });
  }
  return labelSet(out);
}

/** The labels of a reserved identity (`reserved:host`, …). */
export function reservedLabels(name: ReservedIdentity): LabelSet {
  const labels: Label[] = [{ source: SOURCE_RESERVED, key: name, value: '' }];
  if (name === 'world-ipv4' || name === 'world-ipv6')
    labels.push({ source: SOURCE_RESERVED, key: 'world', value: '' });
  return labelSet(labels);
}

/**
 * The labels of an address outside the cluster (reference §1.2): `reserved:world` and its
 * family-specific form, plus the CIDR label of the address itself.
 */
export function worldLabels(ip: string): LabelSet {
  const family = familyOf(ip);
  const labels: Label[] = [{ source: SOURCE_RESERVED, key: 'world', value: '' }];
  if (family === 4) {
    labels.push({ source: SOURCE_RESERVED, key: 'world-ipv4', value: '' });
    labels.push({ source: SOURCE_CIDR, key: `${ip}/32`, value: '' });
  } else if (family === 6) {
    labels.push({ source: SOURCE_RESERVED, key: 'world-ipv6', value: '' });
    labels.push({ source: SOURCE_CIDR, key: `${ip}/128`, value: '' });
  }
  return labelSet(labels);
}

/** Security labels from Cilium's `k8s:key=value` / `reserved:host` strings (CiliumIdentity, CiliumEndpoint). */
export function parseLabelStrings(entries: Iterable<[string, string]>): LabelSet {
  const out: Label[] = [];
  for (const [sk, v] of entries) {
    const i = sk.indexOf(':');
    if (i < 0) out.push({ source: SOURCE_ANY, key: sk, value: v });
    else out.push({ source: sk.slice(0, i), key: sk.slice(i + 1), value: v });
  }
  return labelSet(out);
}
