// Peer X.509-SVID verification, facts §6 B1-B17, with certificates made by the openssl CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BundleSet, makeBundle } from '../../../src/svid/bundle.ts';
import { parseCertificate } from '../../../src/svid/certificate.ts';
import { SvidError } from '../../../src/svid/errors.ts';
import { verifyPeerChain, verifyPeerChainBytes } from '../../../src/svid/verify.ts';
import { type Issued, leafExt, OpensslPki } from './pki.ts';

const ID = 'spiffe://domain1.test/workload';
let pki: OpensslPki;
let ca1: Issued;
let ca2: Issued;
let good: Issued;
let bundles: BundleSet;

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
  ca1 = pki.root('ca1', 'domain1.test');
  ca2 = pki.root('ca2', 'domain2.test');
  good = pki.issue('good', ca1, leafExt(ID));
  bundles = new Map([
    ['domain1.test', makeBundle('domain1.test', ca1.certPem)],
    ['domain2.test', makeBundle('domain2.test', ca2.certPem)],
  ]);
});

afterAll(() => pki.cleanup());

describe('peer X.509-SVID verification (facts §6 B)', () => {
  it('B1 rejects an empty chain', () => {
    expect(codeOf(() => verifyPeerChain([], bundles))).toMatch(
      /^SVID_EMPTY_CHAIN: the peer presented no certificate/,
    );
  });

  it('B2 rejects when there are no bundles at all', () => {
    expect(codeOf(() => verifyPeerChain([good.der], new Map()))).toMatch(
      /^SVID_UNKNOWN_TRUST_DOMAIN: no trust bundle for trust domain domain1.test/,
    );
  });

  it('B3 rejects an unknown trust domain (only domain2.test known)', () => {
    const only2 = new Map([['domain2.test', makeBundle('domain2.test', ca2.certPem)]]);
    expect(codeOf(() => verifyPeerChain([good.der], only2))).toMatch(
      /^SVID_UNKNOWN_TRUST_DOMAIN: .*domain1\.test/,
    );
  });

  it('B4 rejects against an empty bundle for the trust domain', () => {
    const empty = new Map([['domain1.test', makeBundle('domain1.test', [])]]);
    expect(codeOf(() => verifyPeerChain([good.der], empty))).toMatch(
      /^SVID_UNKNOWN_AUTHORITY: .*holds no CA/,
    );
  });

  it("B5 rejects when domain1.test's bundle holds CA2 (never a merged pool)", () => {
    const swapped = new Map([
      ['domain1.test', makeBundle('domain1.test', ca2.certPem)],
      ['domain2.test', makeBundle('domain2.test', ca1.certPem)],
    ]);
    expect(codeOf(() => verifyPeerChain([good.der], swapped))).toMatch(
      /^SVID_UNKNOWN_AUTHORITY: .*unknown authority/,
    );
  });

  it('B6 rejects a URI SAN with a scheme other than spiffe', () => {
    const leaf = pki.issue('b6', ca1, leafExt('sparfe://domain1.test/workload'));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_BAD_SPIFFE_ID: .*scheme/);
  });

  it('B7 rejects a leaf without URI SAN', () => {
    const leaf = pki.issue('b7', ca1, leafExt(null, { subjectAltName: 'DNS:example.org' }));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_NO_URI_SAN: .*no URI SAN/);
  });

  it('B8 rejects two URI SANs, even identical ones', () => {
    const same = pki.issue('b8a', ca1, leafExt(null, { subjectAltName: `URI:${ID}, URI:${ID}` }));
    const diff = pki.issue(
      'b8b',
      ca1,
      leafExt(null, { subjectAltName: `URI:${ID}, URI:spiffe://domain1.test/other` }),
    );
    expect(codeOf(() => verifyPeerChain([same.der], bundles))).toMatch(
      /^SVID_MULTIPLE_URI_SANS: .*more than one URI SAN/,
    );
    expect(codeOf(() => verifyPeerChain([diff.der], bundles))).toMatch(/^SVID_MULTIPLE_URI_SANS/);
  });

  it('B9 rejects a leaf with cA=true', () => {
    const leaf = pki.issue('b9', ca1, leafExt(ID, { basicConstraints: 'critical, CA:true' }));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_LEAF_IS_CA: .*cA=true/);
  });

  it('B10 rejects a leaf with keyCertSign', () => {
    const leaf = pki.issue('b10', ca1, leafExt(ID, { keyUsage: 'critical, digitalSignature, keyCertSign' }));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(
      /^SVID_LEAF_KEY_CERT_SIGN: .*keyCertSign/,
    );
  });

  it('B11 rejects a leaf with cRLSign', () => {
    const leaf = pki.issue('b11', ca1, leafExt(ID, { keyUsage: 'critical, digitalSignature, cRLSign' }));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_LEAF_CRL_SIGN: .*cRLSign/);
  });

  it('B12 rejects at notAfter + 1 s, accepts at notAfter, rejects before notBefore', () => {
    const leaf = parseCertificate(good.der);
    expect(codeOf(() => verifyPeerChain([good.der], bundles, { at: leaf.notAfter + 1000 }))).toMatch(
      /^SVID_EXPIRED: .*expired at/,
    );
    expect(verifyPeerChain([good.der], bundles, { at: leaf.notAfter }).spiffeId).toBe(ID);
    expect(codeOf(() => verifyPeerChain([good.der], bundles, { at: leaf.notBefore - 1000 }))).toMatch(
      /^SVID_NOT_YET_VALID/,
    );
  });

  it('B13 accepts a valid leaf and returns its ID and the verified chain to the anchor', () => {
    const peer = verifyPeerChain([good.der], bundles);
    expect(peer.spiffeId).toBe(ID);
    expect(peer.trustDomain).toBe('domain1.test');
    expect(peer.chain.map((c) => c.der)).toEqual([good.der, ca1.der]);
    expect(verifyPeerChainBytes(good.certPem, bundles).spiffeId).toBe(ID);
  });

  it('B14 rejects DER with its first byte corrupted, and truncated DER', () => {
    const bad = Buffer.from(good.der);
    bad[0] = 0x31;
    expect(codeOf(() => verifyPeerChainBytes(bad, bundles))).toMatch(/^SVID_MALFORMED_CERT: not DER/);
    expect(codeOf(() => verifyPeerChain([bad], bundles))).toMatch(/^SVID_MALFORMED_CERT/);
    expect(codeOf(() => verifyPeerChainBytes(good.der.subarray(0, good.der.length - 10), bundles))).toMatch(
      /^SVID_MALFORMED_CERT: truncated DER/,
    );
    const flipped = Buffer.from(good.der);
    flipped[40] = (flipped[40] ?? 0) ^ 0xff;
    expect(codeOf(() => verifyPeerChain([flipped], bundles))).toMatch(
      /^SVID_(MALFORMED_CERT|UNKNOWN_AUTHORITY|BAD_SPIFFE_ID)/,
    );
  });

  it('B14 also rejects extensions that are not what their OID says, naming them', () => {
    const badSan = pki.issue('b14san', ca1, [...leafExt(null), '2.5.29.17 = DER:05:00']);
    const badKu = pki.issue('b14ku', ca1, [
      ...leafExt(ID, { keyUsage: null }),
      '2.5.29.15 = critical, DER:04:00',
    ]);
    for (const leaf of [badSan, badKu]) {
      expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(
        /^SVID_MALFORMED_CERT: cannot parse the certificate extensions: /,
      );
    }
  });

  it('B15 rejects a leaf whose ID is the trust domain itself', () => {
    const leaf = pki.issue('b15', ca1, leafExt('spiffe://domain1.test'));
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_ROOT_PATH_ID: .*no path/);
  });

  it('B16 rejects a leaf without digitalSignature, or without keyUsage', () => {
    const noDs = pki.issue('b16a', ca1, leafExt(ID, { keyUsage: 'critical, keyEncipherment' }));
    const noKu = pki.issue('b16b', ca1, leafExt(ID, { keyUsage: null }));
    expect(codeOf(() => verifyPeerChain([noDs.der], bundles))).toMatch(
      /^SVID_LEAF_NO_DIGITAL_SIGNATURE: .*lacks/,
    );
    expect(codeOf(() => verifyPeerChain([noKu.der], bundles))).toMatch(
      /^SVID_LEAF_NO_DIGITAL_SIGNATURE: .*no keyUsage/,
    );
  });

  it('B17 rejects an EKU without serverAuth or without clientAuth; accepts a leaf with no EKU', () => {
    const noServer = pki.issue('b17a', ca1, leafExt(ID, { extendedKeyUsage: 'clientAuth' }));
    const noClient = pki.issue('b17b', ca1, leafExt(ID, { extendedKeyUsage: 'critical, serverAuth' }));
    const noEku = pki.issue('b17c', ca1, leafExt(ID, { extendedKeyUsage: null }));
    expect(codeOf(() => verifyPeerChain([noServer.der], bundles))).toMatch(
      /^SVID_LEAF_EXT_KEY_USAGE: .*without serverAuth/,
    );
    expect(codeOf(() => verifyPeerChain([noClient.der], bundles))).toMatch(
      /^SVID_LEAF_EXT_KEY_USAGE: .*without clientAuth/,
    );
    expect(verifyPeerChain([noEku.der], bundles).spiffeId).toBe(ID);
  });
});

describe('path validation through intermediates', () => {
  it('accepts leaf → intermediate → root, and needs the intermediate', () => {
    const inter = pki.intermediate('int', ca1, 'domain1.test');
    const leaf = pki.issue('via-int', inter, leafExt(ID), { keyType: 'rsa' });
    const peer = verifyPeerChain([leaf.der, inter.der], bundles);
    expect(peer.chain.map((c) => c.der)).toEqual([leaf.der, inter.der, ca1.der]);
    expect(codeOf(() => verifyPeerChain([leaf.der], bundles))).toMatch(/^SVID_UNKNOWN_AUTHORITY/);
  });

  it('rejects an intermediate that is not a CA or lacks keyCertSign', () => {
    const notCa = pki.intermediate('int-noca', ca1, 'domain1.test', [
      'basicConstraints = critical, CA:false',
      'keyUsage = critical, keyCertSign',
    ]);
    const noSign = pki.intermediate('int-nosign', ca1, 'domain1.test', [
      'basicConstraints = critical, CA:true',
      'keyUsage = critical, cRLSign',
    ]);
    const l1 = pki.issue('via-noca', notCa, leafExt(ID));
    const l2 = pki.issue('via-nosign', noSign, leafExt(ID));
    expect(codeOf(() => verifyPeerChain([l1.der, notCa.der], bundles))).toMatch(
      /^SVID_BAD_INTERMEDIATE: .*not a CA/,
    );
    expect(codeOf(() => verifyPeerChain([l2.der, noSign.der], bundles))).toMatch(
      /^SVID_BAD_INTERMEDIATE: .*keyCertSign/,
    );
  });

  it('enforces pathLenConstraint', () => {
    const root0 = pki.root('root-pl0', 'domain3.test', {
      ext: [
        'basicConstraints = critical, CA:true, pathlen:0',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    const inter = pki.intermediate('int-pl', root0, 'domain3.test');
    const leaf = pki.issue('leaf-pl', inter, leafExt('spiffe://domain3.test/w'));
    const b = new Map([['domain3.test', makeBundle('domain3.test', root0.certPem)]]);
    expect(codeOf(() => verifyPeerChain([leaf.der, inter.der], b))).toMatch(/^SVID_PATH_LENGTH/);
  });

  it('verifies a federated peer against its own trust domain bundle only', () => {
    const leaf2 = pki.issue('td2', ca2, leafExt('spiffe://domain2.test/api'));
    expect(verifyPeerChain([leaf2.der], bundles).trustDomain).toBe('domain2.test');
    const onlyOne = new Map([['domain1.test', makeBundle('domain1.test', [ca1.der, ca2.der])]]);
    expect(codeOf(() => verifyPeerChain([leaf2.der], onlyOne))).toMatch(/^SVID_UNKNOWN_TRUST_DOMAIN/);
  });
});
