// Own-SVID parsing (facts §6 C) and SPIFFE bundle JSON (§6 D).
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSpiffeBundle, parseSpiffeBundle } from '../../../src/svid/bundle.ts';
import { SvidError } from '../../../src/svid/errors.ts';
import { parseOwnSvid } from '../../../src/svid/x509-svid.ts';
import { type Issued, leafExt, OpensslPki } from './pki.ts';

const ID = 'spiffe://domain1.test/workload';
let pki: OpensslPki;
let ca: Issued;
let inter: Issued;

function der(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
}

function keyDer(pem: string): Buffer {
  return createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SvidError);
    return `${(err as SvidError).code}: ${(err as SvidError).message}`;
  }
  throw new Error('accepted');
}

beforeAll(() => {
  pki = new OpensslPki();
  ca = pki.root('ca', 'domain1.test');
  inter = pki.intermediate('inter', ca, 'domain1.test');
});
afterAll(() => pki.cleanup());

describe('own X.509-SVID parsing (facts §6 C)', () => {
  it('accepts a leaf with an RSA PKCS#8 key (DER)', () => {
    const leaf = pki.issue('rsa', ca, leafExt(ID), { keyType: 'rsa' });
    const svid = parseOwnSvid({ chain: leaf.der, key: keyDer(leaf.keyPem) });
    expect(svid.spiffeId).toBe(ID);
    expect(svid.privateKey.asymmetricKeyType).toBe('rsa');
    expect(svid.notAfter).toBeGreaterThan(Date.now());
  });

  it('accepts leaf + intermediate (concatenated DER) with an ECDSA key', () => {
    const leaf = pki.issue('ec-int', inter, leafExt(ID));
    const svid = parseOwnSvid({ chain: Buffer.concat([leaf.der, inter.der]), key: keyDer(leaf.keyPem) });
    expect(svid.chain).toHaveLength(2);
    expect(svid.privateKey.asymmetricKeyType).toBe('ec');
  });

  it('accepts an Ed25519 key, and cert and key in one PEM blob in either order', () => {
    const leaf = pki.issue('ed', ca, leafExt(ID), { keyType: 'ed25519' });
    expect(parseOwnSvid({ chain: leaf.certPem + leaf.keyPem }).privateKey.asymmetricKeyType).toBe('ed25519');
    expect(parseOwnSvid({ chain: leaf.keyPem + leaf.certPem }).spiffeId).toBe(ID);
  });

  it('rejects other key types', () => {
    const leaf = pki.issue('x', ca, leafExt(ID));
    const x448 = generateKeyPairSync('x448').privateKey.export({ type: 'pkcs8', format: 'der' });
    expect(codeOf(() => parseOwnSvid({ chain: leaf.der, key: x448 }))).toMatch(
      /^SVID_UNSUPPORTED_KEY: .*x448/,
    );
  });

  it('rejects what is not a usable SVID, each with its own code', () => {
    const leaf = pki.issue('base', ca, leafExt(ID));
    const k = keyDer(leaf.keyPem);
    const other = pki.issue('other', ca, leafExt(ID));
    const corrupt = Buffer.from(leaf.der);
    corrupt[0] = 0x04;
    const cases: [string, () => unknown, RegExp][] = [
      ['no certificate', () => parseOwnSvid({ chain: Buffer.alloc(0), key: k }), /^SVID_NO_CERTIFICATE/],
      ['no key', () => parseOwnSvid({ chain: leaf.der }), /^SVID_NO_KEY/],
      ['certificate not PEM/DER', () => parseOwnSvid({ chain: 'hello', key: k }), /^SVID_MALFORMED_CERT/],
      [
        'key not PEM/DER',
        () => parseOwnSvid({ chain: leaf.der, key: Buffer.from('garbage') }),
        /^SVID_MALFORMED_KEY/,
      ],
      ['corrupt certificate', () => parseOwnSvid({ chain: corrupt, key: k }), /^SVID_MALFORMED_CERT/],
      [
        'corrupt key',
        () => parseOwnSvid({ chain: leaf.der, key: k.subarray(0, k.length - 5) }),
        /^SVID_MALFORMED_KEY/,
      ],
      [
        'key of another certificate',
        () => parseOwnSvid({ chain: leaf.der, key: keyDer(other.keyPem) }),
        /^SVID_KEY_MISMATCH/,
      ],
    ];
    for (const [name, fn, want] of cases) expect(codeOf(fn), name).toMatch(want);
  });

  it.each([
    ['no URI SAN', leafExt(null, { subjectAltName: 'DNS:x.test' }), /^SVID_NO_URI_SAN/],
    ['cA=true', leafExt(ID, { basicConstraints: 'critical, CA:true' }), /^SVID_LEAF_IS_CA/],
    [
      'no digitalSignature',
      leafExt(ID, { keyUsage: 'critical, keyAgreement' }),
      /^SVID_LEAF_NO_DIGITAL_SIGNATURE/,
    ],
    [
      'keyCertSign',
      leafExt(ID, { keyUsage: 'critical, digitalSignature, keyCertSign' }),
      /^SVID_LEAF_KEY_CERT_SIGN/,
    ],
    ['cRLSign', leafExt(ID, { keyUsage: 'critical, digitalSignature, cRLSign' }), /^SVID_LEAF_CRL_SIGN/],
    ['root-path ID', leafExt('spiffe://domain1.test'), /^SVID_ROOT_PATH_ID/],
  ])('rejects a leaf with %s', (_name, ext, want) => {
    const leaf = pki.issue(`c-${_name.replace(/\W/g, '')}`, ca, ext);
    expect(codeOf(() => parseOwnSvid({ chain: leaf.der, key: keyDer(leaf.keyPem) }))).toMatch(want);
  });

  it('rejects an intermediate that is not a CA, or lacks keyCertSign', () => {
    const notCa = pki.intermediate('i-noca', ca, 'domain1.test', [
      'basicConstraints = critical, CA:false',
      'keyUsage = critical, keyCertSign',
    ]);
    const noSign = pki.intermediate('i-nosign', ca, 'domain1.test', [
      'basicConstraints = critical, CA:true',
      'keyUsage = critical, cRLSign',
    ]);
    const l1 = pki.issue('l-noca', notCa, leafExt(ID));
    const l2 = pki.issue('l-nosign', noSign, leafExt(ID));
    expect(codeOf(() => parseOwnSvid({ chain: [l1.der, notCa.der], key: keyDer(l1.keyPem) }))).toMatch(
      /^SVID_BAD_INTERMEDIATE: .*not a CA/,
    );
    expect(codeOf(() => parseOwnSvid({ chain: [l2.der, noSign.der], key: keyDer(l2.keyPem) }))).toMatch(
      /^SVID_BAD_INTERMEDIATE: .*keyCertSign/,
    );
  });
});

describe('SPIFFE bundle JSON (facts §6 D)', () => {
  it('round-trips one and two keys with sequence and refresh hint, keeping a sequence above 2^53 exact', () => {
    const other = pki.root('ca-b', 'domain1.test');
    const one = parseSpiffeBundle(
      formatSpiffeBundle([der(ca.certPem)], { sequence: 7n, refreshHintSeconds: 60 }),
    );
    expect(one.x509Authorities).toEqual([der(ca.certPem)]);
    expect(one.sequence).toBe(7n);
    expect(one.refreshHintSeconds).toBe(60);
    const big = 2n ** 60n + 1n;
    const two = parseSpiffeBundle(
      formatSpiffeBundle([der(ca.certPem), der(other.certPem)], { sequence: big }),
    );
    expect(two.x509Authorities).toHaveLength(2);
    expect(two.sequence).toBe(big);
    expect(two.refreshHintSeconds).toBe(300);
  });

  it('rejects a document without keys', () => {
    expect(codeOf(() => parseSpiffeBundle('{"spiffe_sequence": 1}'))).toMatch(/^SVID_BAD_BUNDLE: .*"keys"/);
    expect(codeOf(() => parseSpiffeBundle('not json'))).toMatch(
      /^SVID_BAD_BUNDLE: invalid SPIFFE bundle: not JSON/,
    );
  });

  it('rejects an x509-svid entry with two certificates in x5c (ward follows go-spiffe)', () => {
    const b64 = der(ca.certPem).toString('base64');
    const doc = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', x5c: [b64, b64] }] });
    expect(codeOf(() => parseSpiffeBundle(doc))).toMatch(/^SVID_BAD_BUNDLE: .*exactly one certificate/);
  });

  it('rejects a jwt-svid entry without kid, and ignores entries with unknown use or kty', () => {
    expect(codeOf(() => parseSpiffeBundle('{"keys":[{"use":"jwt-svid","kty":"EC"}]}'))).toMatch(
      /^SVID_BAD_BUNDLE: .*kid/,
    );
    const b64 = der(ca.certPem).toString('base64');
    const doc = JSON.stringify({
      keys: [
        { use: 'wit-svid', kty: 'EC', kid: 'w' },
        { kty: 'EC', x5c: [b64] },
        { use: 'x509-svid', kty: 'XYZ', x5c: [b64] },
        { use: 'x509-svid', kty: 'EC', x5c: [b64] },
        { use: 'jwt-svid', kty: 'EC', kid: 'k1' },
      ],
      unknown_member: true,
    });
    const parsed = parseSpiffeBundle(doc);
    expect(parsed.x509Authorities).toHaveLength(1);
    expect(parsed.jwtKeyIds).toEqual(['k1']);
  });
});
