// Config → running policy and inventory sources feeding one engine. This is what `ward run` starts:
// the engine always decides against a whole snapshot, and the inventory is always a whole inventory.
import { createFileInventorySource } from '../inventory/file-source.ts';
import { buildInventory, type Inventory } from '../inventory/inventory.ts';
import type { Logger } from '../log.ts';
import type { ClusterConfig, InventoryConfig, KubernetesConfig, PolicyConfig } from './config.ts';
import { createPolicyEngine, type PolicyEngine } from './engine.ts';
import { createFilePolicySource } from './file-source.ts';
import { Listeners } from './source.ts';

/** Whether a source is delivering: a Kubernetes watch is watching, a file was read without error. */
export interface SourceHealth {
  readonly kind: 'kubernetes' | 'files' | 'file';
  readonly up: boolean;
  /** Why not, when it is not. */
  readonly detail?: string;
}

export interface PolicyControlPlane {
  readonly engine: PolicyEngine;
  /** Health of the configured policy and inventory sources (null where a source is not configured). */
  health(): { readonly policy: SourceHealth | null; readonly inventory: SourceHealth | null };
  /** The current inventory (empty until a source delivers one). */
  inventory(): Inventory;
  /** Called with each new inventory, after the engine's cache was dropped for it. */
  onInventory(listener: (inv: Inventory) => void): () => void;
  close(): Promise<void>;
}

export interface ControlPlaneConfig {
  readonly policy: PolicyConfig;
  readonly inventory: InventoryConfig;
  readonly cluster: ClusterConfig;
  readonly kubernetes: KubernetesConfig;
  /** This node's name: its IPs are reserved:host. */
  readonly nodeName: string;
  readonly logger?: Logger;
}

/** Starts the configured sources and resolves once each has published its first snapshot. */
export async function startPolicyControlPlane(cfg: ControlPlaneConfig): Promise<PolicyControlPlane> {
  const engine = createPolicyEngine();
  const inventoryListeners = new Listeners<Inventory>();
  let inventory = buildInventory({ workloads: [], clusterName: cfg.cluster.name, clusterId: cfg.cluster.id });
  const setInventory = (inv: Inventory): void => {
    inventory = inv;
    // Derived identity numbers can move when the inventory changes: no cached verdict may outlive it.
    engine.swap(engine.current());
    inventoryListeners.emit(inv);
  };
  const closers: (() => Promise<void>)[] = [];
  let kubeHealth: (() => SourceHealth) | null = null;
  let filesHealth: (() => SourceHealth) | null = null;
  let inventoryFileHealth: (() => SourceHealth) | null = null;
  try {
    if (cfg.policy.source === 'kubernetes' || cfg.inventory.source === 'kubernetes') {
      // Loaded only here: the Kubernetes client (undici) is ~6 MiB of heap a node with file sources never uses.
      const [{ connectKube }, { createKubernetesSource }] = await Promise.all([
        import('./kube/client.ts'),
        import('./kubernetes-source.ts'),
      ]);
      const k = cfg.kubernetes;
      const conn = connectKube({
        auth: k.auth,
        kubeconfig: k.kubeconfig,
        context: k.context,
        bodyTimeout: k.watchTimeout + 60_000,
      });
      const kube = createKubernetesSource({
        conn,
        clusterName: cfg.cluster.name,
        clusterId: cfg.cluster.id,
        localNode: cfg.nodeName,
        initialBackoff: k.initialBackoff,
        maxBackoff: k.maxBackoff,
        watchTimeoutSeconds: Math.round(k.watchTimeout / 1000),
        ...(cfg.logger === undefined ? {} : { logger: cfg.logger }),
      });
      kube.onState((s) => {
        if (cfg.policy.source === 'kubernetes') engine.swap(s.policy);
        if (cfg.inventory.source === 'kubernetes') setInventory(s.inventory);
      });
      closers.push(() => kube.close());
      kubeHealth = () => {
        // A watch that lists again after a 410 is still delivering; one in backoff is not.
        const notWatching = [...kube.reflectors.entries()].filter(
          ([, r]) => r.state !== 'watching' && r.state !== 'listing',
        );
        return notWatching.length === 0 && kube.state() !== undefined
          ? { kind: 'kubernetes', up: true }
          : {
              kind: 'kubernetes',
              up: false,
              detail: notWatching.map(([name, r]) => `${name} ${r.state}`).join(', ') || 'not synced yet',
            };
      };
      await kube.start();
    }
    if (cfg.policy.source === 'files') {
      const files = createFilePolicySource({
        directory: cfg.policy.directory,
        debounce: cfg.policy.debounce,
        defaultNamespace: cfg.policy.defaultNamespace,
        clusterName: cfg.cluster.name,
        ...(cfg.logger === undefined ? {} : { logger: cfg.logger }),
      });
      files.onSnapshot((s) => engine.swap(s));
      closers.push(() => files.close());
      filesHealth = () =>
        files.current() !== undefined
          ? { kind: 'files', up: true }
          : { kind: 'files', up: false, detail: 'no snapshot yet' };
      await files.start();
    }
    if (cfg.inventory.source === 'file') {
      const inv = createFileInventorySource({
        file: cfg.inventory.file,
        localNode: cfg.nodeName,
        ...(cfg.logger === undefined ? {} : { logger: cfg.logger }),
      });
      inv.onInventory(setInventory);
      closers.push(() => inv.close());
      inventoryFileHealth = () => {
        const err = inv.lastError();
        return err === undefined
          ? { kind: 'file', up: true }
          : { kind: 'file', up: false, detail: `${err.message} (the last good inventory stays)` };
      };
      await inv.start();
    }
  } catch (err) {
    for (const c of closers) await c().catch(() => {});
    throw err;
  }
  return {
    engine,
    health: () => ({
      policy: cfg.policy.source === 'kubernetes' ? (kubeHealth?.() ?? null) : (filesHealth?.() ?? null),
      inventory:
        cfg.inventory.source === 'kubernetes' ? (kubeHealth?.() ?? null) : (inventoryFileHealth?.() ?? null),
    }),
    inventory: () => inventory,
    onInventory: (l) => inventoryListeners.add(l),
    async close() {
      for (const c of closers) await c();
    },
  };
}
