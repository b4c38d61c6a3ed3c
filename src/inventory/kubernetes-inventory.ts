// The inventory from Kubernetes objects: Pods and Namespaces give names, labels, service accounts,
// nodes and IPs; CiliumEndpoints and CiliumIdentities, where Cilium runs, give the numeric identity and
// Cilium's own security labels. Pods Cilium has not (yet) given an identity get a derived one.

import schemas from '../policy/crd/schemas.json' with { type: 'json' };
import type { KubeObject } from '../policy/kube/reflector.ts';
import type { LabelSet } from '../policy/labels.ts';
import { parseLabelStrings } from '../policy/labels.ts';
import { type OpenApiSchema, type SchemaIssue, validateSchema } from '../policy/openapi-validate.ts';
import { isClusterIdentity } from './identity.ts';
import { buildInventory, type Inventory, type WorkloadInput } from './inventory.ts';

export interface KubeInventoryObjects {
  readonly pods: Iterable<KubeObject>;
  readonly namespaces: Iterable<KubeObject>;
  readonly endpoints: Iterable<KubeObject>;
  readonly identities: Iterable<KubeObject>;
}

export interface KubeInventoryOptions {
  readonly clusterName: string;
  readonly clusterId: number;
  readonly localNode?: string | undefined;
  readonly revision?: number;
}

interface PodShape {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec?: {
    serviceAccountName?: string;
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: { ports?: { name?: string; containerPort?: number }[] }[];
  };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[]; hostIP?: string };
}

interface CepShape {
  metadata: { name: string; namespace?: string };
  status?: { identity?: { id?: number } };
}

interface IdentityShape {
  metadata: { name: string };
  'security-labels'?: Record<string, string>;
}

const IDENTITY_SCHEMA = (schemas as unknown as Record<string, { schema: OpenApiSchema }>).CiliumIdentity!
  .schema;

/** Whether a CiliumIdentity object satisfies its CRD schema (others are ignored: their pods get derived ids). */
function validIdentity(o: KubeObject): boolean {
  const issues: SchemaIssue[] = [];
  validateSchema(IDENTITY_SCHEMA, o, '', issues);
  return issues.length === 0;
}

export function inventoryFromKube(objs: KubeInventoryObjects, opts: KubeInventoryOptions): Inventory {
  const nsLabels: Record<string, Record<string, string>> = {};
  for (const ns of objs.namespaces) nsLabels[ns.metadata.name] = { ...(ns.metadata.labels ?? {}) };
  const cidLabels = new Map<number, LabelSet>();
  for (const o of objs.identities) {
    if (!validIdentity(o)) continue;
    const id = Number((o as unknown as IdentityShape).metadata.name);
    const sl = (o as unknown as IdentityShape)['security-labels'];
    if (isClusterIdentity(id) && sl !== undefined) cidLabels.set(id, parseLabelStrings(Object.entries(sl)));
  }
  const cepIdentity = new Map<string, number>();
  for (const o of objs.endpoints) {
    const c = o as unknown as CepShape;
    const id = c.status?.identity?.id;
    if (typeof id === 'number' && isClusterIdentity(id))
      cepIdentity.set(`${c.metadata.namespace ?? ''}/${c.metadata.name}`, id);
  }
  // Live pods with addresses; of two pods claiming one IP (a pod being replaced), the newest wins.
  const byIp = new Map<string, PodShape>();
  for (const o of objs.pods) {
    const p = o as unknown as PodShape;
    if (p.spec?.hostNetwork === true || p.metadata.deletionTimestamp !== undefined) continue;
    if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
    for (const ip of podIps(p)) {
      const prev = byIp.get(ip);
      if (
        prev === undefined ||
        (prev.metadata.creationTimestamp ?? '') < (p.metadata.creationTimestamp ?? '')
      )
        byIp.set(ip, p);
    }
  }
  const owners = new Map<PodShape, string[]>();
  for (const [ip, p] of byIp) owners.set(p, [...(owners.get(p) ?? []), ip]);
  const idOwner = new Map<number, string>();
  const workloads: WorkloadInput[] = [];
  for (const [p, ips] of owners) {
    const ns = p.metadata.namespace ?? 'default';
    let identity = cepIdentity.get(`${ns}/${p.metadata.name}`);
    let securityLabels = identity === undefined ? undefined : cidLabels.get(identity);
    // Without Cilium's labels for the identity, pin it only if no other label set claims it.
    if (identity !== undefined && securityLabels === undefined) {
      const key = JSON.stringify([ns, p.spec?.serviceAccountName ?? 'default', p.metadata.labels ?? {}]);
      const owner = idOwner.get(identity);
      if (owner !== undefined && owner !== key) {
        identity = undefined;
      } else idOwner.set(identity, key);
    }
    if (identity === undefined) securityLabels = undefined;
    const namedPorts: Record<string, number> = {};
    for (const c of p.spec?.containers ?? []) {
      for (const port of c.ports ?? []) {
        if (port.name !== undefined && typeof port.containerPort === 'number')
          namedPorts[port.name] = port.containerPort;
      }
    }
    workloads.push({
      name: p.metadata.name,
      namespace: ns,
      labels: p.metadata.labels ?? {},
      serviceAccount: p.spec?.serviceAccountName,
      node: p.spec?.nodeName,
      ips,
      identity,
      identitySource: 'cilium',
      securityLabels,
      namedPorts,
    });
  }
  const nodes = new Map<string, string[]>();
  for (const p of objs.pods) {
    const s = p as unknown as PodShape;
    if (s.spec?.nodeName !== undefined && s.status?.hostIP !== undefined) {
      const list = nodes.get(s.spec.nodeName) ?? [];
      if (!list.includes(s.status.hostIP)) list.push(s.status.hostIP);
      nodes.set(s.spec.nodeName, list);
    }
  }
  return buildInventory(
    {
      clusterName: opts.clusterName,
      clusterId: opts.clusterId,
      namespaces: nsLabels,
      nodes: [...nodes.entries()].map(([name, ips]) => ({ name, ips })),
      workloads,
      localNode: opts.localNode,
    },
    opts.revision ?? 0,
  );
}

function podIps(p: PodShape): string[] {
  const list = (p.status?.podIPs ?? []).map((x) => x.ip).filter((x) => typeof x === 'string' && x !== '');
  if (list.length === 0 && p.status?.podIP !== undefined && p.status.podIP !== '') list.push(p.status.podIP);
  return list;
}
