// The main thread of a running ward: starts the workers, installs the capture rules once every
// listener is bound, serves the admin API, and on SIGTERM/SIGINT drains, removes the rules and exits 0.
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { describeError } from './errors.ts';
import { initLogger } from './log.ts';
import { type AdminServer, startAdminServer } from './observe/admin.ts';
import { FlowRing } from './observe/flow.ts';
import { type PolicyControlPlane, startPolicyControlPlane } from './policy/index.ts';
import {
  type CaptureSpec,
  cleanAll,
  detectBackend,
  type IptablesBackend,
  installRules,
} from './proxy/capture-rules.ts';
import { usableCpus } from './proxy/cpu-limit.ts';
import { acquireInstanceLock } from './proxy/instance-lock.ts';
import type { ControlSnapshot } from './proxy/mesh.ts';
import { Supervisor } from './proxy/supervisor.ts';
import { createIdentityService, type IdentityService } from './svid/index.ts';

const FLOW_RING_SIZE = 10_000;

export function captureSpecOf(config: Readonly<Config>): CaptureSpec {
  const c = config.capture;
  const l = config.listeners;
  return {
    podCidrs: c.podCidrs,
    tproxyMark: c.tproxyMark,
    bypassMark: c.bypassMark,
    markMask: c.markMask,
    routeTable: c.routeTable,
    rulePriority: c.rulePriority,
    chainPrefix: c.chainPrefix,
    outboundPort: l.outboundPort,
    inboundPlaintextPort: l.inboundPlaintextPort,
    inboundTunnelPort: l.inboundTunnelPort,
  };
}

export interface RunningWard {
  readonly supervisor: Supervisor;
  readonly flows: FlowRing;
  /** Drains and stops; resolves when the rules are gone. */
  stop(reason: string): Promise<void>;
  readonly stopped: Promise<void>;
}

export async function startWard(config: Readonly<Config>): Promise<RunningWard> {
  const root = initLogger(config.log.level, { node: config.node.name });
  const log = root.child({ component: 'main' });
  const workers = config.proxy.workers === 'auto' ? usableCpus() : config.proxy.workers;
  const spec = captureSpecOf(config);
  const flows = new FlowRing(FLOW_RING_SIZE);
  const flowLog = root.child({ component: 'flow' });
  const supervisor = new Supervisor(config, workers, root.child({ component: 'supervisor' }), (batch) => {
    for (const f of batch) {
      flows.push(f);
      flowLog.info(f, 'flow');
    }
  });

  const lock = await acquireInstanceLock(config.capture.chainPrefix);
  log.info({ workers, podCidrs: config.capture.podCidrs }, 'starting');
  let identities: IdentityService | null = null;
  let control: PolicyControlPlane | null = null;
  const closeControl = async () => {
    await identities?.close();
    await control?.close();
  };
  try {
    // Identities and policy first: workers start with both, so no connection meets an empty view.
    if (config.svid.source !== 'none') {
      identities = createIdentityService(config.svid, root);
      const state = await identities.ready(config.mesh.svidStartTimeout);
      log.info(
        { source: config.svid.source, state, identities: identities.snapshot().identities.length },
        'SVID source',
      );
      supervisor.publishCredentials(identities.snapshot());
      identities.onChange((snap) => supervisor.publishCredentials(snap));
    }
    if (config.policy.source !== 'none' || config.inventory.source !== 'none') {
      control = await startPolicyControlPlane({
        policy: config.policy,
        inventory: config.inventory,
        cluster: config.cluster,
        kubernetes: config.kubernetes,
        nodeName: config.node.name,
        logger: root.child({ component: 'policy' }),
      });
      const cp = control;
      const publish = () => supervisor.publishControl(controlSnapshot(config, cp));
      publish();
      cp.engine.onSwap(() => publish());
      cp.onInventory(() => publish());
      const snap = cp.engine.current();
      log.info(
        {
          policies: snap.policies.length,
          rejected: snap.issues.filter((i) => i.severity === 'error').length,
          workloads: cp.inventory().workloads().length,
        },
        'policy and inventory loaded',
      );
    }
    await supervisor.start();
  } catch (err) {
    await closeControl();
    await lock.release();
    throw err;
  }

  let backend: IptablesBackend | null = null;
  if (config.capture.install) {
    backend = config.capture.backend === 'auto' ? detectBackend() : config.capture.backend;
    try {
      installRules(spec, backend);
    } catch (err) {
      cleanAll(spec);
      await supervisor.drain(0);
      await lock.release();
      throw err;
    }
    log.info(
      { backend, chain: `${spec.chainPrefix}_PREROUTING`, table: spec.routeTable },
      'capture rules installed',
    );
  }

  let resolveStopped: () => void = () => {};
  const stopped = new Promise<void>((r) => {
    resolveStopped = r;
  });
  let stopping: Promise<void> | null = null;
  let admin: AdminServer | null = null;

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      log.info({ reason, drainTimeoutMs: config.shutdown.drainTimeout }, 'draining');
      await admin?.close();
      const closed = await supervisor.drain(config.shutdown.drainTimeout);
      await closeControl();
      const counters = supervisor.counters();
      if (config.capture.install) {
        const removed = cleanAll(spec);
        log.info({ removed: removed.length }, 'capture rules removed');
      }
      await lock.release();
      log.info({ closedAtDeadline: closed, counters }, 'stopped');
      resolveStopped();
    })();
    return stopping;
  };

  if (config.admin.enabled) {
    admin = await startAdminServer({
      address: config.admin.address,
      port: config.admin.port,
      supervisor,
      flows,
      log: root.child({ component: 'admin' }),
      quit: () => void stop('admin /quitquitquit'),
    });
  }
  log.info(
    { backend, workers, admin: config.admin.enabled ? `${config.admin.address}:${config.admin.port}` : null },
    'ward ready',
  );
  return { supervisor, flows, stop, stopped };
}

/** The plain snapshot workers rebuild their policy engine and inventory from. */
function controlSnapshot(config: Readonly<Config>, cp: PolicyControlPlane): ControlSnapshot {
  const snap = cp.engine.current();
  const inv = cp.inventory();
  return {
    policies: config.policy.source === 'none' ? null : snap.policies,
    policyRevision: snap.revision,
    clusterName: config.cluster.name,
    inventory: inv.input,
    inventoryRevision: inv.revision,
  };
}

/** `ward run`: start, stop on SIGTERM/SIGINT, and exit 0 once drained; a second signal exits at once. */
export async function runUntilSignalled(config: Readonly<Config>): Promise<number> {
  let ward: RunningWard;
  try {
    ward = await startWard(config);
  } catch (err) {
    const { message, code } = describeError(err);
    process.stderr.write(`ward: ${code !== undefined ? `${code}: ` : ''}${message}\n`);
    return 1;
  }
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`ward: ${signal} again, exiting now\n`);
      process.exit(1);
    }
    signalled = true;
    void ward.stop(signal);
  };
  let signalled = false;
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await ward.stopped;
  return 0;
}

export type { Logger };
