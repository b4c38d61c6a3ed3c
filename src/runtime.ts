// The main thread of a running ward: starts the probes and metrics, the control plane (identities,
// policy, inventory), the workers, installs the capture rules once every listener is bound, serves the
// admin API, and on SIGTERM/SIGINT turns unready, drains, removes the rules and exits 0.
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config/schema.ts';
import { describeError } from './errors.ts';
import { spiffeIdFor, type Workload } from './inventory/index.ts';
import { initLogger, type LogLevel } from './log.ts';
import { type AdminServer, startAdminServer } from './observe/admin.ts';
import { buildConfigDump } from './observe/config-dump.ts';
import { FlowRing } from './observe/flow.ts';
import { LoopMonitor } from './observe/loop-monitor.ts';
import { createWardMetrics } from './observe/metrics.ts';
import {
  type ControlStatus,
  heldSvids,
  type LocalWorkload,
  type NodeStatus,
  type Phase,
  readinessOf,
  type SvidStatus,
} from './observe/node-status.ts';
import { startMetricsServer, startProbeServer } from './observe/probe-server.ts';
import { type PolicyControlPlane, startPolicyControlPlane } from './policy/control-plane.ts';
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
import { raiseNofileLimit } from './proxy/rlimit.ts';
import { exitNow } from './proxy/socket-options.ts';
import { Supervisor } from './proxy/supervisor.ts';
import { checkTproxySysctls } from './proxy/sysctl-check.ts';
// The store is built here, next to its source, so the source's own state (the SPIRE stream) is visible
// to readiness, status and metrics; createIdentityService() would hide it.
import { createIdentityService, type IdentityService } from './svid/index.ts';

const FLOW_RING_SIZE = 10_000;

function wardVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

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

/** The identity service plus when and why its source last changed state (for status and metrics). */
interface Identities {
  readonly service: IdentityService;
  since: number;
  reason: string | undefined;
}

function startIdentities(config: Readonly<Config>, root: Logger): Identities {
  const service = createIdentityService(config.svid, root);
  const ids: Identities = { service, since: Date.now(), reason: undefined };
  service.source.onStateChange((_state, reason) => {
    ids.since = Date.now();
    ids.reason = reason;
  });
  return ids;
}

export async function startWard(config: Readonly<Config>): Promise<RunningWard> {
  const root = initLogger(config.log.level, { node: config.node.name });
  const log = root.child({ component: 'main' });
  const workers = config.proxy.workers === 'auto' ? usableCpus() : config.proxy.workers;
  const spec = captureSpecOf(config);
  const flows = new FlowRing(FLOW_RING_SIZE);
  const flowLog = config.log.flows ? root.child({ component: 'flow' }) : null;
  const supervisor = new Supervisor(config, workers, root.child({ component: 'supervisor' }), (batch) => {
    for (const f of batch) {
      flows.push(f);
      flowLog?.info(f, 'flow');
    }
  });
  const version = wardVersion();
  const startedAt = new Date();
  const o = config.observe;
  const l = config.listeners;

  raiseNofileLimit(config.proxy.maxConnections, log);
  if (config.capture.install) checkTproxySysctls(log);
  const lock = await acquireInstanceLock(config.capture.chainPrefix);
  log.info({ workers, podCidrs: config.capture.podCidrs }, 'starting');
  let phase: Phase = 'starting';
  let rulesInstalled = false;
  let backend: IptablesBackend | null = null;
  let identities: Identities | null = null;
  let control: PolicyControlPlane | null = null;
  let controlChangedAt = Date.now();
  let admin: AdminServer | null = null;
  const loop = new LoopMonitor({ maxLagMs: o.livenessMaxLag, windowMs: o.livenessWindow });
  loop.start();

  const localWorkloads = (): readonly Workload[] =>
    control
      ?.inventory()
      .workloads()
      .filter((w) => w.node === config.node.name) ?? [];

  const svidStatus = (now: number): SvidStatus | null => {
    if (identities === null) return null;
    const snap = identities.service.snapshot();
    return {
      kind: identities.service.source.kind,
      sourceState: identities.service.source.state(),
      sourceSince: new Date(identities.since).toISOString(),
      sourceReason: identities.reason,
      storeState: snap.state,
      identities: heldSvids(snap.identities, now),
      stats: identities.service.stats(),
    };
  };

  const controlStatus = (): ControlStatus | null => {
    if (config.policy.source === 'none' && config.inventory.source === 'none') return null;
    const snap = control?.engine.current();
    const health = control?.health() ?? { policy: null, inventory: null };
    const sourceProblems = (
      [
        ['policy', health.policy],
        ['inventory', health.inventory],
      ] as const
    ).flatMap(([what, h]) =>
      h !== null && !h.up ? [`${what} source: ${h.kind} is down (${h.detail ?? 'unknown'})`] : [],
    );
    return {
      policyUp: control !== null && (health.policy?.up ?? true),
      inventoryUp: control !== null && (health.inventory?.up ?? true),
      sourceProblems,
      policySource: config.policy.source,
      inventorySource: config.inventory.source,
      loaded: control !== null,
      revision: snap?.revision ?? 0,
      policies: config.policy.source === 'none' ? 0 : (snap?.policies.length ?? 0),
      rejected: snap?.issues.filter((i) => i.severity === 'error').length ?? 0,
      warnings: snap?.issues.filter((i) => i.severity === 'warning').length ?? 0,
      workloads: control?.inventory().workloads().length ?? 0,
      lastChange: new Date(controlChangedAt).toISOString(),
    };
  };

  const status = (): NodeStatus => {
    const now = Date.now();
    const counters = supervisor.counters();
    const tunnels = supervisor.tunnels();
    const svid = svidStatus(now);
    const held = new Set(svid?.identities.map((i) => i.spiffeId) ?? []);
    const local: LocalWorkload[] = localWorkloads().map((w) => {
      const spiffeId = spiffeIdFor(w, config.svid.idScheme, config.svid.trustDomain);
      return {
        name: w.name,
        namespace: w.namespace,
        spiffeId,
        svid: svid === null ? 'not_needed' : held.has(spiffeId) ? 'valid' : 'missing',
      };
    });
    return {
      node: config.node.name,
      version,
      phase,
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      rules: {
        managed: config.capture.install,
        installed: rulesInstalled,
        backend,
        chain: `${spec.chainPrefix}_PREROUTING`,
      },
      listeners: {
        bound: supervisor.listening(),
        outbound: `${l.address}:${l.outboundPort}`,
        inboundPlaintext: `${l.address}:${l.inboundPlaintextPort}`,
        inboundTunnel: `${l.address}:${l.inboundTunnelPort}`,
      },
      endpoints: {
        admin: config.admin.enabled ? `${config.admin.address}:${config.admin.port}` : null,
        metrics: o.metricsEnabled ? `${o.metricsAddress}:${o.metricsPort}` : null,
        readiness: o.readinessEnabled ? `${o.readinessAddress}:${o.readinessPort}` : null,
      },
      workers: supervisor.workers(),
      workerRestarts: supervisor.restarts,
      connections: {
        active: counters.active,
        opened: { outbound: counters.outbound.opened, inbound: counters.inbound.opened },
        tunnels: tunnels.tunnels,
        streams: tunnels.streams,
      },
      svid,
      control: controlStatus(),
      localWorkloads: local,
      liveness: loop.status(),
    };
  };

  const metrics = createWardMetrics(
    { status, counters: () => supervisor.counters(), loopLagSeconds: () => loop.lastLagSeconds },
    { version },
  );
  // Probes and metrics first: while ward waits for its SVID source, /healthz/ready answers what is missing.
  const probes: AdminServer[] = [];
  const closeProbes = async () => {
    for (const p of probes.splice(0)) await p.close();
    loop.stop();
  };
  const closeControl = async () => {
    await identities?.service.close();
    await control?.close();
  };
  try {
    if (o.metricsEnabled) {
      probes.push(
        await startMetricsServer({
          address: o.metricsAddress,
          port: o.metricsPort,
          metrics,
          refresh: () => supervisor.refreshCounters(),
          log: root.child({ component: 'metrics' }),
        }),
      );
    }
    if (o.readinessEnabled) {
      probes.push(
        await startProbeServer({
          address: o.readinessAddress,
          port: o.readinessPort,
          readiness: () => readinessOf(status()),
          liveness: () => loop.status(),
          log: root.child({ component: 'probes' }),
        }),
      );
    }
    // Identities and policy first: workers start with both, so no connection meets an empty view.
    if (config.svid.source !== 'none') {
      const ids = startIdentities(config, root);
      identities = ids;
      const state = await ids.service.ready(config.mesh.svidStartTimeout);
      log.info(
        { source: config.svid.source, state, identities: ids.service.snapshot().identities.length },
        'SVID source',
      );
      supervisor.publishCredentials(ids.service.snapshot());
      ids.service.onChange((snap) => supervisor.publishCredentials(snap));
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
      controlChangedAt = Date.now();
      const publish = () => {
        controlChangedAt = Date.now();
        supervisor.publishControl(controlSnapshot(config, cp));
      };
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
    await closeProbes();
    await lock.release();
    throw err;
  }

  if (config.capture.install) {
    backend = config.capture.backend === 'auto' ? detectBackend() : config.capture.backend;
    try {
      // Replaces any stale rules of ward's own (a crash, SIGKILL): the chains are rewritten whole.
      installRules(spec, backend);
      rulesInstalled = true;
    } catch (err) {
      cleanAll(spec);
      await supervisor.drain(0);
      await closeControl();
      await closeProbes();
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

  const stop = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      // Unready first, so probes see it before anything else changes.
      phase = 'draining';
      log.info({ reason, drainTimeoutMs: config.shutdown.drainTimeout }, 'draining');
      const closed = await supervisor.drain(config.shutdown.drainTimeout);
      await admin?.close();
      await closeControl();
      const counters = supervisor.counters();
      if (config.capture.install) {
        const removed = cleanAll(spec);
        rulesInstalled = false;
        log.info({ removed: removed.length }, 'capture rules removed');
      }
      await closeProbes();
      await lock.release();
      const unfinishedWorkers = supervisor.unfinishedWorkers;
      if (unfinishedWorkers > 0) {
        log.warn({ unfinishedWorkers }, 'worker threads did not end after terminate; exiting without them');
      }
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
      status,
      configDump: () =>
        buildConfigDump({
          config,
          status: status(),
          workloads: control === null ? null : control.inventory().workloads(),
          policy: control === null || config.policy.source === 'none' ? null : control.engine.current(),
          bundles:
            identities?.service.snapshot().bundles.map((b) => ({
              trustDomain: b.trustDomain,
              authorities: b.caPem.split('-----BEGIN CERTIFICATE-----').length - 1,
            })) ?? [],
        }),
      logLevel: () => root.level,
      setLogLevel: (level: LogLevel) => {
        // Child loggers without a level of their own follow the root's.
        root.level = level;
        supervisor.setLogLevel(level);
      },
    });
  }
  phase = 'serving';
  log.info(
    {
      backend,
      workers,
      admin: config.admin.enabled ? `${config.admin.address}:${config.admin.port}` : null,
      metrics: o.metricsEnabled ? `${o.metricsAddress}:${o.metricsPort}` : null,
      readiness: o.readinessEnabled ? `${o.readinessAddress}:${o.readinessPort}` : null,
    },
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
      exitNow(1);
    }
    signalled = true;
    void ward.stop(signal);
  };
  let signalled = false;
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  await ward.stopped;
  if (ward.supervisor.unfinishedWorkers > 0) {
    // Everything is stopped and the rules are gone; a worker thread stuck in Node's own teardown
    // would keep the process alive, and process.exit() would wait for it too.
    exitNow(0);
  }
  return 0;
}

export type { Logger };
