// Test certificates made with the openssl CLI at test time: a root, and SPIFFE-shaped leaves.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import type { PeerCheck } from '../../src/proxy/tunnel-tls.ts';

export interface Leaf {
  readonly spiffeId: string;
  readonly key: string;
  readonly cert: string;
}

export interface TestPki {
  readonly ca: string;
  leaf(spiffeId: string): Leaf;
  /** A leaf signed by another root, with the same SPIFFE ID. */
  foreignLeaf(spiffeId: string): Leaf;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

function makeRoot(dir: string, name: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      `${name}.key`,
      '-days',
      '2',
      '-subj',
      `/O=ward test/CN=${name}`,
      '-out',
      `${name}.pem`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'ward-pki-'));
  makeRoot(dir, 'root');
  makeRoot(dir, 'other');
  let n = 0;
  const issue = (root: string, spiffeId: string): Leaf => {
    n++;
    const name = `leaf${n}`;
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
    openssl(['req', '-new', '-key', `${name}.key`, '-subj', '/O=ward test', '-out', `${name}.csr`], dir);
    writeFileSync(
      join(dir, `${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:${spiffeId}\n`,
    );
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        `${root}.pem`,
        '-CAkey',
        `${root}.key`,
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
    return {
      spiffeId,
      key: readFileSync(join(dir, `${name}.key`), 'utf8'),
      cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    };
  };
  return {
    ca: readFileSync(join(dir, 'root.pem'), 'utf8'),
    leaf: (id) => issue('root', id),
    foreignLeaf: (id) => issue('other', id),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A deliberately small verifier for transport tests: the leaf must be signed by the test root and the
 * URI SAN must be the expected one. (The SPIFFE verifier proper lives in src/svid and has its own tests.)
 */
export function checkPeer(socket: TLSSocket, expected: string | null, caPem: string): PeerCheck {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined)
    return { ok: false, code: 'no_peer_certificate', message: 'the peer presented no certificate' };
  const ca = new X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return { ok: false, code: 'untrusted', message: `${cert.issuer} is not the test root` };
  }
  const uri = /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1];
  if (uri === undefined) return { ok: false, code: 'no_uri_san', message: 'no URI SAN' };
  if (expected !== null && uri !== expected)
    return { ok: false, code: 'wrong_identity', message: `peer is ${uri}, expected ${expected}` };
  return { ok: true, spiffeId: uri };
}
