// Identity micro-benchmarks: microseconds per peer-chain verification (warm: the peer's certificates
// already parsed, as on every connection after the first from a peer; cold: new certificate bytes) and per
// TLS-credential build (own SVID parsed and checked, then tls.createSecureContext), the cost paid once per
// rotation per thread. Run: node bench/svid-bench.ts
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle } from '../src/svid/bundle.ts';
import { buildSecureContext } from '../src/svid/credentials.ts';
import { type IssuedSvid, initCaDir } from '../src/svid/dev-ca.ts';
import { verifyPeerChain } from '../src/svid/verify.ts';
import { parseOwnSvid, svidChainPem, svidKeyPem } from '../src/svid/x509-svid.ts';

const TD = 'spiffe.cilium';

function measure(
  name: string,
  iterations: number,
  fn: (i: number) => void,
): { name: string; us: number; n: number } {
  for (let i = 0; i < Math.min(50, iterations); i++) fn(i); // warm-up (JIT)
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn(i);
  const us = Number(process.hrtime.bigint() - start) / 1000 / iterations;
  return { name, us, n: iterations };
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64');
}

const dir = mkdtempSync(join(tmpdir(), 'ward-bench-'));
try {
  const ca = await initCaDir(join(dir, 'ca'), TD);
  const bundles = new Map([[TD, makeBundle(TD, ca.bundlePem())]]);
  const one = await ca.issue(`${'spiffe://'}${TD}/identity/1`);

  // A two-level chain (root → intermediate → leaf) made with openssl, for the path-building cost.
  const sh = (args: string[]) =>
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const cnf = (name: string, ext: string[]) => {
    writeFileSync(
      join(dir, `${name}.cnf`),
      ['[req]', 'distinguished_name=dn', 'prompt=no', '[dn]', `O=${name}`, '[v3]', ...ext, ''].join('\n'),
    );
    return join(dir, `${name}.cnf`);
  };
  writeFileSync(join(dir, 'ca.pem'), ca.bundlePem());
  sh(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'int.key']);
  sh([
    'req',
    '-new',
    '-key',
    'int.key',
    '-config',
    cnf('int', [
      'basicConstraints=critical,CA:true',
      'keyUsage=critical,keyCertSign,cRLSign',
      `subjectAltName=URI:spiffe://${TD}`,
    ]),
    '-out',
    'int.csr',
  ]);
  sh([
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    join(dir, 'ca', 'ca.pem'),
    '-CAkey',
    join(dir, 'ca', 'ca.key.pem'),
    '-set_serial',
    '7',
    '-extfile',
    join(dir, 'int.cnf'),
    '-extensions',
    'v3',
    '-days',
    '2',
    '-out',
    'int.pem',
  ]);
  sh(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'leaf.key']);
  sh([
    'req',
    '-new',
    '-key',
    'leaf.key',
    '-config',
    cnf('leaf', [
      'basicConstraints=critical,CA:false',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=URI:spiffe://${TD}/identity/2`,
    ]),
    '-out',
    'leaf.csr',
  ]);
  sh([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'int.pem',
    '-CAkey',
    'int.key',
    '-set_serial',
    '8',
    '-extfile',
    join(dir, 'leaf.cnf'),
    '-extensions',
    'v3',
    '-days',
    '1',
    '-out',
    'leaf.pem',
  ]);
  const twoLevel = [
    pemToDer(readFileSync(join(dir, 'leaf.pem'), 'utf8')),
    pemToDer(readFileSync(join(dir, 'int.pem'), 'utf8')),
  ];

  const COLD = 150;
  const fresh: Buffer[] = [];
  for (let i = 0; i < COLD + 50; i++)
    fresh.push((await ca.issue(`spiffe://${TD}/identity/${100 + i}`)).chain[0] as Buffer);
  const own = parseOwnSvid({ chain: one.chain, key: one.key });
  const creds = {
    spiffeId: own.spiffeId,
    certChainPem: svidChainPem(own),
    keyPem: svidKeyPem(own),
    serial: own.serial,
    notBefore: own.notBefore,
    notAfter: own.notAfter,
  };
  const issuedForBuild: IssuedSvid[] = [];
  for (let i = 0; i < 300; i++) issuedForBuild.push(await ca.issue(`spiffe://${TD}/identity/${1000 + i}`));

  const results = [
    measure('verify peer chain, leaf only, warm', 20_000, () => verifyPeerChain(one.chain, bundles)),
    measure('verify peer chain, leaf + intermediate, warm', 20_000, () => verifyPeerChain(twoLevel, bundles)),
    measure('verify peer chain, leaf only, cold (first sight of the certificate)', COLD, (i) =>
      verifyPeerChain([fresh[i] as Buffer], bundles),
    ),
    measure('TLS credential build: tls.createSecureContext from PEM', 2_000, () => buildSecureContext(creds)),
    measure('TLS credential build: own SVID from DER (parse + checks) + createSecureContext', 250, (i) => {
      const s = issuedForBuild[i % issuedForBuild.length]!;
      const svid = parseOwnSvid({ chain: [Buffer.from(s.chain[0] as Buffer)], key: s.key });
      buildSecureContext({ ...creds, certChainPem: svidChainPem(svid), keyPem: svidKeyPem(svid) });
    }),
  ];
  console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}`);
  for (const r of results) console.log(`${r.us.toFixed(1).padStart(9)} µs/op  ${r.name}  (n=${r.n})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
