// The identity store (main thread): follows one SVID source and keeps, per SPIFFE ID, the credentials
// built from its current SVID, once per rotation. At half of an SVID's lifetime it expects a rotation;
// if none came, it asks the source to refresh and retries with jittered backoff, serving the still-valid
// SVID meanwhile. When an SVID expires without replacement, that identity becomes Unavailable, which is
// logged and counted. Every change is published as a CredentialsSnapshot for the worker threads.
import type { Logger } from '../log.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { bundlePem } from './bundle.ts';
import {
  type CredentialsSnapshot,
  type CredentialView,
  createCredentialView,
  type IdentityCredentials,
} from './credentials.ts';
import { SvidErrorCode } from './errors.ts';
import type { SourceState, SvidSnapshot, SvidSource } from './source.ts';
import { sameSvid, svidChainPem, svidKeyPem, type X509Svid } from './x509-svid.ts';

export interface IdentityStoreStats {
  /** SVIDs accepted from the source (first ones and rotations). */
  readonly rotations: number;
  /** Identities that expired without a replacement. */
  readonly expired: number;
  /** Refresh requests made because no rotation came by half-life. */
  readonly refreshes: number;
  /** SVIDs the source sent that were already expired. */
  readonly refusedExpired: number;
}

export interface IdentityStore {
  state(): SourceState;
  /** The current snapshot (post it to workers after they start). */
  snapshot(): CredentialsSnapshot;
  /** Called with every new snapshot. */
  onChange(listener: (snapshot: CredentialsSnapshot) => void): () => void;
  /** A view on the main thread, updated with every snapshot. */
  view(): CredentialView;
  stats(): IdentityStoreStats;
  close(): Promise<void>;
}

export interface IdentityStoreOptions {
  readonly source: SvidSource;
  readonly log: Logger;
  readonly clock?: () => number;
  /** Backoff between refresh requests after half-life passed without a rotation. */
  readonly refreshBackoff?: BackoffOptions;
}

interface Held {
  /** The SVID the credentials were made from (sources hand an unchanged SVID over as the same object). */
  readonly svid: X509Svid;
  readonly credentials: IdentityCredentials;
  readonly halfLifeAt: number;
  halfTimer: NodeJS.Timeout | undefined;
  expiryTimer: NodeJS.Timeout | undefined;
  readonly backoff: Backoff;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

function later(ms: number, fn: () => void): NodeJS.Timeout {
  const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
  t.unref();
  return t;
}

class Store implements IdentityStore {
  private readonly source: SvidSource;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly refreshBackoff: BackoffOptions;
  private readonly held = new Map<string, Held>();
  private readonly listeners = new Set<(s: CredentialsSnapshot) => void>();
  private readonly mainView: CredentialView;
  private current: CredentialsSnapshot;
  private bundles: CredentialsSnapshot['bundles'] = [];
  private known = false;
  private readonly counters = { rotations: 0, expired: 0, refreshes: 0, refusedExpired: 0 };
  private readonly unsubscribe: () => void;

  constructor(options: IdentityStoreOptions) {
    this.source = options.source;
    this.log = options.log.child({ component: 'identity-store' });
    this.clock = options.clock ?? Date.now;
    this.refreshBackoff = options.refreshBackoff ?? { initialMs: 1000, maxMs: 30_000, multiplier: 2 };
    this.mainView = createCredentialView({
      clock: this.clock,
      onError: (e) => this.log.error({ code: e.code }, e.message),
    });
    this.current = { version: 0, state: 'Initializing', identities: [], bundles: [] };
    this.mainView.apply(this.current);
    this.unsubscribe = this.source.subscribe((s) => this.onSnapshot(s));
  }

  state(): SourceState {
    return this.current.state;
  }

  snapshot(): CredentialsSnapshot {
    return this.current;
  }

  onChange(listener: (snapshot: CredentialsSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  view(): CredentialView {
    return this.mainView;
  }

  stats(): IdentityStoreStats {
    return { ...this.counters };
  }

  async close(): Promise<void> {
    this.unsubscribe();
    for (const h of this.held.values()) this.clearTimers(h);
    this.held.clear();
  }

  private onSnapshot(snapshot: SvidSnapshot | null): void {
    this.known = true;
    if (snapshot === null) {
      // The source withdrew every SVID (e.g. PermissionDenied): stop using them. Bundles stay.
      if (this.held.size > 0) this.log.warn({ identities: this.held.size }, 'the source withdrew all SVIDs');
      for (const h of this.held.values()) this.clearTimers(h);
      this.held.clear();
      this.publish();
      return;
    }
    const now = this.clock();
    const seen = new Set<string>();
    for (const svid of snapshot.svids) {
      if (seen.has(svid.spiffeId)) continue; // the first SVID of an ID wins (the default one)
      seen.add(svid.spiffeId);
      const prev = this.held.get(svid.spiffeId);
      if (prev !== undefined && (prev.svid === svid || sameSvid(prev.svid, svid))) continue;
      if (svid.notAfter <= now) {
        this.counters.refusedExpired++;
        this.log.warn(
          { code: SvidErrorCode.EXPIRED, spiffeId: svid.spiffeId, serial: svid.serial },
          'the source sent an expired SVID',
        );
        continue;
      }
      if (prev !== undefined) this.clearTimers(prev);
      this.hold(
        svid,
        {
          spiffeId: svid.spiffeId,
          certChainPem: svidChainPem(svid),
          keyPem: svidKeyPem(svid),
          serial: svid.serial,
          notBefore: svid.notBefore,
          notAfter: svid.notAfter,
        },
        now,
        prev !== undefined,
      );
    }
    for (const [id, h] of [...this.held]) {
      if (!seen.has(id)) {
        this.log.info({ spiffeId: id }, 'identity removed by the source');
        this.clearTimers(h);
        this.held.delete(id);
      }
    }
    this.bundles = [...snapshot.bundles.values()].map((b) => ({
      trustDomain: b.trustDomain,
      caPem: bundlePem(b),
    }));
    this.publish();
  }

  private hold(svid: X509Svid, c: IdentityCredentials, now: number, rotated: boolean): void {
    const halfLifeAt = c.notBefore + (c.notAfter - c.notBefore) / 2;
    const h: Held = {
      svid,
      credentials: c,
      halfLifeAt,
      halfTimer: undefined,
      expiryTimer: undefined,
      backoff: new Backoff(this.refreshBackoff),
    };
    this.held.set(c.spiffeId, h);
    this.counters.rotations++;
    this.log.info(
      { spiffeId: c.spiffeId, serial: c.serial, notAfter: new Date(c.notAfter).toISOString() },
      rotated ? 'SVID rotated' : 'SVID loaded',
    );
    h.halfTimer = later(halfLifeAt - now, () => this.halfLifePassed(c.spiffeId, c.serial));
    h.expiryTimer = later(c.notAfter - now, () => this.expire(c.spiffeId, c.serial));
  }

  private halfLifePassed(id: string, serial: string): void {
    const h = this.held.get(id);
    if (h === undefined || h.credentials.serial !== serial) return;
    this.counters.refreshes++;
    const delay = h.backoff.next();
    this.log.warn(
      { spiffeId: id, serial, notAfter: new Date(h.credentials.notAfter).toISOString(), retryMs: delay },
      'no rotation by half-life; asking the source to refresh, still serving the current SVID',
    );
    this.source.refresh();
    h.halfTimer = later(delay, () => this.halfLifePassed(id, serial));
  }

  private expire(id: string, serial: string): void {
    const h = this.held.get(id);
    if (h === undefined || h.credentials.serial !== serial) return;
    this.clearTimers(h);
    this.held.delete(id);
    this.counters.expired++;
    this.log.error(
      { code: SvidErrorCode.IDENTITY_UNAVAILABLE, spiffeId: id, serial, expiredTotal: this.counters.expired },
      'SVID expired without a replacement; identity Unavailable',
    );
    this.publish();
  }

  private clearTimers(h: Held): void {
    if (h.halfTimer !== undefined) clearTimeout(h.halfTimer);
    if (h.expiryTimer !== undefined) clearTimeout(h.expiryTimer);
    h.halfTimer = undefined;
    h.expiryTimer = undefined;
  }

  private publish(): void {
    const prevState = this.current.state;
    const state: SourceState = !this.known
      ? 'Initializing'
      : this.held.size > 0
        ? 'Available'
        : 'Unavailable';
    if (state !== prevState) this.log.info({ from: prevState, to: state }, `${prevState} -> ${state}`);
    this.current = {
      version: this.current.version + 1,
      state,
      identities: [...this.held.values()].map((h) => h.credentials),
      bundles: this.bundles,
    };
    for (const e of this.mainView.apply(this.current)) this.log.error({ code: e.code }, e.message);
    for (const l of this.listeners) {
      try {
        l(this.current);
      } catch (err) {
        this.log.error({ err }, 'credentials listener threw');
      }
    }
  }
}

export function createIdentityStore(options: IdentityStoreOptions): IdentityStore {
  return new Store(options);
}
