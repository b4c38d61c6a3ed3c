// Test PKI made with the openssl CLI (an implementation independent of ward's CA): roots, intermediates
// and leaves with exactly the extensions a test needs.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type KeyType = 'ec' | 'rsa' | 'ed25519';

export interface Issued {
  readonly name: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly der: Buffer;
}

let serial = 1000;

export class OpensslPki {
  readonly dir: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ward-pki-'));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private openssl(args: string[]): string {
    return execFileSync('openssl', args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  }

  private key(name: string, type: KeyType): string {
    const path = join(this.dir, `${name}.key`);
    const algo =
      type === 'ec'
        ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
        : type === 'rsa'
          ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']
          : ['-algorithm', 'ed25519'];
    this.openssl(['genpkey', ...algo, '-out', path]);
    return path;
  }

  private config(name: string, ext: readonly string[]): string {
    const path = join(this.dir, `${name}.cnf`);
    writeFileSync(
      path,
      ['[req]', 'distinguished_name = dn', 'prompt = no', '[dn]', `O = ${name}`, '[v3]', ...ext, ''].join(
        '\n',
      ),
    );
    return path;
  }

  private result(name: string, certPath: string, keyPath: string): Issued {
    const certPem = readFileSync(certPath, 'utf8');
    const b64 = certPem.replace(/-----[A-Z ]+-----|\s+/g, '');
    return {
      name,
      certPem,
      keyPem: readFileSync(keyPath, 'utf8'),
      certPath,
      keyPath,
      der: Buffer.from(b64, 'base64'),
    };
  }

  /** A self-signed CA for a trust domain (URI SAN spiffe://<td>). */
  root(name: string, trustDomain: string, options: { ext?: readonly string[]; days?: number } = {}): Issued {
    const keyPath = this.key(name, 'ec');
    const cnf = this.config(
      name,
      options.ext ?? [
        'basicConstraints = critical, CA:true',
        'keyUsage = critical, keyCertSign, cRLSign',
        `subjectAltName = URI:spiffe://${trustDomain}`,
        'subjectKeyIdentifier = hash',
      ],
    );
    const certPath = join(this.dir, `${name}.pem`);
    this.openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      keyPath,
      '-config',
      cnf,
      '-extensions',
      'v3',
      '-days',
      String(options.days ?? 30),
      '-set_serial',
      String(serial++),
      '-out',
      certPath,
    ]);
    return this.result(name, certPath, keyPath);
  }

  /** A certificate signed by `issuer`, with the given extension lines (openssl x509v3 config syntax). */
  issue(
    name: string,
    issuer: Issued,
    ext: readonly string[],
    options: { keyType?: KeyType; days?: number } = {},
  ): Issued {
    const keyPath = this.key(name, options.keyType ?? 'ec');
    const cnf = this.config(name, [...ext, 'authorityKeyIdentifier = keyid']);
    const csr = join(this.dir, `${name}.csr`);
    const certPath = join(this.dir, `${name}.pem`);
    this.openssl(['req', '-new', '-key', keyPath, '-config', cnf, '-out', csr]);
    this.openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      issuer.certPath,
      '-CAkey',
      issuer.keyPath,
      '-set_serial',
      String(serial++),
      '-extfile',
      cnf,
      '-extensions',
      'v3',
      '-days',
      String(options.days ?? 1),
      '-out',
      certPath,
    ]);
    return this.result(name, certPath, keyPath);
  }

  /** An intermediate CA. */
  intermediate(name: string, issuer: Issued, trustDomain: string, ext?: readonly string[]): Issued {
    return this.issue(
      name,
      issuer,
      ext ?? [
        'basicConstraints = critical, CA:true',
        'keyUsage = critical, keyCertSign, cRLSign',
        `subjectAltName = URI:spiffe://${trustDomain}`,
        'subjectKeyIdentifier = hash',
      ],
    );
  }
}

/** The extension lines of a well-formed SVID leaf for `uri`, with overrides by key. */
export function leafExt(uri: string | null, overrides: Record<string, string | null> = {}): string[] {
  const base: Record<string, string | null> = {
    basicConstraints: 'critical, CA:false',
    keyUsage: 'critical, digitalSignature, keyEncipherment, keyAgreement',
    extendedKeyUsage: 'serverAuth, clientAuth',
    subjectAltName: uri === null ? null : `URI:${uri}`,
    subjectKeyIdentifier: 'hash',
    ...overrides,
  };
  return Object.entries(base)
    .filter((e): e is [string, string] => e[1] !== null)
    .map(([k, v]) => `${k} = ${v}`);
}
