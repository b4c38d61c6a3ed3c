// One certificate, parsed once into the facts SVID rules need. node:crypto parses the DER and checks
// signatures; @peculiar/asn1-x509 (the RFC 5280 schema under @peculiar/x509) reads the extensions
// node:crypto does not expose (keyUsage bits, the cA flag's pathLenConstraint, the URI SANs as a list).
// The schema alone, not @peculiar/x509's certificate class: that class also decodes every name, key and
// extension into objects ward never reads, which tripled the cost of a parse (0.35 vs 1.07 ms per SVID,
// bench/README.md "Scale") and loads tsyringe and reflect-metadata into every thread. The only DER
// handled by hand is the splitting of concatenated certificates, as the Workload API sends them.
import { X509Certificate as NodeCertificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate as CertificateSchema,
  ExtendedKeyUsage,
  KeyUsageFlags,
  KeyUsage as KeyUsageSchema,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import { LRUCache } from 'lru-cache';
import { SvidError, SvidErrorCode } from './errors.ts';

export const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

const OID_KEY_USAGE = '2.5.29.15';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SAN = '2.5.29.17';

export const KeyUsage = {
  digitalSignature: KeyUsageFlags.digitalSignature,
  keyEncipherment: KeyUsageFlags.keyEncipherment,
  keyAgreement: KeyUsageFlags.keyAgreement,
  keyCertSign: KeyUsageFlags.keyCertSign,
  cRLSign: KeyUsageFlags.cRLSign,
} as const;

export interface Certificate {
  readonly der: Buffer;
  readonly node: NodeCertificate;
  readonly uriSans: readonly string[];
  readonly isCa: boolean;
  /** basicConstraints pathLenConstraint, when set. */
  readonly pathLength: number | undefined;
  /** keyUsage bits (KeyUsage.*), or undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  /** extendedKeyUsage OIDs, or undefined when the extension is absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Upper-case hex, as node:crypto prints it. */
  readonly serial: string;
}

function malformed(what: string, cause?: unknown): SvidError {
  const reason = cause instanceof Error ? `: ${cause.message}` : '';
  return new SvidError(SvidErrorCode.MALFORMED_CERT, `${what}${reason}`, { cause });
}

/**
 * Splits concatenated DER certificates. Each is a SEQUENCE (0x30) with a short or long (0x81-0x84) length;
 * leftover or truncated bytes make the whole input malformed.
 */
export function splitDer(input: Uint8Array): Buffer[] {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] !== 0x30) {
      throw malformed(
        `not DER: expected a SEQUENCE (0x30) at byte ${off}, found 0x${(buf[off] ?? 0).toString(16)}`,
      );
    }
    const first = buf[off + 1];
    if (first === undefined) throw malformed(`truncated DER at byte ${off}: no length`);
    let len: number;
    let header: number;
    if (first < 0x80) {
      len = first;
      header = 2;
    } else {
      const n = first & 0x7f;
      if (n < 1 || n > 4) throw malformed(`bad DER length form 0x${first.toString(16)} at byte ${off}`);
      if (off + 2 + n > buf.length) throw malformed(`truncated DER at byte ${off}: short length field`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (buf[off + 2 + i] ?? 0);
      header = 2 + n;
    }
    const end = off + header + len;
    if (end > buf.length) {
      throw malformed(
        `truncated DER: a certificate at byte ${off} needs ${header + len} bytes, ${buf.length - off} left`,
      );
    }
    out.push(buf.subarray(off, end));
    off = end;
  }
  return out;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** Every PEM block of a text, in order. */
export function pemBlocks(text: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    const body = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw malformed(`PEM block ${m[1]} is not base64`);
    out.push({ label: m[1] ?? '', der: Buffer.from(body, 'base64') });
  }
  return out;
}

export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Certificates from PEM text (CERTIFICATE blocks) or from concatenated DER bytes. */
export function certificateDers(input: Uint8Array | string): Buffer[] {
  const text =
    typeof input === 'string'
      ? input
      : looksLikePem(input)
        ? Buffer.from(input).toString('latin1')
        : undefined;
  if (text === undefined) return splitDer(input as Uint8Array);
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

function looksLikePem(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4096))
    .toString('latin1')
    .includes('-----BEGIN ');
}

// A parse costs about 0.4 ms per certificate, six times a signature check (0.07 ms, EC P-256), and peers
// present the same certificates on every connection until they rotate. Parsed certificates are immutable,
// so they are cached by their DER bytes. The cache is for what peers present and for bundle
// CAs; ward's own SVIDs do not go through it (parseOwnSvid parses uncached, and each source's OwnSvidMemo
// holds the SVIDs it was last sent, however many), so holding more own SVIDs than this bound costs no
// misses here. The bound: a node whose peers present more than PARSE_CACHE_ENTRIES distinct certificates
// in turn misses on each (one parse, about 0.4 ms, per connection) and should raise it.
export const PARSE_CACHE_ENTRIES = 4096;
const MAX_CACHED_DER = 16 * 1024;
const parsed = new LRUCache<string, Certificate>({ max: PARSE_CACHE_ENTRIES });
let parses = 0;

/** How many certificates were parsed from DER (not served from the cache) since the process started. */
export function certificateParses(): number {
  return parses;
}

/** Parses one DER certificate (cached by its bytes); throws SVID_MALFORMED_CERT on any defect. */
export function parseCertificate(der: Uint8Array): Certificate {
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  if (bytes.length > MAX_CACHED_DER) return parseUncached(Buffer.from(bytes));
  const key = bytes.toString('latin1');
  let cert = parsed.get(key);
  if (cert === undefined) {
    // Copy: the caller's buffer may be a slice of a larger message that is reused.
    cert = parseUncached(Buffer.from(bytes));
    parsed.set(key, cert);
  }
  return cert;
}

/**
 * Parses without the cache (own SVIDs, and benchmarks measuring the cold cost). `bytes` is kept as the
 * certificate's `der`: pass a buffer of its own, not a slice of a message.
 */
export function parseUncached(bytes: Buffer): Certificate {
  parses++;
  let node: NodeCertificate;
  let schema: CertificateSchema;
  try {
    node = new NodeCertificate(bytes);
    schema = AsnConvert.parse(bytes, CertificateSchema);
  } catch (err) {
    throw malformed('cannot parse the certificate', err);
  }
  const uriSans: string[] = [];
  let isCa = false;
  let pathLength: number | undefined;
  let keyUsage: number | undefined;
  let extKeyUsage: string[] | undefined;
  try {
    for (const ext of schema.tbsCertificate.extensions ?? []) {
      const value = ext.extnValue.buffer;
      if (ext.extnID === OID_SAN) {
        for (const name of AsnConvert.parse(value, SubjectAlternativeName)) {
          if (name.uniformResourceIdentifier !== undefined) uriSans.push(name.uniformResourceIdentifier);
        }
      } else if (ext.extnID === OID_BASIC_CONSTRAINTS) {
        const bc = AsnConvert.parse(value, BasicConstraints);
        isCa = bc.cA;
        pathLength = bc.pathLenConstraint;
      } else if (ext.extnID === OID_KEY_USAGE) {
        keyUsage = (keyUsage ?? 0) | AsnConvert.parse(value, KeyUsageSchema).toNumber();
      } else if (ext.extnID === OID_EXT_KEY_USAGE) {
        extKeyUsage = (extKeyUsage ?? []).concat(AsnConvert.parse(value, ExtendedKeyUsage));
      }
    }
  } catch (err) {
    throw malformed('cannot parse the certificate extensions', err);
  }
  const notBefore = node.validFromDate.getTime();
  const notAfter = node.validToDate.getTime();
  if (Number.isNaN(notBefore) || Number.isNaN(notAfter)) throw malformed('the validity dates cannot be read');
  return {
    der: bytes,
    node,
    uriSans,
    isCa,
    pathLength,
    keyUsage,
    extKeyUsage,
    notBefore,
    notAfter,
    serial: node.serialNumber.toUpperCase(),
  };
}

export function hasKeyUsage(cert: Certificate, bit: number): boolean {
  return cert.keyUsage !== undefined && (cert.keyUsage & bit) !== 0;
}

// A signature check is a pure function of the two certificates, so its result is kept on the pair.
const issuedBy = new WeakMap<Certificate, WeakMap<Certificate, boolean>>();

/** Whether `issuer` issued `cert`: the names chain and the signature verifies with the issuer's key. */
export function isIssuedBy(cert: Certificate, issuer: Certificate): boolean {
  let memo = issuedBy.get(cert);
  const known = memo?.get(issuer);
  if (known !== undefined) return known;
  let ok: boolean;
  try {
    // Not X509Certificate.checkIssued: OpenSSL's check also refuses issuers without keyCertSign, and
    // ward reports that case itself, by name (SVID_BAD_INTERMEDIATE).
    ok = cert.node.issuer === issuer.node.subject && cert.node.verify(issuer.node.publicKey);
  } catch {
    ok = false;
  }
  if (memo === undefined) {
    memo = new WeakMap();
    issuedBy.set(cert, memo);
  }
  memo.set(issuer, ok);
  return ok;
}
