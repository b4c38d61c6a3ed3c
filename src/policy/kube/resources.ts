// Exactly what ward lists and watches in the Kubernetes API. The deployment derives its RBAC
// (ClusterRole rules) from this constant: keep it the single source of truth.

export interface WatchedResource {
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  /** Plural resource name, as in RBAC rules and URLs. */
  readonly resource: string;
  readonly kind: string;
  readonly verbs: readonly ('list' | 'watch')[];
  /** Absent from clusters without Cilium's CRDs: a 404 means "none", not an error. */
  readonly optional: boolean;
}

export const WATCHED_RESOURCES = [
  { group: '', version: 'v1', resource: 'pods', kind: 'Pod', verbs: ['list', 'watch'], optional: false },
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    kind: 'Namespace',
    verbs: ['list', 'watch'],
    optional: false,
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    resource: 'networkpolicies',
    kind: 'NetworkPolicy',
    verbs: ['list', 'watch'],
    optional: false,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    resource: 'ciliumnetworkpolicies',
    kind: 'CiliumNetworkPolicy',
    verbs: ['list', 'watch'],
    optional: true,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    resource: 'ciliumclusterwidenetworkpolicies',
    kind: 'CiliumClusterwideNetworkPolicy',
    verbs: ['list', 'watch'],
    optional: true,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    resource: 'ciliumidentities',
    kind: 'CiliumIdentity',
    verbs: ['list', 'watch'],
    optional: true,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    resource: 'ciliumendpoints',
    kind: 'CiliumEndpoint',
    verbs: ['list', 'watch'],
    optional: true,
  },
] as const satisfies readonly WatchedResource[];

export type WatchedResourceName = (typeof WATCHED_RESOURCES)[number]['resource'];

export function resourcePath(r: WatchedResource): string {
  return r.group === '' ? `/api/${r.version}/${r.resource}` : `/apis/${r.group}/${r.version}/${r.resource}`;
}
