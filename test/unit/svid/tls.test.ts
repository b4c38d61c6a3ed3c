// TLS 1.3 with ward's credentials: Node <-> Node with two identities, each side verifying the other, and
// interop with openssl s_server / s_client in both directions, using SVID files issued by ward's CA.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect, type SecureContext, type TLSSocket } from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derToPem } from '../../../src/svid/certificate.ts';
import {
  acceptTls,
  type CredentialsSnapshot,
  connectTlsOptions,
  createCredentialView,
} from '../../../src/svid/credentials.ts';
import { type DevCa, initCaDir } from '../../../src/svid/dev-ca.ts';
import type { SvidError } from '../../../src/svid/errors.ts';
import { credentialsOf, tempDir, until } from './helpers.ts';

const TD = 'spiffe.cilium';
const CLIENT = `spiffe://${TD}/identity/2001`;
const SERVER = `spiffe://${TD}/identity/2002`;

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
let rogue: DevCa;
let snapshot: CredentialsSnapshot;
const files: Record<string, { cert: string; key: string }> = {};

async function issueFiles(c: DevCa, id: string, name: string) {
  const s = await c.issue(id);
  const cert = join(tmp.dir, `${name}.svid.pem`);
  const key = join(tmp.dir, `${name}.key.pem`);
  writeFileSync(cert, s.chain.map((d) => derToPem(d)).join(''));
  writeFileSync(key, derToPem(s.key, 'PRIVATE KEY'));
  files[name] = { cert, key };
  return credentialsOf(s);
}

beforeAll(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  rogue = await initCaDir(join(tmp.dir, 'rogue'), TD);
  const identities = [await issueFiles(ca, CLIENT, 'client'), await issueFiles(ca, SERVER, 'server')];
  await issueFiles(rogue, CLIENT, 'rogue');
  snapshot = {
    version: 1,
    state: 'Available',
    identities,
    bundles: [{ trustDomain: TD, caPem: ca.bundlePem() }],
  };
});

afterAll(() => tmp.cleanup());

/** A TCP server that wraps each accepted socket in TLS with `context` and hands it over when secure. */
function mtlsServer(context: SecureContext | null | undefined, onSecure: (s: TLSSocket) => void): Server {
  if (!context) throw new Error('no context');
  return createNetServer((raw: Socket) => {
    const tls = acceptTls(raw, context);
    tls.on('error', () => {});
    tls.on('secure', () => onSecure(tls));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('Node <-> Node TLS 1.3 with two identities', () => {
  it('each side presents its SVID and verifies the peer by SPIFFE ID', async () => {
    const view = createCredentialView();
    view.apply(snapshot);
    const seenByServer: string[] = [];
    const server = mtlsServer(view.secureContext(SERVER), (sock) => {
      seenByServer.push(view.verifyTlsPeer(sock, { kind: 'exact', id: CLIENT }).spiffeId);
      sock.end(`protocol=${sock.getProtocol()}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const sock = connect(
        connectTlsOptions(view.secureContext(CLIENT) as SecureContext, { host: '127.0.0.1', port }),
      );
      const peer = await new Promise<string>((resolve, reject) => {
        sock.on('secureConnect', () =>
          resolve(view.verifyTlsPeer(sock, { kind: 'exact', id: SERVER }).spiffeId),
        );
        sock.on('error', reject);
      });
      const body = await new Promise<string>((resolve) => {
        let b = '';
        sock.on('data', (d: Buffer) => (b += d.toString()));
        sock.on('end', () => resolve(b));
      });
      expect(peer).toBe(SERVER);
      expect(seenByServer).toEqual([CLIENT]);
      expect(body).toBe('protocol=TLSv1.3');
    } finally {
      server.close();
    }
  });

  it('the server refuses a client whose SVID comes from another CA of the same trust domain, or no certificate', async () => {
    const view = createCredentialView();
    view.apply(snapshot);
    const rogueView = createCredentialView();
    rogueView.apply({
      ...snapshot,
      identities: [
        {
          ...snapshot.identities[0]!,
          certChainPem: readFileSync(files.rogue!.cert, 'utf8'),
          keyPem: readFileSync(files.rogue!.key, 'utf8'),
          serial: 'rogue',
        },
      ],
    });
    const refusals: string[] = [];
    const server = mtlsServer(view.secureContext(SERVER), (sock) => {
      try {
        view.verifyTlsPeer(sock);
        sock.end('accepted');
      } catch (err) {
        refusals.push((err as SvidError).code);
        sock.destroy();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      for (const ctx of [rogueView.secureContext(CLIENT), undefined]) {
        const sock = connect({
          host: '127.0.0.1',
          port,
          secureContext: ctx ?? undefined,
          rejectUnauthorized: false,
        });
        sock.on('error', () => {});
        await new Promise<void>((r) => sock.on('close', () => r()));
      }
      expect(refusals).toEqual(['SVID_UNKNOWN_AUTHORITY', 'SVID_EMPTY_CHAIN']);
    } finally {
      server.close();
    }
  });

  it('a worker thread receives the snapshot by postMessage and builds working credentials', async () => {
    const worker = new Worker(
      `const { parentPort } = require('node:worker_threads');
       parentPort.once('message', async ({ snapshot, url }) => {
         const { createCredentialView } = await import(url);
         const v = createCredentialView();
         v.apply(snapshot);
         parentPort.postMessage({ ids: v.identities(), ctx: v.secureContext('${SERVER}') !== null, version: v.version() });
       });`,
      { eval: true },
    );
    try {
      worker.postMessage({
        snapshot,
        url: new URL('../../../src/svid/credentials.ts', import.meta.url).href,
      });
      const reply = await new Promise<{ ids: string[]; ctx: boolean; version: number }>((r, j) => {
        worker.once('message', r);
        worker.once('error', j);
      });
      expect(reply).toEqual({ ids: [CLIENT, SERVER], ctx: true, version: 1 });
    } finally {
      await worker.terminate();
    }
  });
});

function collect(proc: ChildProcess): { out: () => string } {
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { out: () => out };
}

describe('interop with openssl (ward-issued SVID files)', () => {
  it('Node client -> openssl s_server: both verify (openssl against the CA file, ward by SPIFFE ID)', async () => {
    const port = await freePort();
    const srv = spawn('openssl', [
      's_server',
      '-accept',
      `127.0.0.1:${port}`,
      '-tls1_3',
      '-cert',
      files.server!.cert,
      '-key',
      files.server!.key,
      '-CAfile',
      join(tmp.dir, 'ca', 'ca.pem'),
      '-Verify',
      '1',
      '-verify_return_error',
      '-naccept',
      '1',
      '-www',
    ]);
    const log = collect(srv);
    try {
      await until(() => log.out().includes('ACCEPT'), 5000, 's_server ACCEPT');
      const view = createCredentialView();
      view.apply(snapshot);
      const sock: TLSSocket = connect(
        connectTlsOptions(view.secureContext(CLIENT) as SecureContext, { host: '127.0.0.1', port }),
      );
      const peer = await new Promise<string>((resolve, reject) => {
        sock.on('secureConnect', () =>
          resolve(view.verifyTlsPeer(sock, { kind: 'exact', id: SERVER }).spiffeId),
        );
        sock.on('error', reject);
      });
      sock.write('GET / HTTP/1.0\r\n\r\n');
      const body = await new Promise<string>((resolve) => {
        let b = '';
        sock.on('data', (d: Buffer) => (b += d.toString()));
        sock.on('close', () => resolve(b));
      });
      expect(peer).toBe(SERVER);
      expect(body).toMatch(/^HTTP\/1\.0 200 ok/);
      expect(body).toMatch(/TLSv1\.3/);
    } finally {
      srv.kill();
    }
  });

  it('openssl s_client -> Node server: openssl verifies the server, ward verifies the client by SPIFFE ID', async () => {
    const view = createCredentialView();
    view.apply(snapshot);
    const server = mtlsServer(view.secureContext(SERVER), (sock) => {
      try {
        sock.end(`peer=${view.verifyTlsPeer(sock).spiffeId}\n`);
      } catch (err) {
        sock.end(`refused=${(err as SvidError).code}\n`);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const run = async (cert: { cert: string; key: string }) => {
      const cli = spawn('openssl', [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-tls1_3',
        '-cert',
        cert.cert,
        '-key',
        cert.key,
        '-CAfile',
        join(tmp.dir, 'ca', 'ca.pem'),
        '-verify_return_error',
      ]);
      const log = collect(cli);
      try {
        await until(() => /peer=|refused=/.test(log.out()), 5000, 's_client output');
        return log.out();
      } finally {
        cli.kill();
      }
    };
    try {
      const good = await run(files.client!);
      expect(good).toContain(`peer=${CLIENT}`);
      expect(good).toMatch(/Verify return code: 0 \(ok\)/);
      expect(good).toMatch(/TLSv1\.3/);
      const bad = await run(files.rogue!);
      expect(bad).toContain('refused=SVID_UNKNOWN_AUTHORITY');
    } finally {
      server.close();
    }
  });
});
