// Hostile input against ward's inbound HBONE server over loopback, with real TLS 1.3 and HTTP/2:
// random CONNECT authorities, random bytes instead of TLS, random HTTP/2 frames after a good handshake,
// random CONNECT headers; then floods: ClientHellos that never finish (the pending-handshake cap and the
// handshake timeout), sessions that never send a complete request (slowloris: the header timeout),
// CONNECTs that never send data. The properties: no crash, no hang (every bad connection is closed
// within a generous deadline), no leak (no connection, handshake or heap left behind), and a good
// tunnel keeps working throughout.

import { type ClientHttp2Session, connect as h2connect } from 'node:http2';
import { type AddressInfo, connect, createServer, type Server, Socket } from 'node:net';
import { createSecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveLab } from '../../../src/lab/peer.ts';
import { type Endpoint, endpoint } from '../../../src/net/address.ts';
import { formatAuthority, parseAuthority } from '../../../src/proxy/hbone.ts';
import { HboneServer } from '../../../src/proxy/hbone-server.ts';
import { TestOwner } from '../test-owner.ts';
import { checkPeer, type Leaf, makePki, type TestPki } from '../tls-fixtures.ts';

const CLIENT_ID = 'spiffe://spiffe.cilium/identity/1001';
const SERVER_ID = 'spiffe://spiffe.cilium/identity/2002';
const HANDSHAKE_MS = 600;
const HEADER_MS = 600;
const MAX_PENDING = 16;
/** "No hang": every hostile connection is gone well within this. */
const DEADLINE_MS = 5_000;

let pki: TestPki;
let clientLeaf: Leaf;
let backend: Server;
let backendAddr: Endpoint;
let tunnel: Server;
let tunnelPort: number;
let hbone: HboneServer;
const owner = new TestOwner();
const refused: string[] = [];
/** Raw sockets the tunnel listener accepted and has not seen close: the server's view of open tunnels. */
const openTunnels = new Set<Socket>();

async function listen(s: Server): Promise<Endpoint> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return endpoint('127.0.0.1', (s.address() as AddressInfo).port);
}

beforeAll(async () => {
  pki = makePki();
  clientLeaf = pki.leaf(CLIENT_ID);
  const serverLeaf = pki.leaf(SERVER_ID);
  backend = createServer({ allowHalfOpen: true }, serveLab);
  backendAddr = await listen(backend);
  hbone = new HboneServer({
    owner,
    log: pino({ level: 'silent' }),
    connectTimeoutMs: 2000,
    handshakeTimeoutMs: HANDSHAKE_MS,
    headerTimeoutMs: HEADER_MS,
    maxPendingHandshakes: MAX_PENDING,
    serverTls: () => ({
      secureContext: createSecureContext({ key: serverLeaf.key, cert: serverLeaf.cert, ca: pki.ca }),
      verify: (s) => checkPeer(s, null, pki.ca),
    }),
    admit: (_peer, target) =>
      target.port === backendAddr.port
        ? { ok: true }
        : { ok: false, status: 403, reason: 'target_not_local', message: 'not local' },
    upstreamSocket: () => new Socket({ allowHalfOpen: true }),
    onRefused: (reason) => refused.push(reason),
    onAccepted: () => {},
  });
  tunnel = createServer({ pauseOnConnect: true }, (s) => {
    openTunnels.add(s);
    s.once('close', () => openTunnels.delete(s));
    hbone.handle(s);
  });
  tunnelPort = (await listen(tunnel)).port;
});

afterAll(() => {
  hbone?.close();
  tunnel?.close();
  backend?.close();
  owner.sweeper.stop();
  pki?.cleanup();
});

function rawTls(leaf: Leaf | null): TLSSocket {
  const s = tlsConnect({
    port: tunnelPort,
    host: '127.0.0.1',
    ...(leaf === null ? {} : { key: leaf.key, cert: leaf.cert }),
    ca: pki.ca,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    servername: '',
    checkServerIdentity: () => undefined,
  });
  s.on('error', () => {});
  return s;
}

function closed(s: Socket, ms = DEADLINE_MS): Promise<'closed' | 'open'> {
  if (s.destroyed) return Promise.resolve('closed');
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('open'), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve('closed');
    });
  });
}

async function until(what: string, fn: () => boolean, ms = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A good tunnel: CONNECT to the backend, ECHO a line back. */
async function echoThroughTunnel(session?: ClientHttp2Session): Promise<string> {
  const own = session === undefined;
  const s =
    session ?? h2connect(`https://127.0.0.1:${tunnelPort}`, { createConnection: () => rawTls(clientLeaf) });
  s.on('error', () => {});
  try {
    const st = s.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${backendAddr.port}` });
    st.on('error', () => {});
    const status = await new Promise<number>((r) => st.once('response', (h) => r(Number(h[':status']))));
    if (status !== 200) return `status ${status}`;
    st.write('ECHO\nping');
    const got = await new Promise<string>((r) => st.once('data', (d: Buffer) => r(d.toString())));
    st.close();
    return got;
  } finally {
    if (own) s.destroy();
  }
}

function frame(type: number, flags: number, stream: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const EMPTY_SETTINGS = frame(4, 0, 0, new Uint8Array(0));

function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('CONNECT authority parsing (property)', () => {
  it('never throws; accepts only a literal IP and a port 1-65535, and round-trips what it accepts', () => {
    const authority = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.tuple(fc.ipV4(), fc.integer({ min: -5, max: 70_000 })).map(([ip, p]) => `${ip}:${p}`),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 70_000 })).map(([ip, p]) => `[${ip}]:${p}`),
      fc.tuple(fc.ipV6(), fc.nat(70_000)).map(([ip, p]) => `${ip}:${p}`),
      fc.tuple(fc.domain(), fc.nat(70_000)).map(([d, p]) => `${d}:${p}`),
      fc.string({ unit: fc.constantFrom('[', ']', ':', '1', '.', 'f', ' ', '%', '\0'), maxLength: 30 }),
    );
    fc.assert(
      fc.property(authority, (a) => {
        const r = parseAuthority(a);
        if (!r.ok) return typeof r.reason === 'string' && r.reason.length > 0;
        expect(r.target.port).toBeGreaterThanOrEqual(1);
        expect(r.target.port).toBeLessThanOrEqual(65535);
        const again = parseAuthority(formatAuthority(r.target));
        return again.ok && again.target.ip === r.target.ip && again.target.port === r.target.port;
      }),
      { numRuns: 5000 },
    );
    expect(parseAuthority(undefined).ok).toBe(false);
  });
});

describe('HBONE server under hostile input', () => {
  it('random bytes instead of a TLS handshake: every connection is closed in time, nothing leaks', async () => {
    const heapBefore = heapAfterGc();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 1, maxLength: 2048 }),
          // Something shaped like a TLS record header, then junk.
          fc
            .tuple(fc.constantFrom(0x14, 0x15, 0x16, 0x17), fc.uint8Array({ maxLength: 600 }))
            .map(([t, rest]) =>
              Buffer.concat([Buffer.from([t, 3, 1, rest.length >> 8, rest.length & 255]), rest]),
            ),
        ),
        async (bytes) => {
          const s = connect({ port: tunnelPort, host: '127.0.0.1' });
          s.on('error', () => {});
          await new Promise((r) => s.once('connect', r));
          s.write(bytes);
          s.resume();
          // The server closes (a TLS alert or error) or times the handshake out; either way, in time.
          const outcome = await closed(s, HANDSHAKE_MS + DEADLINE_MS);
          s.destroy();
          return outcome === 'closed';
        },
      ),
      { numRuns: 60 },
    );
    await until('handshakes settled', () => hbone.pendingHandshakes === 0 && openTunnels.size === 0);
    expect(await echoThroughTunnel()).toBe('ping');
    expect(heapAfterGc() - heapBefore).toBeLessThan(32 << 20);
  }, 120_000);

  it('random HTTP/2 frames after a good handshake: the session survives or closes, the server keeps serving', async () => {
    const frames = fc.array(
      fc.record({
        type: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 11, max: 255 })),
        flags: fc.integer({ min: 0, max: 255 }),
        stream: fc.oneof(fc.constantFrom(0, 1, 3, 5, 2), fc.integer({ min: 0, max: 0x7fffffff })),
        payload: fc.uint8Array({ maxLength: 96 }),
      }),
      { minLength: 1, maxLength: 12 },
    );
    const heapBefore = heapAfterGc();
    await fc.assert(
      fc.asyncProperty(frames, fc.boolean(), async (fs, withPreface) => {
        const s = rawTls(clientLeaf);
        await new Promise((r) => s.once('secureConnect', r));
        s.resume();
        const parts = fs.map((f) => frame(f.type, f.flags, f.stream, f.payload));
        s.write(Buffer.concat(withPreface ? [PREFACE, EMPTY_SETTINGS, ...parts] : parts));
        // Whatever the frames did, the server never holds a stream-less session past the header timeout.
        const outcome = await closed(s, HEADER_MS + DEADLINE_MS);
        s.destroy();
        return outcome === 'closed';
      }),
      { numRuns: 80 },
    );
    await until('sessions gone', () => openTunnels.size === 0 && owner.live.size === 0, 10_000);
    expect(await echoThroughTunnel()).toBe('ping');
    expect(heapAfterGc() - heapBefore).toBeLessThan(32 << 20);
  }, 120_000);

  it('random CONNECT headers get a status (200/400/403/405) or a stream error, never a crash', async () => {
    const session = h2connect(`https://127.0.0.1:${tunnelPort}`, {
      createConnection: () => rawTls(clientLeaf),
    });
    session.on('error', () => {});
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('CONNECT', 'GET', 'POST', 'CONNECT'),
        fc.oneof(
          fc.constant(`127.0.0.1:${backendAddr.port}`),
          fc.string({ minLength: 1, maxLength: 70 }),
          fc.tuple(fc.ipV4(), fc.nat(70_000)).map(([ip, p]) => `${ip}:${p}`),
        ),
        async (method, authority) => {
          const headers: Record<string, string> =
            method === 'CONNECT'
              ? { ':method': method, ':authority': authority }
              : { ':method': method, ':authority': authority, ':path': '/', ':scheme': 'https' };
          let st: ReturnType<ClientHttp2Session['request']>;
          try {
            st = session.request(headers);
          } catch {
            return true; // Node's client refused to send it: nothing reached the server.
          }
          const outcome = await new Promise<number | string>((resolve) => {
            st.once('response', (h) => resolve(Number(h[':status'])));
            st.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
            st.once('close', () => resolve('closed'));
          });
          st.destroy();
          return typeof outcome === 'string' || [200, 400, 403, 405].includes(outcome);
        },
      ),
      { numRuns: 150 },
    );
    expect(session.destroyed).toBe(false);
    expect(await echoThroughTunnel(session)).toBe('ping');
    session.destroy();
    await until('streams closed', () => owner.live.size === 0);
  }, 60_000);
});

describe('HBONE server floods', () => {
  it('ClientHellos that never finish: capped at maxPendingHandshakes, timed out, open tunnels unaffected', async () => {
    // An established tunnel before the flood.
    const established = h2connect(`https://127.0.0.1:${tunnelPort}`, {
      createConnection: () => rawTls(clientLeaf),
    });
    established.on('error', () => {});
    expect(await echoThroughTunnel(established)).toBe('ping');
    const n = refused.length;
    // TCP connections that send the first bytes of a ClientHello and then nothing.
    const flood: Socket[] = [];
    for (let i = 0; i < MAX_PENDING * 4; i++) {
      const s = connect({ port: tunnelPort, host: '127.0.0.1' });
      s.on('error', () => {});
      s.once('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])));
      flood.push(s);
    }
    await until('flood accepted', () => refused.length - n >= MAX_PENDING);
    expect(hbone.pendingHandshakes).toBeLessThanOrEqual(MAX_PENDING);
    // While the cap is full, the established tunnel keeps opening streams.
    expect(await echoThroughTunnel(established)).toBe('ping');
    const outcomes = await Promise.all(flood.map((s) => closed(s, HANDSHAKE_MS + DEADLINE_MS)));
    expect(outcomes.every((o) => o === 'closed')).toBe(true);
    const reasons = refused.slice(n);
    // Every flood connection was either refused at the cap or timed out; the cap held (on a loaded
    // machine a few early handshakes may time out before the last connections arrive, freeing slots).
    const limited = reasons.filter((r) => r === 'handshake_limit').length;
    const timedOut = reasons.filter((r) => r === 'handshake_timeout').length;
    expect(limited + timedOut).toBe(MAX_PENDING * 4);
    expect(limited).toBeGreaterThanOrEqual(MAX_PENDING);
    expect(timedOut).toBeGreaterThanOrEqual(MAX_PENDING);
    expect(hbone.pendingHandshakes).toBe(0);
    // Once the flood has timed out, new tunnels handshake again.
    expect(await echoThroughTunnel()).toBe('ping');
    established.destroy();
  }, 60_000);

  it('slowloris: a session that never completes its CONNECT headers is closed at the header timeout', async () => {
    const n = refused.length;
    const silent = rawTls(clientLeaf);
    const partial = rawTls(clientLeaf);
    await Promise.all([silent, partial].map((s) => new Promise((r) => s.once('secureConnect', r))));
    silent.resume();
    partial.resume();
    // HEADERS without END_HEADERS (a header block that goes on forever), then nothing.
    partial.write(Buffer.concat([PREFACE, EMPTY_SETTINGS, frame(1, 0x1, 1, Buffer.from([0x82, 0x86]))]));
    const started = Date.now();
    expect(await closed(silent, HEADER_MS + DEADLINE_MS)).toBe('closed');
    expect(await closed(partial, HEADER_MS + DEADLINE_MS)).toBe('closed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(HEADER_MS - 100);
    expect(refused.slice(n).sort()).toEqual(['header_timeout', 'header_timeout']);
    expect(await echoThroughTunnel()).toBe('ping');
  });

  it('CONNECTs that never send data stay bounded to their session; closing it frees every one', async () => {
    const idle = h2connect(`https://127.0.0.1:${tunnelPort}`, { createConnection: () => rawTls(clientLeaf) });
    idle.on('error', () => {});
    const streams = await Promise.all(
      Array.from({ length: 200 }, async () => {
        const st = idle.request({ ':method': 'CONNECT', ':authority': `127.0.0.1:${backendAddr.port}` });
        st.on('error', () => {});
        await new Promise((r) => st.once('response', r));
        return st;
      }),
    );
    expect(streams.length).toBe(200);
    expect(owner.live.size).toBeGreaterThanOrEqual(200);
    // The idle streams past the header timeout do not stop another tunnel.
    await new Promise((r) => setTimeout(r, HEADER_MS + 200));
    expect(idle.destroyed).toBe(false);
    expect(await echoThroughTunnel()).toBe('ping');
    idle.destroy();
    await until('idle streams freed', () => owner.live.size === 0);
  });
});
