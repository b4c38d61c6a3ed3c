// Errors of the identity domain. Every rejection of a certificate, a bundle, a SPIFFE ID or a message from
// an SVID source carries one of these stable codes, and a message that names the cause.
import { WardError } from '../errors.ts';

export const SvidErrorCode = {
  /** A SPIFFE ID breaks the syntax rules (scheme, trust domain, path). */
  BAD_SPIFFE_ID: 'SVID_BAD_SPIFFE_ID',
  /** A trust-domain name breaks the syntax rules. */
  BAD_TRUST_DOMAIN: 'SVID_BAD_TRUST_DOMAIN',
  /** A leaf SVID whose SPIFFE ID is the trust domain itself (no path). */
  ROOT_PATH_ID: 'SVID_ROOT_PATH_ID',
  /** The peer presented no certificate. */
  EMPTY_CHAIN: 'SVID_EMPTY_CHAIN',
  /** Bytes that are not a DER/PEM certificate, or a truncated one. */
  MALFORMED_CERT: 'SVID_MALFORMED_CERT',
  /** Bytes that are not a usable private key. */
  MALFORMED_KEY: 'SVID_MALFORMED_KEY',
  /** A key type other than RSA, ECDSA or Ed25519. */
  UNSUPPORTED_KEY: 'SVID_UNSUPPORTED_KEY',
  /** The private key does not belong to the leaf certificate. */
  KEY_MISMATCH: 'SVID_KEY_MISMATCH',
  /** No certificate was given where an SVID was expected. */
  NO_CERTIFICATE: 'SVID_NO_CERTIFICATE',
  /** No private key was given where an own SVID was expected. */
  NO_KEY: 'SVID_NO_KEY',
  /** The leaf has no URI SAN, so it is not an SVID. */
  NO_URI_SAN: 'SVID_NO_URI_SAN',
  /** The leaf has more than one URI SAN. */
  MULTIPLE_URI_SANS: 'SVID_MULTIPLE_URI_SANS',
  /** The leaf has basicConstraints cA=true. */
  LEAF_IS_CA: 'SVID_LEAF_IS_CA',
  /** The leaf lacks keyUsage digitalSignature (or lacks keyUsage altogether). */
  LEAF_NO_DIGITAL_SIGNATURE: 'SVID_LEAF_NO_DIGITAL_SIGNATURE',
  /** The leaf has keyUsage keyCertSign. */
  LEAF_KEY_CERT_SIGN: 'SVID_LEAF_KEY_CERT_SIGN',
  /** The leaf has keyUsage cRLSign. */
  LEAF_CRL_SIGN: 'SVID_LEAF_CRL_SIGN',
  /** The leaf has an extendedKeyUsage without both serverAuth and clientAuth. */
  LEAF_EXT_KEY_USAGE: 'SVID_LEAF_EXT_KEY_USAGE',
  /** An intermediate is not a CA, or lacks keyCertSign. */
  BAD_INTERMEDIATE: 'SVID_BAD_INTERMEDIATE',
  /** No trust bundle for the leaf's trust domain. */
  UNKNOWN_TRUST_DOMAIN: 'SVID_UNKNOWN_TRUST_DOMAIN',
  /** No chain from the leaf reaches a CA of its trust domain's bundle. */
  UNKNOWN_AUTHORITY: 'SVID_UNKNOWN_AUTHORITY',
  /** A certificate of the chain is past notAfter at the verification time. */
  EXPIRED: 'SVID_EXPIRED',
  /** A certificate of the chain is before notBefore at the verification time. */
  NOT_YET_VALID: 'SVID_NOT_YET_VALID',
  /** A CA's pathLenConstraint is exceeded by the chain. */
  PATH_LENGTH: 'SVID_PATH_LENGTH',
  /** A SPIFFE bundle (JWK Set) document is malformed. */
  BAD_BUNDLE: 'SVID_BAD_BUNDLE',
  /** The peer's SPIFFE ID is valid but not the one expected. */
  UNEXPECTED_ID: 'SVID_UNEXPECTED_ID',
  /** An SVID source sent a message ward cannot use (e.g. zero SVIDs on the Workload API). */
  BAD_RESPONSE: 'SVID_BAD_RESPONSE',
  /** An SVID source refused the caller (PermissionDenied, InvalidArgument). */
  SOURCE_REFUSED: 'SVID_SOURCE_REFUSED',
  /** An SVID source could not be reached or its stream ended. */
  SOURCE_UNAVAILABLE: 'SVID_SOURCE_UNAVAILABLE',
  /** No usable SVID for an identity (never issued, or expired). */
  IDENTITY_UNAVAILABLE: 'SVID_IDENTITY_UNAVAILABLE',
  /** The development CA's files are missing or unusable. */
  CA_FILES: 'SVID_CA_FILES',
} as const;

export type SvidErrorCode = (typeof SvidErrorCode)[keyof typeof SvidErrorCode];

export class SvidError extends WardError {
  declare readonly code: SvidErrorCode;

  constructor(code: SvidErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SvidError';
  }
}

export function isSvidError(err: unknown): err is SvidError {
  return err instanceof SvidError;
}
