// Peer X.509-SVID verification (SPIFFE X509-SVID §4-5, Workload API §4.6). The order of the checks:
// leaf syntax (one URI SAN, a valid ID with a non-root path), leaf profile (not a CA, digitalSignature,
// no keyCertSign/cRLSign, EKU with serverAuth and clientAuth), then the trust domain's bundle, chosen by
// the leaf's ID (never a merged pool), then RFC 5280 path building through the peer's intermediates to
// one of that bundle's CAs, checking validity, CA flags, keyCertSign and pathLenConstraint on the way.

import type { BundleSet } from './bundle.ts';
import {
  type Certificate,
  certificateDers,
  hasKeyUsage,
  isIssuedBy,
  KeyUsage,
  OID_CLIENT_AUTH,
  OID_SERVER_AUTH,
  parseCertificate,
} from './certificate.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.ts';

/** The most certificates ward walks from a leaf to an anchor. */
export const MAX_CHAIN_DEPTH = 8;

export interface VerifiedPeer {
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** The verified chain: leaf, intermediates, then the trust anchor from the bundle. */
  readonly chain: readonly Certificate[];
}

export interface VerifyOptions {
  /** Verification time in ms since the epoch; now by default. */
  readonly at?: number;
}

function fail(code: SvidErrorCode, message: string): never {
  throw new SvidError(code, message);
}

/** The SPIFFE ID of a leaf: exactly one URI SAN, valid, with a non-root path. */
export function leafSpiffeId(leaf: Certificate): SpiffeId {
  if (leaf.uriSans.length === 0)
    fail(SvidErrorCode.NO_URI_SAN, 'the leaf certificate has no URI SAN, so it is not an X.509-SVID');
  if (leaf.uriSans.length > 1) {
    fail(
      SvidErrorCode.MULTIPLE_URI_SANS,
      `the leaf certificate has more than one URI SAN (${leaf.uriSans.length})`,
    );
  }
  const id = parseSpiffeId(leaf.uriSans[0] ?? '');
  if (id.path === '') {
    fail(SvidErrorCode.ROOT_PATH_ID, `the leaf's SPIFFE ID ${id.id} has no path; a workload SVID needs one`);
  }
  return id;
}

/** The leaf profile an SVID must follow (X509-SVID §4.1-4.3). */
export function checkLeafProfile(leaf: Certificate, id: string): void {
  if (leaf.isCa)
    fail(SvidErrorCode.LEAF_IS_CA, `the leaf ${id} is a CA certificate (basicConstraints cA=true)`);
  if (!hasKeyUsage(leaf, KeyUsage.digitalSignature)) {
    fail(
      SvidErrorCode.LEAF_NO_DIGITAL_SIGNATURE,
      leaf.keyUsage === undefined
        ? `the leaf ${id} has no keyUsage extension (digitalSignature is required)`
        : `the leaf ${id} lacks keyUsage digitalSignature`,
    );
  }
  if (hasKeyUsage(leaf, KeyUsage.keyCertSign))
    fail(SvidErrorCode.LEAF_KEY_CERT_SIGN, `the leaf ${id} has keyUsage keyCertSign`);
  if (hasKeyUsage(leaf, KeyUsage.cRLSign))
    fail(SvidErrorCode.LEAF_CRL_SIGN, `the leaf ${id} has keyUsage cRLSign`);
  if (leaf.extKeyUsage !== undefined) {
    const missing = [
      [OID_SERVER_AUTH, 'serverAuth'],
      [OID_CLIENT_AUTH, 'clientAuth'],
    ]
      .filter(([oid]) => !leaf.extKeyUsage?.includes(oid as string))
      .map(([, name]) => name);
    if (missing.length > 0) {
      fail(
        SvidErrorCode.LEAF_EXT_KEY_USAGE,
        `the leaf ${id} has extendedKeyUsage without ${missing.join(' and ')}`,
      );
    }
  }
}

function checkValidity(cert: Certificate, at: number, role: string): void {
  if (at > cert.notAfter) {
    fail(
      SvidErrorCode.EXPIRED,
      `the ${role} expired at ${new Date(cert.notAfter).toISOString()} (serial ${cert.serial})`,
    );
  }
  if (at < cert.notBefore) {
    fail(
      SvidErrorCode.NOT_YET_VALID,
      `the ${role} is not valid before ${new Date(cert.notBefore).toISOString()} (serial ${cert.serial})`,
    );
  }
}

function canSign(cert: Certificate): boolean {
  return cert.isCa && (cert.keyUsage === undefined || hasKeyUsage(cert, KeyUsage.keyCertSign));
}

/** Verifies a peer's chain (leaf first, DER certificates or already parsed) against per-domain bundles. */
export function verifyPeerChain(
  chain: readonly (Uint8Array | Certificate)[],
  bundles: BundleSet,
  options: VerifyOptions = {},
): VerifiedPeer {
  if (chain.length === 0) fail(SvidErrorCode.EMPTY_CHAIN, 'the peer presented no certificate');
  const certs = chain.map((c) => (c instanceof Uint8Array ? parseCertificate(c) : c));
  const leaf = certs[0] as Certificate;
  const id = leafSpiffeId(leaf);
  checkLeafProfile(leaf, id.id);

  const bundle = bundles.get(id.trustDomain);
  if (bundle === undefined) {
    fail(
      SvidErrorCode.UNKNOWN_TRUST_DOMAIN,
      `no trust bundle for trust domain ${id.trustDomain} (peer ${id.id})`,
    );
  }
  if (bundle.authorities.length === 0) {
    fail(
      SvidErrorCode.UNKNOWN_AUTHORITY,
      `the bundle of trust domain ${id.trustDomain} holds no CA, so ${id.id} is signed by an unknown authority`,
    );
  }
  const at = options.at ?? Date.now();
  checkValidity(leaf, at, `leaf ${id.id}`);

  const intermediates = certs.slice(1);
  const path: Certificate[] = [leaf];
  let current = leaf;
  let problem: SvidError | undefined;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    const anchor = bundle.authorities.find((a) => canSign(a) && isIssuedBy(current, a));
    if (anchor !== undefined) {
      checkValidity(anchor, at, `trust anchor of ${id.trustDomain}`);
      path.push(anchor);
      checkPathLengths(path);
      return { spiffeId: id.id, trustDomain: id.trustDomain, chain: path };
    }
    const next = intermediates.find((c) => !path.includes(c) && isIssuedBy(current, c));
    if (next === undefined) break;
    if (!next.isCa) {
      problem = new SvidError(
        SvidErrorCode.BAD_INTERMEDIATE,
        `intermediate (serial ${next.serial}) is not a CA`,
      );
      break;
    }
    if (!hasKeyUsage(next, KeyUsage.keyCertSign)) {
      problem = new SvidError(
        SvidErrorCode.BAD_INTERMEDIATE,
        `intermediate (serial ${next.serial}) lacks keyUsage keyCertSign`,
      );
      break;
    }
    checkValidity(next, at, `intermediate (serial ${next.serial})`);
    path.push(next);
    current = next;
  }
  if (problem !== undefined) throw problem;
  fail(
    SvidErrorCode.UNKNOWN_AUTHORITY,
    `${id.id} is signed by an unknown authority: no chain reaches a CA of trust domain ${id.trustDomain}'s bundle`,
  );
}

/** pathLenConstraint: a CA at position i (leaf = 0) allows at most pathLength intermediates below it. */
function checkPathLengths(path: readonly Certificate[]): void {
  for (let i = 1; i < path.length; i++) {
    const limit = path[i]?.pathLength;
    const below = i - 1;
    if (limit !== undefined && below > limit) {
      fail(
        SvidErrorCode.PATH_LENGTH,
        `CA (serial ${path[i]?.serial}) allows ${limit} intermediates below it, chain has ${below}`,
      );
    }
  }
}

/** Verifies a chain given as PEM text or concatenated DER. */
export function verifyPeerChainBytes(
  input: Uint8Array | string,
  bundles: BundleSet,
  options?: VerifyOptions,
): VerifiedPeer {
  return verifyPeerChain(certificateDers(input), bundles, options);
}

/** What a caller accepts after authentication, by SPIFFE ID. */
export type SpiffeIdMatcher =
  | { readonly kind: 'any' }
  | { readonly kind: 'exact'; readonly id: string }
  | { readonly kind: 'oneOf'; readonly ids: ReadonlySet<string> }
  | { readonly kind: 'trustDomain'; readonly trustDomain: string };

export function authorizeId(peer: VerifiedPeer, expected: SpiffeIdMatcher): void {
  const ok =
    expected.kind === 'any' ||
    (expected.kind === 'exact' && peer.spiffeId === expected.id) ||
    (expected.kind === 'oneOf' && expected.ids.has(peer.spiffeId)) ||
    (expected.kind === 'trustDomain' && peer.trustDomain === expected.trustDomain);
  if (!ok) {
    const want =
      expected.kind === 'exact'
        ? expected.id
        : expected.kind === 'oneOf'
          ? `one of ${[...expected.ids].join(', ')}`
          : expected.kind === 'trustDomain'
            ? `a member of ${expected.trustDomain}`
            : 'any';
    fail(SvidErrorCode.UNEXPECTED_ID, `peer is ${peer.spiffeId}, expected ${want}`);
  }
}
