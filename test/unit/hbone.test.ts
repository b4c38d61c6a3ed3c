// HBONE over real TLS 1.3 and real HTTP/2 on loopback: the outbound tunnel pool and the inbound tunnel
// server of ward, with a lab-protocol server as the destination workload. Capture (TPROXY) is not part of
// this; the namespace suite covers it.
import { createHash } from 'node:crypto';
import { createServer as createH2Server, connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer, type Server, Socket } from 'node:net';
import { createSecureContext, connect as tlsConnect } from 'node:tls';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keystream, keystreamSha256, serveLab } from '../../src/lab/peer.ts';
import { type Endpoint, endpoint } from '../../src/net/address.ts';
import { Connection } from '../../src/proxy/connection.ts';
import { connectViaTunnel } from '../../src/proxy/hbone-outbound.ts';
import { HboneServer } from '../../src/proxy/hbone-server.ts';
import {
  pooledReadBuffers,
  resumePooledReads,
  STREAM_READ_BUFFER_SIZE,
  usePooledReads,
} from '../../src/proxy/pooled-reads.ts';
import { TunnelPool, type TunnelSpec } from '../../src/proxy/tunnel-pool.ts';
import { TestOwner } from './test-owner.ts';
import { checkPeer, makePki, type TestPki } from './tls-fixtures.ts';

const MiB = 1 << 20;
const CLIENT_ID = 'spiffe://spiffe.cilium/identity/1001';
const SERVER_ID = 'spiffe://spiffe.cilium/identity/2002';

let pki: TestPki;
let backend: Server;
let backendAddr: Endpoint;
let resetter: Server;
let resetterAddr: Endpoint;
let tunnelServer: Server;
let tunnelAddr: Endpoint;
let hbone: HboneServer;
const inbound = new TestOwner();
const outbound = new TestOwner();
let pool: TunnelPool;
let proxy: Server;
let proxyPort: number;
const refused: string[] = [];
let spec: TunnelSpec;

async function listen(s: Server): Promise<Endpoint> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return endpoint('127.0.0.1', (s.address() as AddressInfo).port);
}

function tlsOptionsFor(leaf: { key: string; cert: string }) {
  return { secureContext: createSecureContext({ key: leaf.key, cert: leaf.cert, ca: pki.ca }) };
}

beforeAll(async () => {
  pki = makePki();
  const clientLeaf = pki.leaf(CLIENT_ID);
  const serverLeaf = pki.leaf(SERVER_ID);
  backend = createServer({ allowHalfOpen: true }, serveLab);
  backendAddr = await listen(backend);
  // A destination workload that resets every connection once it has read something.
  resetter = createServer((s) => s.once('data', () => s.resetAndDestroy()));
  resetterAddr = await listen(resetter);
  const log = pino({ level: 'silent' });
  hbone = new HboneServer({
    owner: inbound,
    log,
    connectTimeoutMs: 2000,
    handshakeTimeoutMs: 1000,
    serverTls: (ip) =>
      ip === '127.0.0.1'
        ? {
            secureContext: tlsOptionsFor(serverLeaf).secureContext,
            verify: (s) => checkPeer(s, null, pki.ca),
          }
        : null,
    // In this stand-in, "local" means the backend's port; a real ward asks its inventory.
    admit: (_peer, target) =>
      target.port === backendAddr.port || target.port === resetterAddr.port || target.port === 1
        ? { ok: true }
        : {
            ok: false,
            status: 403,
            reason: 'target_not_local',
            message: `${target.ip}:${target.port} is not a local workload`,
          },
    upstreamSocket: () => new Socket({ allowHalfOpen: true }),
    onRefused: (reason) => refused.push(reason),
    onAccepted: () => {},
  });
  tunnelServer = createServer({ pauseOnConnect: true }, (s) => hbone.handle(s));
  tunnelAddr = await listen(tunnelServer);
  pool = new TunnelPool({
    idleTimeoutMs: 30_000,
    keepaliveIntervalMs: 10_000,
    keepaliveTimeoutMs: 5_000,
    socketFactory: () => new Socket(),
    log,
  });
  spec = {
    key: `${CLIENT_ID}|${SERVER_ID}|127.0.0.1`,
    peer: tunnelAddr,
    sourceIp: undefined,
    tls: { options: tlsOptionsFor(clientLeaf), verify: (s) => checkPeer(s, SERVER_ID, pki.ca) },
  };
  // A stand-in for ward's outbound listener: every accepted socket goes to the backend through HBONE.
  proxy = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    const conn = new Connection(
      outbound,
      'outbound',
      client,
      endpoint(client.remoteAddress ?? '', client.remotePort ?? 0),
      backendAddr,
    );
    outbound.register(conn);
    connectViaTunnel(conn, pool, spec, 5000);
  });
  proxyPort = (await listen(proxy)).port;
});

afterAll(() => {
  pool?.close();
  hbone?.close();
  for (const s of [proxy, tunnelServer, backend, resetter]) s?.close();
  inbound.sweeper.stop();
  outbound.sweeper.stop();
  pki?.cleanup();
});

function send(bytes: number, seed: string, port = proxyPort): Promise<{ sent: string; reply: string }> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const h = createHash('sha256');
    let reply = '';
    s.on('connect', () => {
      s.write('HASH\n');
      const ks = new Keystream(seed, bytes);
      const pump = () => {
        for (let b = ks.next(); b !== null; b = ks.next()) {
          h.update(b);
          if (!s.write(b)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    s.on('data', (d: Buffer) => {
      reply += d.toString();
    });
    s.on('end', () => resolve({ sent: h.digest('hex'), reply: reply.trim() }));
    s.on('error', reject);
  });
}

function fetch(
  bytes: number,
  seed: string,
  opts: { resumeWhen?: Promise<unknown>; stallEvery?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: proxyPort, host: '127.0.0.1' });
    const h = createHash('sha256');
    let reads = 0;
    s.on('connect', () => s.write(`SOURCE ${bytes} ${seed}\n`));
    s.on('data', (d: Buffer) => {
      h.update(d);
      // A reader that keeps stalling: ward's writes to it back up and it must stop and restart reading.
      if (opts.stallEvery !== undefined && ++reads % opts.stallEvery === 0) {
        s.pause();
        setTimeout(() => s.resume(), reads % 3);
      }
    });
    if (opts.resumeWhen !== undefined) {
      s.pause();
      void opts.resumeWhen.then(() => s.resume());
    }
    s.on('end', () => resolve(h.digest('hex')));
    s.on('error', reject);
  });
}

describe('HBONE tunnel', () => {
  it('the first connection of a new identity pair goes through while its tunnel comes up', async () => {
    const before = pool.stats().tunnels;
    expect(before).toBe(0);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => send(1000, `f${i}`)));
    for (const r of results) expect(r.reply).toBe(r.sent);
    // Twenty connections asked at once share the one tunnel they waited for.
    expect(pool.stats().tunnels).toBe(1);
  });

  it('carries 16 MiB intact each way through one stream', async () => {
    const up = await send(16 * MiB, 'aa');
    expect(up.reply).toBe(up.sent);
    expect(await fetch(16 * MiB, 'bb')).toBe(keystreamSha256('bb', 16 * MiB));
  });

  it('64 MiB down through a reader that keeps stalling arrive intact (pooled stream reads stop and restart)', async () => {
    // ward a reads the CONNECT stream into pooled buffers and writes them to this reader, which keeps
    // pausing: the stream's reads stop (its window fills) and must restart on drain, and a buffer handed
    // back before its write completed would corrupt the bytes.
    expect(await fetch(64 * MiB, 'ps', { stallEvery: 5 })).toBe(keystreamSha256('ps', 64 * MiB));
    const line = () => outbound.lines.find((l) => l.bytesDown === 64 * MiB);
    for (let i = 0; i < 100 && line() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(line()).toMatchObject({ reason: 'completed' });
    // The stream side took the pooled path: completed writes handed its 16 KiB buffers back.
    expect(pooledReadBuffers(STREAM_READ_BUFFER_SIZE)).toBeGreaterThan(0);
  }, 60_000);

  it('access lines on both sides name the peer identity and the tunnel', async () => {
    await send(10, 'cc');
    const out = outbound.lines.at(-1);
    const inn = inbound.lines.at(-1);
    expect(out).toMatchObject({
      direction: 'outbound',
      reason: 'completed',
      peer: SERVER_ID,
      tunnel: `127.0.0.1:${tunnelAddr.port}`,
    });
    expect(inn).toMatchObject({
      direction: 'inbound',
      reason: 'completed',
      peer: CLIENT_ID,
      tunnel: true,
      dst: `127.0.0.1:${backendAddr.port}`,
    });
  });

  it('200 concurrent connections over pooled tunnels (at most 100 streams each), none lost', async () => {
    // Every connection stays open until all 200 are echoing, so the pool must spread them.
    const sockets = await Promise.all(
      Array.from(
        { length: 200 },
        (_, i) =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect({ port: proxyPort, host: '127.0.0.1' });
            s.on('error', reject);
            s.once('connect', () => s.write(`ECHO\nconn-${i}\n`));
            s.once('data', () => resolve(s));
          }),
      ),
    );
    const stats = pool.stats();
    expect(stats.streams).toBe(200);
    expect(stats.tunnels).toBeGreaterThanOrEqual(2);
    const echoed = await Promise.all(
      sockets.map(
        (s, i) =>
          new Promise<boolean>((resolve) => {
            let got = '';
            s.on('data', (d: Buffer) => {
              got += d.toString();
              if (got.includes(`again-${i}\n`)) resolve(true);
            });
            s.write(`again-${i}\n`);
          }),
      ),
    );
    expect(echoed.filter(Boolean)).toHaveLength(200);
    for (const s of sockets) s.destroy();
  });

  it('bidirectional bulk on one tunnel never stalls the session', async () => {
    // 40 streams, each pushing 4 MiB up while 4 MiB come down, all at once, on one pooled tunnel.
    const jobs = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0
        ? send(4 * MiB, `u${i}`).then((r) => r.reply === r.sent)
        : fetch(4 * MiB, `d${i}`).then((h) => h === keystreamSha256(`d${i}`, 4 * MiB)),
    );
    const ok = await Promise.all(jobs);
    expect(ok.every(Boolean)).toBe(true);
  }, 60_000);

  it('one stream whose reader stops does not stop the others on its tunnel', async () => {
    // The stalled reader resumes only once the others are done: if they waited on it, nothing finishes.
    let othersDone: (v: unknown) => void = () => {};
    const gate = new Promise((r) => {
      othersDone = r;
    });
    const stalled = fetch(32 * MiB, 'st', { resumeWhen: gate });
    await new Promise((r) => setTimeout(r, 300));
    const others = await Promise.all(Array.from({ length: 8 }, (_, i) => send(2 * MiB, `o${i}`)));
    othersDone(null);
    for (const r of others) expect(r.reply).toBe(r.sent);
    expect(await stalled).toBe(keystreamSha256('st', 32 * MiB));
  }, 30_000);

  it('a reset at the destination reaches the client as a reset, never as an orderly close', async () => {
    const toResetter = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
      const conn = new Connection(
        outbound,
        'outbound',
        client,
        endpoint('127.0.0.1', client.remotePort ?? 0),
        resetterAddr,
      );
      outbound.register(conn);
      connectViaTunnel(conn, pool, spec, 5000);
    });
    const port = (await listen(toResetter)).port;
    const c = connect({ port, host: '127.0.0.1' });
    let ended = false;
    c.on('end', () => {
      ended = true;
    });
    c.write('hello');
    const err = await new Promise<NodeJS.ErrnoException>((r) => c.on('error', r));
    expect(err.code).toBe('ECONNRESET');
    expect(ended).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(outbound.lines.at(-1)).toMatchObject({
      reason: 'upstream_reset',
      dst: `127.0.0.1:${resetterAddr.port}`,
    });
    toResetter.close();
  });

  it('a server with the wrong identity is refused before any byte is sent', async () => {
    const wrong = pki.leaf('spiffe://spiffe.cilium/identity/6666');
    const decoyServer = new HboneServer({
      owner: inbound,
      log: pino({ level: 'silent' }),
      connectTimeoutMs: 1000,
      handshakeTimeoutMs: 1000,
      serverTls: () => ({
        secureContext: tlsOptionsFor(wrong).secureContext,
        verify: (s) => checkPeer(s, null, pki.ca),
      }),
      admit: () => ({ ok: true }),
      upstreamSocket: () => new Socket(),
      onRefused: () => {},
      onAccepted: () => {},
    });
    const decoy = createServer({ pauseOnConnect: true }, (s) => decoyServer.handle(s));
    const decoyAddr = await listen(decoy);
    const owner = new TestOwner();
    const decoyProxy = createServer({ pauseOnConnect: true }, (client) => {
      const conn = new Connection(owner, 'outbound', client, endpoint('127.0.0.1', 1), backendAddr);
      owner.register(conn);
      connectViaTunnel(conn, pool, { ...spec, key: 'decoy', peer: decoyAddr }, 5000);
    });
    const port = (await listen(decoyProxy)).port;
    const c = connect({ port, host: '127.0.0.1' });
    const err = await new Promise<NodeJS.ErrnoException>((r) => c.on('error', r));
    expect(err.code).toBe('ECONNRESET');
    expect(owner.lines[0]).toMatchObject({ reason: 'peer_rejected' });
    expect(String(owner.lines[0]?.error)).toContain('expected spiffe://spiffe.cilium/identity/2002');
    decoy.close();
    decoyProxy.close();
    owner.sweeper.stop();
  });
});

describe('pooled reads on an HTTP/2 stream', () => {
  it('the runtime lets a stream read into pooled buffers, stop, restart and still see its end', async () => {
    // ward pins its Node version; this fails on a runtime where the switch no longer engages.
    const server = createH2Server();
    const got: Buffer[] = [];
    const sizes = new Set<number>();
    const ended = new Promise<void>((resolve, reject) => {
      server.on('stream', (stream) => {
        stream.respond({ ':status': 200 });
        const switched = usePooledReads(stream, function (this: typeof stream, n, buf) {
          got.push(Buffer.from(buf.subarray(0, n)));
          sizes.add(buf.length);
          // Stop after the first read, restart a little later: the rest must still arrive.
          if (got.length === 1) {
            setTimeout(() => resumePooledReads(this), 50);
            return false;
          }
          return true;
        });
        if (!switched) reject(new Error('usePooledReads did not engage on an Http2Stream'));
        stream.on('end', () => {
          stream.end();
          resolve();
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const session = h2connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const req = session.request({ ':method': 'POST', ':path': '/' }, { endStream: false });
    const body = Buffer.alloc(256 * 1024, 7);
    req.end(body);
    req.resume();
    await ended;
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(got.length).toBeGreaterThan(1);
    expect([...sizes]).toEqual([STREAM_READ_BUFFER_SIZE]);
    session.close();
    server.close();
  });
});

describe('HBONE server: bad input is refused and logged, other connections unaffected', () => {
  function rawTls(leaf: { key: string; cert: string } | null) {
    return tlsConnect({
      port: tunnelAddr.port,
      host: '127.0.0.1',
      ...(leaf === null ? {} : { key: leaf.key, cert: leaf.cert }),
      ca: pki.ca,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      servername: '',
      checkServerIdentity: () => undefined,
    });
  }

  it('plain bytes instead of TLS', async () => {
    const n = refused.length;
    const s = connect({ port: tunnelAddr.port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => s.on('close', r));
    expect(refused.slice(n)).toEqual(['tls_error']);
  });

  it('TLS without a client certificate', async () => {
    const n = refused.length;
    const s = rawTls(null);
    s.on('error', () => {});
    await new Promise((r) => s.on('close', r));
    expect(refused.slice(n)).toEqual(['no_peer_certificate']);
  });

  it('a client certificate from another root', async () => {
    const n = refused.length;
    const s = rawTls(pki.foreignLeaf(CLIENT_ID));
    s.on('error', () => {});
    await new Promise((r) => s.on('close', r));
    expect(refused.slice(n)).toEqual(['untrusted']);
  });

  it('HTTP/2 garbage after a good handshake closes that session only', async () => {
    const s = rawTls(pki.leaf(CLIENT_ID));
    s.on('error', () => {});
    await new Promise((r) => s.once('secureConnect', r));
    // Not the HTTP/2 connection preface: the session fails and closes.
    s.resume();
    s.write('this is not the HTTP/2 connection preface, just bytes\r\n\r\n');
    await new Promise((r) => s.on('close', r));
    const r = await send(5000, 'after-garbage');
    expect(r.reply).toBe(r.sent);
  });

  it('CONNECT to a malformed authority gets 400, to a non-local target 403, both logged', async () => {
    const { connect: h2c } = await import('node:http2');
    const leaf = pki.leaf(CLIENT_ID);
    const session = h2c(`https://127.0.0.1:${tunnelAddr.port}`, {
      createConnection: () => rawTls(leaf),
    });
    const status = (authority: string) =>
      new Promise<number>((resolve) => {
        const st = session.request({ ':method': 'CONNECT', ':authority': authority });
        st.on('response', (h) => resolve(Number(h[':status'])));
        st.on('error', () => resolve(-1));
      });
    const before = inbound.lines.length;
    expect(await status('not-an-ip:80')).toBe(400);
    expect(await status('127.0.0.1:99999')).toBe(400);
    expect(await status('127.0.0.1:4')).toBe(403);
    const lines = inbound.lines.slice(before);
    expect(lines.map((l) => l.reason)).toEqual(['bad_request', 'bad_request', 'target_not_local']);
    expect(String(lines[0]?.error)).toContain('authority host is not an IP address');
    session.close();
  });

  it('a stream reset mid-flight is logged as a client reset; the tunnel keeps serving', async () => {
    const { connect: h2c, constants } = await import('node:http2');
    const leaf = pki.leaf(CLIENT_ID);
    const session = h2c(`https://127.0.0.1:${tunnelAddr.port}`, { createConnection: () => rawTls(leaf) });
    const st = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${backendAddr.port}` });
    await new Promise((r) => st.on('response', r));
    st.write('ECHO\nhello');
    await new Promise((r) => st.once('data', r));
    const before = inbound.lines.length;
    st.on('error', () => {});
    st.close(constants.NGHTTP2_CONNECT_ERROR);
    for (let i = 0; i < 100 && inbound.lines.length === before; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(inbound.lines[before]).toMatchObject({ reason: 'client_reset' });
    const st2 = session.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${backendAddr.port}` });
    await new Promise((r) => st2.on('response', r));
    st2.write('ECHO\nping');
    const echoed = await new Promise<string>((r) => st2.once('data', (d: Buffer) => r(d.toString())));
    expect(echoed).toBe('ping');
    session.close();
  });
});
