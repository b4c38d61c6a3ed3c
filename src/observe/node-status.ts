// What the main thread knows about this ward, as one plain object: the admin API's /status, `ward status`,
// the readiness verdict and the metrics all read it. Readiness is a pure function of it.
import type { IdentityCredentials, IdentityStoreStats, SourceState } from '../svid/index.ts';

export type Phase = 'starting' | 'serving' | 'draining';

export interface WorkerStatus {
  readonly index: number;
  readonly threadId: number | null;
  readonly state: string;
  readonly restarts: number;
  readonly activeConnections: number;
}

export interface HeldSvid {
  readonly spiffeId: string;
  /** Leaf serial, upper-case hex. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly expiresInSeconds: number;
}

/** What may be shown of held credentials: ID, serial, validity. Fields are picked, never spread. */
export function heldSvids(credentials: readonly IdentityCredentials[], now: number): HeldSvid[] {
  return credentials
    .filter((c) => c.notAfter > now)
    .map((c) => ({
      spiffeId: c.spiffeId,
      serial: c.serial,
      notBefore: new Date(c.notBefore).toISOString(),
      notAfter: new Date(c.notAfter).toISOString(),
      expiresInSeconds: Math.round(c.notAfter - now) / 1000,
    }));
}

export interface SvidStatus {
  /** delegated | workload | files */
  readonly kind: string;
  /** The source's connection state (the SPIRE stream, the Workload API stream, the directory). */
  readonly sourceState: SourceState;
  /** When the source entered that state, and why (the last reason it gave). */
  readonly sourceSince: string;
  readonly sourceReason?: string | undefined;
  /** The store's state: Available while it holds at least one unexpired SVID. */
  readonly storeState: SourceState;
  readonly identities: readonly HeldSvid[];
  readonly stats: IdentityStoreStats;
}

export interface ControlStatus {
  readonly policySource: string;
  readonly inventorySource: string;
  /** A first snapshot of every configured source was loaded. */
  readonly loaded: boolean;
  readonly revision: number;
  readonly policies: number;
  /** Documents rejected (issues of severity error) and warnings in the current snapshot. */
  readonly rejected: number;
  readonly warnings: number;
  readonly workloads: number;
  readonly lastChange: string;
  /** Whether each configured source is delivering (a watch watching, a file read without error). */
  readonly policyUp: boolean;
  readonly inventoryUp: boolean;
  /** Why a source is down. */
  readonly sourceProblems: readonly string[];
}

export interface LocalWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly spiffeId: string;
  /** Whether ward holds an unexpired SVID for it (always true when no SVID source is configured). */
  readonly svid: 'valid' | 'missing' | 'not_needed';
}

export interface Liveness {
  readonly live: boolean;
  /** The largest event-loop lag seen within the window, ms. */
  readonly maxLagMs: number;
  readonly thresholdMs: number;
  readonly lastStallAt?: string | undefined;
}

export interface NodeStatus {
  readonly node: string;
  readonly version: string;
  readonly phase: Phase;
  readonly pid: number;
  readonly startedAt: string;
  readonly rules: {
    readonly managed: boolean;
    readonly installed: boolean;
    readonly backend: string | null;
    readonly chain: string;
  };
  readonly listeners: {
    readonly bound: boolean;
    readonly outbound: string;
    readonly inboundPlaintext: string;
    readonly inboundTunnel: string;
  };
  readonly endpoints: {
    readonly admin: string | null;
    readonly metrics: string | null;
    readonly readiness: string | null;
  };
  readonly workers: readonly WorkerStatus[];
  readonly workerRestarts: number;
  readonly connections: {
    readonly active: number;
    readonly opened: { readonly outbound: number; readonly inbound: number };
    readonly tunnels: number;
    readonly streams: number;
  };
  /** null when no SVID source is configured. */
  readonly svid: SvidStatus | null;
  /** null when neither a policy nor an inventory source is configured. */
  readonly control: ControlStatus | null;
  readonly localWorkloads: readonly LocalWorkload[];
  readonly liveness: Liveness;
}

export interface Readiness {
  readonly ready: boolean;
  /** One line per unmet condition. */
  readonly missing: readonly string[];
}

const MAX_LISTED = 10;

/**
 * Ready when: serving (not starting, not draining), at least one worker has its listeners bound, the
 * capture rules are installed (when ward manages them), a policy/inventory snapshot is loaded (when
 * sources are configured), and ward holds an unexpired SVID for every workload of this node.
 */
export function readinessOf(s: NodeStatus): Readiness {
  const missing: string[] = [];
  if (s.phase === 'starting') missing.push('starting: ward has not finished starting');
  if (s.phase === 'draining') missing.push('draining: ward is shutting down');
  if (!s.listeners.bound && s.phase !== 'draining')
    missing.push('listeners: no worker has its listeners bound');
  if (s.rules.managed && !s.rules.installed) missing.push('capture rules: not installed');
  if (s.control !== null && !s.control.loaded) missing.push('policy: no snapshot loaded yet');
  if (s.svid !== null) {
    if (s.svid.storeState === 'Initializing') {
      missing.push(`svid: the ${s.svid.kind} source has not delivered SVIDs yet (${s.svid.sourceState})`);
    }
    const without = s.localWorkloads.filter((w) => w.svid === 'missing');
    for (const w of without.slice(0, MAX_LISTED)) {
      missing.push(`svid: no valid SVID for ${w.namespace}/${w.name} (${w.spiffeId})`);
    }
    if (without.length > MAX_LISTED) missing.push(`svid: …and ${without.length - MAX_LISTED} more workloads`);
  }
  return { ready: missing.length === 0, missing };
}

/** What is wrong, for `ward status`: unmet readiness plus conditions that degrade without un-readying. */
export function problemsOf(s: NodeStatus): string[] {
  const out = [...readinessOf(s).missing];
  if (!s.liveness.live) {
    out.push(
      `liveness: the main event loop stalled for ${s.liveness.maxLagMs} ms (limit ${s.liveness.thresholdMs} ms)`,
    );
  }
  if (s.svid !== null && s.svid.sourceState !== 'Available') {
    out.push(
      `svid source: ${s.svid.kind} is ${s.svid.sourceState} since ${s.svid.sourceSince}${
        s.svid.sourceReason === undefined ? '' : ` (${s.svid.sourceReason})`
      }`,
    );
  }
  for (const p of s.control?.sourceProblems ?? []) out.push(p);
  if (s.control !== null && s.control.rejected > 0) {
    out.push(`policy: ${s.control.rejected} document(s) rejected (ward policy validate shows why)`);
  }
  const down = s.workers.filter((w) => w.state !== 'ready' && s.phase === 'serving');
  for (const w of down) out.push(`worker ${w.index}: ${w.state}`);
  return out;
}

/** Healthy for `ward status`: ready, live, and no other problem. */
export function healthyOf(s: NodeStatus): boolean {
  return problemsOf(s).length === 0;
}
