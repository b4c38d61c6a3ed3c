// An own X.509-SVID: the chain (leaf first) plus its private key, as a source hands it over (Workload
// API: concatenated DER and PKCS#8; Delegated Identity API: one DER per element; files: PEM). Parsing
// checks everything a verifier would and that the key belongs to the leaf, so a bad SVID is refused at
// the edge and never reaches a TLS context. Sources parse through an OwnSvidMemo (own-svid-memo.ts), which
// calls this only for SVIDs whose bytes are new; the certificates are parsed uncached, so a rotation of
// many own SVIDs does not crowd peers' certificates out of the parse cache.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import {
  type Certificate,
  certificateDers,
  derToPem,
  hasKeyUsage,
  KeyUsage,
  parseUncached,
  pemBlocks,
} from './certificate.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import { checkLeafProfile, leafSpiffeId } from './verify.ts';

export interface X509Svid {
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** Leaf first, then intermediates. */
  readonly chain: readonly Certificate[];
  readonly privateKey: KeyObject;
  readonly hint: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The leaf's serial number (upper-case hex). */
  readonly serial: string;
}

const KEY_TYPES = new Set(['rsa', 'ec', 'ed25519']);

function loadKey(key: Uint8Array | string): KeyObject {
  let k: KeyObject;
  try {
    if (typeof key === 'string') {
      k = createPrivateKey({ key, format: 'pem' });
    } else {
      k = createPrivateKey({
        key: Buffer.from(key.buffer, key.byteOffset, key.byteLength),
        format: 'der',
        type: 'pkcs8',
      });
    }
  } catch (err) {
    throw new SvidError(
      SvidErrorCode.MALFORMED_KEY,
      `cannot parse the private key: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (k.asymmetricKeyType === undefined || !KEY_TYPES.has(k.asymmetricKeyType)) {
    throw new SvidError(
      SvidErrorCode.UNSUPPORTED_KEY,
      `unsupported private key type ${k.asymmetricKeyType ?? 'unknown'} (RSA, ECDSA or Ed25519 only)`,
    );
  }
  return k;
}

function keyMatches(key: KeyObject, leaf: Certificate): boolean {
  const a = createPublicKey(key).export({ type: 'spki', format: 'der' });
  let b: Buffer;
  try {
    b = leaf.node.publicKey.export({ type: 'spki', format: 'der' });
  } catch (err) {
    // A certificate that parses but whose SubjectPublicKeyInfo does not (OpenSSL "decode error").
    throw new SvidError(
      SvidErrorCode.MALFORMED_CERT,
      `the certificate's public key cannot be read: ${(err as Error).message}`,
      { cause: err },
    );
  }
  return a.equals(b);
}

/**
 * Builds an own SVID from its chain and key. `chain` is PEM text, concatenated DER, or DER per element;
 * `key` is PKCS#8 DER or PEM. Given PEM text, the key may sit in the same blob as the certificates.
 */
export function parseOwnSvid(input: {
  chain: Uint8Array | string | readonly Uint8Array[];
  key?: Uint8Array | string;
  hint?: string;
}): X509Svid {
  let ders: Buffer[];
  let key = input.key;
  if (typeof input.chain === 'string') {
    const blocks = pemBlocks(input.chain);
    ders = blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => b.der);
    if (key === undefined) {
      const kb = blocks.find((b) => b.label.endsWith('PRIVATE KEY'));
      if (kb !== undefined) key = derToPem(kb.der, kb.label);
    }
    if (ders.length === 0 && blocks.length === 0 && input.chain.trim().length > 0) {
      throw new SvidError(SvidErrorCode.MALFORMED_CERT, 'the certificate is neither PEM nor DER');
    }
  } else if (input.chain instanceof Uint8Array) {
    ders = certificateDers(input.chain);
  } else {
    ders = input.chain.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  if (ders.length === 0) throw new SvidError(SvidErrorCode.NO_CERTIFICATE, 'no certificate in the SVID');
  if (key === undefined || key.length === 0)
    throw new SvidError(SvidErrorCode.NO_KEY, 'no private key for the SVID');
  const chain = ders.map((d) => parseUncached(Buffer.from(d)));
  const leaf = chain[0] as Certificate;
  const id = leafSpiffeId(leaf);
  checkLeafProfile(leaf, id.id);
  for (const inter of chain.slice(1)) {
    if (!inter.isCa) {
      throw new SvidError(
        SvidErrorCode.BAD_INTERMEDIATE,
        `intermediate (serial ${inter.serial}) of ${id.id} is not a CA`,
      );
    }
    if (!hasKeyUsage(inter, KeyUsage.keyCertSign)) {
      throw new SvidError(
        SvidErrorCode.BAD_INTERMEDIATE,
        `intermediate (serial ${inter.serial}) of ${id.id} lacks keyUsage keyCertSign`,
      );
    }
  }
  const privateKey = loadKey(key);
  if (!keyMatches(privateKey, leaf)) {
    throw new SvidError(
      SvidErrorCode.KEY_MISMATCH,
      `the private key does not match the certificate of ${id.id}`,
    );
  }
  return {
    spiffeId: id.id,
    trustDomain: id.trustDomain,
    chain,
    privateKey,
    hint: input.hint ?? '',
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    serial: leaf.serial,
  };
}

/** The chain as PEM, leaf first. */
export function svidChainPem(svid: X509Svid): string {
  return svid.chain.map((c) => derToPem(c.der)).join('');
}

export function svidKeyPem(svid: X509Svid): string {
  return svid.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Same certificate chain (a rotation changes it). */
export function sameSvid(a: X509Svid, b: X509Svid): boolean {
  return a.chain.length === b.chain.length && a.chain.every((c, i) => b.chain[i]?.der.equals(c.der) === true);
}
