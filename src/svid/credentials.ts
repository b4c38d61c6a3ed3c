// What the data path holds: per SPIFFE ID a ready tls.SecureContext, plus the trust bundles to verify
// peers with. The main thread's identity store publishes a CredentialsSnapshot (plain, structured-
// cloneable objects of PEM strings) to every worker thread; each thread applies it to its own
// CredentialView, which builds a SecureContext only for identities whose certificate changed and then
// swaps the whole table at once. A rotation never touches open connections: they keep the context they
// were handshaken with. When a snapshot changes more than BUILD_CHUNK identities (a node's SVIDs issued
// together rotate together), the new contexts are built BUILD_CHUNK at a time, yielding to the event
// loop between chunks, so the thread keeps serving its connections meanwhile; an identity asked for
// before its chunk ran is built there and then, so no lookup finds an identity without a context.
import type { Socket } from 'node:net';
import { type ConnectionOptions, createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { type BundleSet, makeBundle, type TrustBundle } from './bundle.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import type { SourceState } from './source.ts';
import { authorizeId, type SpiffeIdMatcher, type VerifiedPeer, verifyPeerChain } from './verify.ts';

export interface IdentityCredentials {
  readonly spiffeId: string;
  /** Leaf first, then intermediates, PEM. */
  readonly certChainPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** Leaf serial (upper-case hex): changes on every rotation. */
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface BundleCredentials {
  readonly trustDomain: string;
  /** The trust domain's CA certificates, PEM. */
  readonly caPem: string;
}

/** Sent from the main thread to workers (postMessage); replaced whole on every change. */
export interface CredentialsSnapshot {
  /** Increases with every snapshot the store publishes. */
  readonly version: number;
  /** The store's state: Initializing until the source first answered. */
  readonly state: SourceState;
  readonly identities: readonly IdentityCredentials[];
  readonly bundles: readonly BundleCredentials[];
}

/** TLS 1.3 only, as Cilium's mutual auth and HBONE use. */
export function buildSecureContext(c: IdentityCredentials): SecureContext {
  try {
    return createSecureContext({
      cert: c.certChainPem,
      key: c.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
  } catch (err) {
    throw new SvidError(
      SvidErrorCode.KEY_MISMATCH,
      `cannot build TLS credentials for ${c.spiffeId}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * Contexts built per turn of the event loop (one takes about 0.3 ms: a chunk holds the thread ~5 ms). A
 * snapshot that changes no more identities than this is built at once, inside apply().
 */
export const BUILD_CHUNK = 16;

/** One identity of a table: its context is built at most once, on apply, in a chunk, or when asked for. */
class Entry {
  readonly credentials: IdentityCredentials;
  /** undefined: not built yet; null: cannot be built (the error went to the view's onError). */
  context: SecureContext | null | undefined = undefined;

  constructor(credentials: IdentityCredentials) {
    this.credentials = credentials;
  }
}

interface Table {
  readonly version: number;
  readonly state: SourceState;
  readonly entries: ReadonlyMap<string, Entry>;
  readonly bundles: BundleSet;
  readonly bundlePem: ReadonlyMap<string, string>;
}

const EMPTY: Table = {
  version: -1,
  state: 'Initializing',
  entries: new Map(),
  bundles: new Map(),
  bundlePem: new Map(),
};

function sameCredentials(a: IdentityCredentials, b: IdentityCredentials): boolean {
  return a.serial === b.serial && a.certChainPem === b.certChainPem && a.keyPem === b.keyPem;
}

/**
 * Server side of an mTLS handshake on an accepted socket, presenting `context` (chosen by the caller,
 * e.g. by the original destination's identity). The client certificate is requested but not checked by
 * OpenSSL: verify it with CredentialView.verifyTlsPeer on 'secure', before using the connection.
 */
export function acceptTls(
  raw: Socket,
  context: SecureContext,
  options: { ALPNProtocols?: string[] } = {},
): TLSSocket {
  return new TLSSocket(raw, {
    isServer: true,
    secureContext: context,
    requestCert: true,
    rejectUnauthorized: false,
    ...(options.ALPNProtocols ? { ALPNProtocols: options.ALPNProtocols } : {}),
  });
}

/**
 * tls.connect options for the client side: present `context`; no hostname check and no OpenSSL chain
 * check (SPIFFE peers are verified by ID): call CredentialView.verifyTlsPeer on 'secureConnect'.
 */
export function connectTlsOptions(context: SecureContext, extra: ConnectionOptions = {}): ConnectionOptions {
  return {
    ...extra,
    secureContext: context,
    rejectUnauthorized: false,
    checkServerIdentity: () => undefined,
  };
}

/** A certificate chain as the peer sent it, from a finished TLS handshake (leaf first). */
export function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let cert = socket.getPeerCertificate(true);
  const seen = new Set<unknown>();
  while (cert !== undefined && cert !== null && 'raw' in cert && cert.raw !== undefined && !seen.has(cert)) {
    seen.add(cert);
    out.push(cert.raw);
    const next = (cert as { issuerCertificate?: typeof cert }).issuerCertificate;
    if (next === undefined || next === cert || next.raw === undefined || next.raw.equals(cert.raw)) break;
    cert = next;
  }
  return out;
}

export interface CredentialView {
  /**
   * Applies a snapshot: new contexts for changed identities only, then one swap. Older versions are
   * ignored. Returns the identities that could not be used (they are left out), with the reason; when
   * the contexts are built in chunks (more than BUILD_CHUNK changed), later failures go to `onError`.
   */
  apply(snapshot: CredentialsSnapshot): readonly SvidError[];
  /** Resolves once every context of the current snapshot is built (at once when none is pending). */
  built(): Promise<void>;
  /** Contexts of the current snapshot not built yet. */
  pending(): number;
  version(): number;
  state(): SourceState;
  /** The context to present as `spiffeId`: undefined while not yet known, null when unavailable. */
  secureContext(spiffeId: string): SecureContext | null | undefined;
  credentials(spiffeId: string): IdentityCredentials | null | undefined;
  identities(): readonly string[];
  bundles(): BundleSet;
  /** Verifies a peer's chain (leaf first) against the bundle of its own trust domain. */
  verifyPeer(chain: readonly Uint8Array[], expected?: SpiffeIdMatcher, at?: number): VerifiedPeer;
  /** Verifies the peer of a finished handshake; throws SvidError (code SVID_*) when it must be refused. */
  verifyTlsPeer(socket: TLSSocket, expected?: SpiffeIdMatcher): VerifiedPeer;
}

class View implements CredentialView {
  private table: Table = EMPTY;
  private readonly clock: () => number;
  private readonly onError: (err: SvidError) => void;
  /** Entries of the current table whose context is not built yet, in snapshot order, from `next`. */
  private queue: Entry[] = [];
  private next = 0;
  private chunk: NodeJS.Immediate | undefined;
  private waiters: (() => void)[] = [];

  constructor(clock: () => number, onError: (err: SvidError) => void) {
    this.clock = clock;
    this.onError = onError;
  }

  apply(snapshot: CredentialsSnapshot): readonly SvidError[] {
    const old = this.table;
    if (snapshot.version <= old.version) return [];
    const errors: SvidError[] = [];
    const entries = new Map<string, Entry>();
    const unbuilt: Entry[] = [];
    for (const c of snapshot.identities) {
      const prev = old.entries.get(c.spiffeId);
      // Unchanged: keep the entry, built or still waiting for its chunk.
      const e = prev !== undefined && sameCredentials(prev.credentials, c) ? prev : new Entry(c);
      if (e.context === null) continue;
      entries.set(c.spiffeId, e);
      if (e.context === undefined) unbuilt.push(e);
    }
    if (unbuilt.length <= BUILD_CHUNK) {
      for (const e of unbuilt) {
        const err = this.build(e);
        if (err !== undefined) {
          errors.push(err);
          entries.delete(e.credentials.spiffeId);
        }
      }
    }
    const bundles = new Map<string, TrustBundle>();
    const bundlePem = new Map<string, string>();
    for (const b of snapshot.bundles) {
      const prev = old.bundles.get(b.trustDomain);
      try {
        bundles.set(
          b.trustDomain,
          prev !== undefined && old.bundlePem.get(b.trustDomain) === b.caPem
            ? prev
            : makeBundle(b.trustDomain, b.caPem),
        );
        bundlePem.set(b.trustDomain, b.caPem);
      } catch (err) {
        errors.push(err instanceof SvidError ? err : new SvidError(SvidErrorCode.BAD_BUNDLE, String(err)));
      }
    }
    // The swap: from here on lookups answer from the new snapshot (building on demand what is pending).
    this.table = { version: snapshot.version, state: snapshot.state, entries, bundles, bundlePem };
    this.queue = unbuilt.length <= BUILD_CHUNK ? [] : unbuilt;
    this.next = 0;
    this.schedule();
    return errors;
  }

  built(): Promise<void> {
    if (this.pendingFrom() === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  pending(): number {
    return this.pendingFrom();
  }

  /** Builds one entry's context; a failure is returned (apply) and the entry marked unusable. */
  private build(e: Entry): SvidError | undefined {
    try {
      e.context = buildSecureContext(e.credentials);
      return undefined;
    } catch (err) {
      e.context = null;
      return err instanceof SvidError ? err : new SvidError(SvidErrorCode.KEY_MISMATCH, String(err));
    }
  }

  /** Builds outside apply (a chunk, or a lookup): failures go to onError. */
  private buildLate(e: Entry): void {
    const err = this.build(e);
    if (err !== undefined) this.onError(err);
  }

  private pendingFrom(): number {
    let n = 0;
    for (let i = this.next; i < this.queue.length; i++) if (this.queue[i]?.context === undefined) n++;
    return n;
  }

  private schedule(): void {
    if (this.next < this.queue.length) {
      this.chunk ??= setImmediate(() => this.runChunk());
      return;
    }
    this.queue = [];
    this.next = 0;
    for (const w of this.waiters.splice(0)) w();
  }

  private runChunk(): void {
    this.chunk = undefined;
    let built = 0;
    while (built < BUILD_CHUNK && this.next < this.queue.length) {
      const e = this.queue[this.next++] as Entry;
      if (e.context !== undefined) continue; // built on demand meanwhile
      this.buildLate(e);
      built++;
    }
    this.schedule();
  }

  version(): number {
    return this.table.version;
  }

  state(): SourceState {
    return this.table.state;
  }

  private entry(spiffeId: string): Entry | null | undefined {
    const t = this.table;
    const e = t.entries.get(spiffeId);
    if (e !== undefined) {
      if (e.context === undefined) this.buildLate(e); // asked for before its chunk ran
      if (e.context !== null) return e.credentials.notAfter > this.clock() ? e : null;
    }
    return t.state === 'Initializing' ? undefined : null;
  }

  secureContext(spiffeId: string): SecureContext | null | undefined {
    const e = this.entry(spiffeId);
    return e === undefined || e === null ? e : (e.context ?? null);
  }

  credentials(spiffeId: string): IdentityCredentials | null | undefined {
    const e = this.entry(spiffeId);
    return e === undefined || e === null ? e : e.credentials;
  }

  identities(): readonly string[] {
    const out: string[] = [];
    for (const [id, e] of this.table.entries) if (e.context !== null) out.push(id);
    return out;
  }

  bundles(): BundleSet {
    return this.table.bundles;
  }

  verifyPeer(chain: readonly Uint8Array[], expected?: SpiffeIdMatcher, at?: number): VerifiedPeer {
    const peer = verifyPeerChain(chain, this.table.bundles, { at: at ?? this.clock() });
    if (expected !== undefined) authorizeId(peer, expected);
    return peer;
  }

  verifyTlsPeer(socket: TLSSocket, expected?: SpiffeIdMatcher): VerifiedPeer {
    return this.verifyPeer(peerChain(socket), expected);
  }
}

export interface CredentialViewOptions {
  readonly clock?: () => number;
  /** Contexts that failed to build after apply() returned (in a chunk, or when first asked for). */
  readonly onError?: (err: SvidError) => void;
}

export function createCredentialView(options: CredentialViewOptions = {}): CredentialView {
  return new View(options.clock ?? Date.now, options.onError ?? (() => {}));
}
