// Trust bundles: the CA certificates of one trust domain, and the set of them keyed by trust domain. A
// set is never merged into one pool: a peer's chain is checked against its own trust domain's CAs only.
// Also the SPIFFE bundle format (an RFC 7517 JWK Set), used to exchange bundles for federation.
import { type Certificate, certificateDers, derToPem, parseCertificate } from './certificate.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import { parseTrustDomain } from './spiffe-id.ts';

export interface TrustBundle {
  readonly trustDomain: string;
  readonly authorities: readonly Certificate[];
}

/** Trust domain name → its bundle. */
export type BundleSet = ReadonlyMap<string, TrustBundle>;

export function makeBundle(
  trustDomain: string,
  certs: Uint8Array | string | readonly Uint8Array[],
): TrustBundle {
  const td = parseTrustDomain(trustDomain);
  const ders =
    typeof certs === 'string' || certs instanceof Uint8Array
      ? certificateDers(certs)
      : certs.flatMap((c) => certificateDers(c));
  return { trustDomain: td, authorities: ders.map((d) => parseCertificate(d)) };
}

/** A bundle set from trust-domain keys in either form (`td` or `spiffe://td`) to concatenated DER. */
export function bundleSetFromMap(map: Readonly<Record<string, Uint8Array>>): Map<string, TrustBundle> {
  const out = new Map<string, TrustBundle>();
  for (const [key, value] of Object.entries(map)) {
    const b = makeBundle(key, value);
    out.set(b.trustDomain, b);
  }
  return out;
}

export function bundlePem(bundle: TrustBundle): string {
  return bundle.authorities.map((a) => derToPem(a.der)).join('');
}

export function sameBundle(a: TrustBundle | undefined, b: TrustBundle | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.trustDomain === b.trustDomain &&
    a.authorities.length === b.authorities.length &&
    a.authorities.every((c, i) => b.authorities[i]?.der.equals(c.der) === true)
  );
}

// ---- SPIFFE bundle (JWK Set) ----------------------------------------------------------------------------

export interface SpiffeBundleDocument {
  /** DER of every x509-svid authority, in document order. */
  readonly x509Authorities: readonly Buffer[];
  /** Key IDs of the jwt-svid authorities (ward does not use JWT-SVIDs; they are validated only). */
  readonly jwtKeyIds: readonly string[];
  /** spiffe_sequence, kept exact (it may exceed 2^53). */
  readonly sequence: bigint | undefined;
  /** spiffe_refresh_hint in seconds. */
  readonly refreshHintSeconds: number | undefined;
}

function badBundle(why: string): SvidError {
  return new SvidError(SvidErrorCode.BAD_BUNDLE, `invalid SPIFFE bundle: ${why}`);
}

type Reviver = (this: unknown, key: string, value: unknown, context?: { source?: string }) => unknown;

/**
 * Parses a SPIFFE bundle. Rules: `keys` is required (may be empty); a JWK with a missing or unknown `use`
 * or `kty` is ignored; an x509-svid JWK must carry exactly one certificate in `x5c` (ward follows
 * go-spiffe and rejects the whole bundle otherwise, rather than silently using the first); a jwt-svid
 * JWK must carry a non-empty `kid`.
 */
export function parseSpiffeBundle(text: string): SpiffeBundleDocument {
  let sequenceSource: string | undefined;
  const reviver: Reviver = function (this: unknown, key, value, context) {
    if (key === 'spiffe_sequence' && context?.source !== undefined) sequenceSource = context.source;
    return value;
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text, reviver as Parameters<typeof JSON.parse>[1]);
  } catch (err) {
    throw badBundle(`not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badBundle('not a JSON object');
  const obj = doc as Record<string, unknown>;
  if (!Array.isArray(obj.keys)) throw badBundle('the required "keys" array is missing');
  let sequence: bigint | undefined;
  if (obj.spiffe_sequence !== undefined) {
    if (
      typeof obj.spiffe_sequence !== 'number' ||
      !/^\d+$/.test(sequenceSource ?? String(obj.spiffe_sequence))
    ) {
      throw badBundle('"spiffe_sequence" must be a non-negative integer');
    }
    sequence = BigInt(sequenceSource ?? String(obj.spiffe_sequence));
  }
  let refreshHintSeconds: number | undefined;
  if (obj.spiffe_refresh_hint !== undefined) {
    if (!Number.isSafeInteger(obj.spiffe_refresh_hint) || (obj.spiffe_refresh_hint as number) < 0) {
      throw badBundle('"spiffe_refresh_hint" must be a non-negative integer of seconds');
    }
    refreshHintSeconds = obj.spiffe_refresh_hint as number;
  }
  const x509Authorities: Buffer[] = [];
  const jwtKeyIds: string[] = [];
  obj.keys.forEach((k: unknown, i: number) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k))
      throw badBundle(`keys[${i}] is not an object`);
    const jwk = k as Record<string, unknown>;
    if (typeof jwk.kty !== 'string' || !['EC', 'RSA', 'OKP'].includes(jwk.kty)) return;
    if (jwk.use === 'x509-svid') {
      if (!Array.isArray(jwk.x5c) || jwk.x5c.length === 0) return;
      if (jwk.x5c.length !== 1)
        throw badBundle(`keys[${i}] (x509-svid) must hold exactly one certificate in x5c`);
      const b64 = jwk.x5c[0];
      if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
        throw badBundle(`keys[${i}].x5c[0] is not standard base64`);
      }
      const der = Buffer.from(b64, 'base64');
      try {
        parseCertificate(der);
      } catch (err) {
        throw badBundle(`keys[${i}].x5c[0] is not a certificate (${(err as Error).message})`);
      }
      x509Authorities.push(der);
    } else if (jwk.use === 'jwt-svid') {
      if (typeof jwk.kid !== 'string' || jwk.kid.length === 0)
        throw badBundle(`keys[${i}] (jwt-svid) has no "kid"`);
      jwtKeyIds.push(jwk.kid);
    }
  });
  return { x509Authorities, jwtKeyIds, sequence, refreshHintSeconds };
}

/** Writes the x509-svid authorities of a bundle as a SPIFFE bundle document. */
export function formatSpiffeBundle(
  authorities: readonly Uint8Array[],
  options: { sequence?: bigint; refreshHintSeconds?: number } = {},
): string {
  const keys = authorities.map((der) => {
    const cert = parseCertificate(der);
    const jwk = cert.node.publicKey.export({ format: 'jwk' });
    return { use: 'x509-svid', ...jwk, x5c: [Buffer.from(der).toString('base64')] };
  });
  const head: string[] = [];
  if (options.sequence !== undefined) head.push(`"spiffe_sequence": ${options.sequence.toString()}`);
  head.push(`"spiffe_refresh_hint": ${options.refreshHintSeconds ?? 300}`);
  return `{\n  ${head.join(',\n  ')},\n  "keys": ${JSON.stringify(keys, null, 2).replace(/\n/g, '\n  ')}\n}\n`;
}

/** A bundle from a file's text: SPIFFE bundle JSON when it starts with `{`, otherwise PEM certificates. */
export function bundleFromText(trustDomain: string, text: string): TrustBundle {
  if (text.trimStart().startsWith('{'))
    return makeBundle(trustDomain, parseSpiffeBundle(text).x509Authorities);
  return makeBundle(trustDomain, text);
}
