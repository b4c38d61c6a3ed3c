// The one interface every SVID source implements (SPIRE Delegated Identity API, SPIFFE Workload API,
// files, none), shaped like grpc-js certificate-provider.ts: listeners receive full snapshots; `undefined`
// means not yet known, `null` means the source withdrew the credentials (stop using them). A source that
// merely lost its connection stays at its last snapshot and reports Unavailable, so still-valid SVIDs keep
// being served while it reconnects.
import type { Logger } from '../log.ts';
import type { BundleSet } from './bundle.ts';
import type { X509Svid } from './x509-svid.ts';

export type SourceState = 'Initializing' | 'Available' | 'Unavailable';

export interface SvidSnapshot {
  /** Every SVID the source holds, in the source's order (Workload API: the first is the default). */
  readonly svids: readonly X509Svid[];
  /** Trust domain → bundle: the own trust domain and every federated one. */
  readonly bundles: BundleSet;
  /** Federated trust domains as `spiffe://<td>` (Delegated Identity API), if the source says. */
  readonly federatesWith: readonly string[];
}

export type SnapshotListener = (snapshot: SvidSnapshot | null) => void;
export type StateListener = (state: SourceState, reason: string | undefined) => void;

export interface SvidSource {
  readonly kind: 'delegated' | 'workload' | 'files' | 'none';
  state(): SourceState;
  current(): SvidSnapshot | null | undefined;
  /** Called with every new snapshot; also at once with the current one when it is known. */
  subscribe(listener: SnapshotListener): () => void;
  onStateChange(listener: StateListener): () => void;
  start(): void;
  /** Asks for fresh data now (reconnect the streams, reread the files). */
  refresh(): void;
  close(): Promise<void>;
}

/** Shared plumbing: the listener lists, the state machine, the last snapshot. */
export abstract class SourceBase implements SvidSource {
  abstract readonly kind: SvidSource['kind'];
  protected readonly log: Logger;
  private currentState: SourceState = 'Initializing';
  private snapshot: SvidSnapshot | null | undefined = undefined;
  private readonly snapshotListeners = new Set<SnapshotListener>();
  private readonly stateListeners = new Set<StateListener>();

  constructor(log: Logger) {
    this.log = log;
  }

  state(): SourceState {
    return this.currentState;
  }

  current(): SvidSnapshot | null | undefined {
    return this.snapshot;
  }

  subscribe(listener: SnapshotListener): () => void {
    this.snapshotListeners.add(listener);
    if (this.snapshot !== undefined) listener(this.snapshot);
    return () => this.snapshotListeners.delete(listener);
  }

  onStateChange(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  abstract start(): void;
  abstract refresh(): void;
  abstract close(): Promise<void>;

  /** The only way the state changes; logs "A -> B" and ignores transitions from unexpected states. */
  protected transitionTo(from: readonly SourceState[], to: SourceState, reason?: string): boolean {
    const prev = this.currentState;
    if (!from.includes(prev) || prev === to) return false;
    this.currentState = to;
    this.log.info({ from: prev, to, reason }, `${prev} -> ${to}`);
    for (const l of this.stateListeners) l(to, reason);
    return true;
  }

  protected publish(snapshot: SvidSnapshot | null): void {
    this.snapshot = snapshot;
    for (const l of this.snapshotListeners) {
      try {
        l(snapshot);
      } catch (err) {
        this.log.error({ err }, 'snapshot listener threw');
      }
    }
  }
}
