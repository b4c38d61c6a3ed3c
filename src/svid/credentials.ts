// What the data path holds: per SPIFFE ID a ready tls.SecureContext, plus the trust bundles to verify
// peers with. The main thread's identity store publishes a CredentialsSnapshot (plain, structured-
// cloneable objects of PEM strings) to every worker thread; each thread applies it to its own
// CredentialView, which builds a SecureContext only for identities whose certificate changed and then
// swaps the whole table at once. A rotation never touches open connections: they keep the context they
// were handshaken with.
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

interface Entry {
  readonly credentials: IdentityCredentials;
  readonly context: SecureContext;
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
   * ignored. Returns the identities that could not be used (they are left out), with the reason.
   */
  apply(snapshot: CredentialsSnapshot): readonly SvidError[];
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

  constructor(clock: () => number) {
    this.clock = clock;
  }

  apply(snapshot: CredentialsSnapshot): readonly SvidError[] {
    const old = this.table;
    if (snapshot.version <= old.version) return [];
    const errors: SvidError[] = [];
    const entries = new Map<string, Entry>();
    for (const c of snapshot.identities) {
      const prev = old.entries.get(c.spiffeId);
      if (
        prev !== undefined &&
        prev.credentials.serial === c.serial &&
        prev.credentials.certChainPem === c.certChainPem
      ) {
        entries.set(c.spiffeId, prev);
        continue;
      }
      try {
        entries.set(c.spiffeId, { credentials: c, context: buildSecureContext(c) });
      } catch (err) {
        errors.push(err as SvidError);
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
    this.table = { version: snapshot.version, state: snapshot.state, entries, bundles, bundlePem };
    return errors;
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
    if (e !== undefined) return e.credentials.notAfter > this.clock() ? e : null;
    return t.state === 'Initializing' ? undefined : null;
  }

  secureContext(spiffeId: string): SecureContext | null | undefined {
    const e = this.entry(spiffeId);
    return e === undefined || e === null ? e : e.context;
  }

  credentials(spiffeId: string): IdentityCredentials | null | undefined {
    const e = this.entry(spiffeId);
    return e === undefined || e === null ? e : e.credentials;
  }

  identities(): readonly string[] {
    return [...this.table.entries.keys()];
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

export function createCredentialView(options: { clock?: () => number } = {}): CredentialView {
  return new View(options.clock ?? Date.now);
}
