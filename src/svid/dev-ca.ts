// The built-in development CA: one EC P-256 root per trust domain, kept on disk (key mode 0600), that
// issues X.509-SVIDs shaped like SPIRE's (cA=false; keyUsage digitalSignature, keyEncipherment,
// keyAgreement, critical; EKU serverAuth+clientAuth; one URI SAN). Not exported by index.ts: the data
// path cannot mint certificates; only `ward ca` and tests use this module.
import 'reflect-metadata';
import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  type webcrypto,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  type Name,
  X509Certificate as PeculiarCertificate,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509CertificateGenerator,
} from '@peculiar/x509';
import { formatSpiffeBundle } from './bundle.ts';
import { type Certificate, derToPem, parseCertificate, parseUncached } from './certificate.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import { parseSpiffeId, parseTrustDomain, trustDomainId } from './spiffe-id.ts';

export const CA_CERT_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca.key.pem';
export const CA_BUNDLE_FILE = 'bundle.json';
export const DEFAULT_SVID_TTL_MS = 3_600_000;
export const DEFAULT_CA_TTL_MS = 10 * 365 * 24 * 3_600_000;
/** Certificates start this far in the past, so small clock skew between hosts does not reject them. */
const BACKDATE_MS = 30_000;

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface IssuedSvid {
  readonly spiffeId: string;
  /** DER certificates, leaf first. */
  readonly chain: readonly Buffer[];
  /** PKCS#8 DER. */
  readonly key: Buffer;
  readonly notBefore: number;
  readonly notAfter: number;
  /** When the CA issued it (notBefore is backdated by a few seconds). */
  readonly issuedAt: number;
  readonly serial: string;
}

/**
 * 16 random bytes whose first byte is 0x40-0x7f: positive (top bit clear) and never 0x00, so the DER
 * INTEGER is minimal and every serial prints as 32 hex digits. (A first byte of 0x00, 1 in 128 before,
 * made a non-minimal encoding that node:crypto prints with 30 digits.)
 */
function serialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x3f) | 0x40;
  return b.toString('hex');
}

async function cryptoKeys(pair: {
  privateKey: KeyObject;
  publicKey: KeyObject;
}): Promise<webcrypto.CryptoKeyPair> {
  return {
    privateKey: await pair.privateKey.toCryptoKey(EC_P256, false, ['sign']),
    publicKey: await pair.publicKey.toCryptoKey(EC_P256, true, ['verify']),
  };
}

export class DevCa {
  readonly trustDomain: string;
  readonly certificate: Certificate;
  private readonly key: KeyObject;
  private readonly issuerName: Name;
  private signingKey: webcrypto.CryptoKey | undefined;

  constructor(certificate: Certificate, key: KeyObject) {
    const id = certificate.uriSans[0];
    if (id === undefined || certificate.uriSans.length !== 1) {
      throw new SvidError(
        SvidErrorCode.CA_FILES,
        'the CA certificate must carry exactly one URI SAN spiffe://<td>',
      );
    }
    this.trustDomain = parseSpiffeId(id).trustDomain;
    this.certificate = certificate;
    this.key = key;
    this.issuerName = new PeculiarCertificate(certificate.der).subjectName;
  }

  /** The trust bundle of this CA: its root certificate as PEM. */
  bundlePem(): string {
    return derToPem(this.certificate.der);
  }

  private async signer(): Promise<webcrypto.CryptoKey> {
    this.signingKey ??= await this.key.toCryptoKey(EC_P256, false, ['sign']);
    return this.signingKey;
  }

  /** Issues an X.509-SVID for an ID of this trust domain, valid from now for `ttlMs`. */
  async issue(
    spiffeId: string,
    ttlMs: number = DEFAULT_SVID_TTL_MS,
    now: number = Date.now(),
  ): Promise<IssuedSvid> {
    const id = parseSpiffeId(spiffeId);
    if (id.trustDomain !== this.trustDomain) {
      throw new SvidError(
        SvidErrorCode.UNKNOWN_TRUST_DOMAIN,
        `the CA of ${this.trustDomain} cannot issue ${spiffeId} (another trust domain)`,
      );
    }
    if (id.path === '') throw new SvidError(SvidErrorCode.ROOT_PATH_ID, `${spiffeId} has no path`);
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keys = await cryptoKeys(pair);
    const notBefore = new Date(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
    const notAfter = new Date(Math.floor((now + ttlMs) / 1000) * 1000);
    const serialNumber = serialHex();
    const cert = await X509CertificateGenerator.create({
      serialNumber,
      subject: `O=ward, OU=${this.trustDomain}`,
      issuer: this.issuerName,
      notBefore,
      notAfter,
      signingAlgorithm: SIGNING,
      publicKey: keys.publicKey,
      signingKey: await this.signer(),
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(
          KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment | KeyUsageFlags.keyAgreement,
          true,
        ),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth, ExtendedKeyUsage.clientAuth], false),
        new SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], false),
        await SubjectKeyIdentifierExtension.create(keys.publicKey),
        await AuthorityKeyIdentifierExtension.create(
          await this.certificate.node.publicKey.toCryptoKey(EC_P256, true, ['verify']),
        ),
      ],
    });
    const der = Buffer.from(cert.rawData);
    // Uncached: the CA's own bookkeeping should not pre-warm the verifiers' parse cache.
    const parsed = parseUncached(der);
    return {
      spiffeId,
      chain: [der],
      key: pair.privateKey.export({ type: 'pkcs8', format: 'der' }),
      notBefore: parsed.notBefore,
      notAfter: parsed.notAfter,
      issuedAt: now,
      serial: parsed.serial,
    };
  }
}

/** Creates a self-signed EC P-256 root for a trust domain. */
export async function createRoot(
  trustDomain: string,
  ttlMs: number = DEFAULT_CA_TTL_MS,
): Promise<{ certPem: string; keyPem: string }> {
  const td = parseTrustDomain(trustDomain);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = await cryptoKeys(pair);
  const now = Date.now();
  const cert = await X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex(),
    name: `O=ward development CA, CN=${td}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + ttlMs),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new BasicConstraintsExtension(true, undefined, true),
      new KeyUsagesExtension(
        KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
        true,
      ),
      new SubjectAlternativeNameExtension([{ type: 'url', value: trustDomainId(td) }], false),
      await SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: derToPem(Buffer.from(cert.rawData)),
    keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * `ward ca init`: writes ca.pem, ca.key.pem (0600) and bundle.json (the SPIFFE bundle, for federation)
 * into `dir`. Refuses to overwrite an existing CA unless `force`.
 */
export async function initCaDir(
  dir: string,
  trustDomain: string,
  options: { ttlMs?: number; force?: boolean } = {},
): Promise<DevCa> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyPath = join(dir, CA_KEY_FILE);
  if (existsSync(keyPath) && options.force !== true) {
    throw new SvidError(SvidErrorCode.CA_FILES, `${keyPath} exists; pass --force to replace the CA`);
  }
  const { certPem, keyPem } = await createRoot(trustDomain, options.ttlMs);
  writeAtomic(keyPath, keyPem, 0o600);
  writeAtomic(join(dir, CA_CERT_FILE), certPem, 0o644);
  const ca = loadCaDir(dir);
  writeAtomic(join(dir, CA_BUNDLE_FILE), formatSpiffeBundle([ca.certificate.der]), 0o644);
  return ca;
}

/** Loads a CA written by initCaDir. */
export function loadCaDir(dir: string): DevCa {
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(join(dir, CA_CERT_FILE), 'utf8');
    keyPem = readFileSync(join(dir, CA_KEY_FILE), 'utf8');
  } catch (err) {
    throw new SvidError(
      SvidErrorCode.CA_FILES,
      `cannot read the CA in ${dir} (${(err as Error).message}); create it with 'ward ca init'`,
      { cause: err },
    );
  }
  const blocks = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/);
  if (blocks === null)
    throw new SvidError(SvidErrorCode.CA_FILES, `${join(dir, CA_CERT_FILE)} holds no certificate`);
  const der = Buffer.from(blocks[0].replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new SvidError(SvidErrorCode.CA_FILES, `${join(dir, CA_KEY_FILE)} is not a private key`, {
      cause: err,
    });
  }
  return new DevCa(parseCertificate(der), key);
}
