// Policies and the inventory from the Kubernetes API: one reflector per resource in WATCHED_RESOURCES.
// Nothing is published until every reflector has synced; after that, changes are batched (debounced)
// and each publication is one consistent pair (policy snapshot, inventory), swapped atomically.
import type { Inventory } from '../inventory/inventory.ts';
import { inventoryFromKube } from '../inventory/kubernetes-inventory.ts';
import { componentLogger, type Logger } from '../log.ts';
import { formatIssue } from './errors.ts';
import type { KubeConnection } from './kube/client.ts';
import { type KubeObject, Reflector } from './kube/reflector.ts';
import { WATCHED_RESOURCES, type WatchedResourceName } from './kube/resources.ts';
import { parseDocuments, type RawDocument } from './manifest.ts';
import { compileSnapshot, type PolicySnapshot } from './snapshot.ts';
import { Listeners, type PolicySource } from './source.ts';

export interface KubernetesState {
  readonly policy: PolicySnapshot;
  readonly inventory: Inventory;
}

export interface KubernetesSourceOptions {
  readonly conn: KubeConnection;
  readonly clusterName: string;
  readonly clusterId: number;
  readonly localNode?: string;
  /** Batch window for changes (ms). Default 100. */
  readonly debounce?: number;
  readonly initialBackoff?: number;
  readonly maxBackoff?: number;
  readonly watchTimeoutSeconds?: number;
  readonly logger?: Logger;
}

export interface KubernetesSource extends PolicySource {
  /** The last consistent pair published. */
  state(): KubernetesState | undefined;
  onState(listener: (s: KubernetesState) => void): () => void;
  readonly reflectors: ReadonlyMap<WatchedResourceName, Reflector>;
}

export function createKubernetesSource(opts: KubernetesSourceOptions): KubernetesSource {
  const log = opts.logger ?? componentLogger('kubernetes');
  const listeners = new Listeners<PolicySnapshot>();
  const stateListeners = new Listeners<KubernetesState>();
  let state: KubernetesState | undefined;
  let revision = 0;
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  const reflectors = new Map<WatchedResourceName, Reflector>();
  const schedule = (): void => {
    if (!started || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      publish();
    }, opts.debounce ?? 100);
  };
  for (const r of WATCHED_RESOURCES) {
    reflectors.set(
      r.resource,
      new Reflector({
        conn: opts.conn,
        resource: r,
        logger: log,
        onChange: schedule,
        initialBackoff: opts.initialBackoff,
        maxBackoff: opts.maxBackoff,
        watchTimeoutSeconds: opts.watchTimeoutSeconds,
      }),
    );
  }
  const objects = (name: WatchedResourceName): KubeObject[] => [...reflectors.get(name)!.store.values()];

  function publish(): void {
    revision++;
    const docs: RawDocument[] = [];
    for (const name of [
      'networkpolicies',
      'ciliumnetworkpolicies',
      'ciliumclusterwidenetworkpolicies',
    ] as const) {
      const r = reflectors.get(name)!.resource;
      for (const o of objects(name)) {
        // Lists carry no kind/apiVersion per item: restore them before parsing.
        const value = {
          ...o,
          apiVersion: r.group === '' ? r.version : `${r.group}/${r.version}`,
          kind: r.kind,
        };
        docs.push({
          file: `kube:${name}/${o.metadata.namespace ?? ''}/${o.metadata.name}`,
          document: 0,
          prefix: '',
          value,
        });
      }
    }
    const parsed = parseDocuments(docs, { clusterName: opts.clusterName });
    for (const i of parsed.issues) {
      if (i.severity === 'error') log.error({ issue: formatIssue(i) }, 'policy rejected');
    }
    const policy = compileSnapshot(parsed.policies, {
      revision,
      clusterName: opts.clusterName,
      issues: parsed.issues,
    });
    let inventory: Inventory;
    try {
      inventory = inventoryFromKube(
        {
          pods: objects('pods'),
          namespaces: objects('namespaces'),
          endpoints: objects('ciliumendpoints'),
          identities: objects('ciliumidentities'),
        },
        { clusterName: opts.clusterName, clusterId: opts.clusterId, localNode: opts.localNode, revision },
      );
    } catch (err) {
      // An inconsistent view (mid-update): keep the last good pair rather than publish half of one.
      log.warn({ err: (err as Error).message }, 'inventory rejected; keeping the last good one');
      if (state === undefined) schedule();
      return;
    }
    state = Object.freeze({ policy, inventory });
    log.info(
      { revision, policies: policy.policies.length, workloads: inventory.workloads().length },
      'kubernetes snapshot',
    );
    stateListeners.emit(state);
    listeners.emit(policy);
  }

  return {
    reflectors,
    async start() {
      for (const r of reflectors.values()) r.start();
      await Promise.all([...reflectors.values()].map((r) => r.whenSynced()));
      started = true;
      publish();
    },
    current: () => state?.policy,
    state: () => state,
    onSnapshot: (l) => listeners.add(l),
    onState: (l) => stateListeners.add(l),
    async close() {
      started = false;
      if (timer !== undefined) clearTimeout(timer);
      await Promise.all([...reflectors.values()].map((r) => r.stop()));
    },
  };
}
