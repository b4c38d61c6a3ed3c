// Both gRPC clients against `ward ca serve`'s server over a real Unix socket: first snapshot, rotation
// pushed, CA restart, PermissionDenied and InvalidArgument, and bad bytes in either direction.
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeBundle } from '../../../src/svid/bundle.ts';
import { type CaRegistry, DevCaServer } from '../../../src/svid/ca-server.ts';
import {
  DelegatedIdentitySource,
  parseDelegatedBundles,
  parseDelegatedSvids,
} from '../../../src/svid/delegated-identity-client.ts';
import { type DevCa, initCaDir } from '../../../src/svid/dev-ca.ts';
import { services, WORKLOAD_HEADER } from '../../../src/svid/grpc-protos.ts';
import { createIdentityStore } from '../../../src/svid/identity-store.ts';
import type { SvidSnapshot } from '../../../src/svid/source.ts';
import { parseX509SvidResponse, WorkloadApiSource } from '../../../src/svid/workload-api-client.ts';
import { tempDir, testLogger, until } from './helpers.ts';

const TD = 'spiffe.cilium';
const A = `spiffe://${TD}/identity/1001`;
const B = `spiffe://${TD}/identity/1002`;
const C = `spiffe://${TD}/identity/1003`;
const FAST = { initialMs: 50, maxMs: 200, multiplier: 2 };

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
let fedCa: DevCa;
let socket: string;
const closers: (() => Promise<void> | void)[] = [];

function registry(over: Partial<CaRegistry> = {}): CaRegistry {
  return {
    delegate: 'authorized',
    federated: new Map([['other.test', makeBundle('other.test', fedCa.bundlePem())]]),
    entries: [
      { spiffeId: A, selectors: ['cilium:mutual-auth'], workload: true },
      { spiffeId: B, selectors: ['cilium:mutual-auth'], workload: true },
      { spiffeId: C, selectors: ['cilium:mutual-auth', 'k8s:ns:other'], workload: false },
    ],
    ...over,
  };
}

async function serve(ttlMs = 3_600_000, reg = registry()): Promise<DevCaServer> {
  const server = new DevCaServer({ ca, socketPath: socket, ttlMs, registry: reg, log: testLogger().log });
  await server.start();
  closers.push(() => server.close());
  return server;
}

function delegated(selectors?: string[]): DelegatedIdentitySource {
  const s = new DelegatedIdentitySource({
    socket,
    selectors,
    trustDomain: TD,
    log: testLogger().log,
    backoff: FAST,
  });
  closers.push(() => s.close());
  s.start();
  return s;
}

function workload(): WorkloadApiSource {
  const s = new WorkloadApiSource({ socket: `unix://${socket}`, log: testLogger().log, backoff: FAST });
  closers.push(() => s.close());
  s.start();
  return s;
}

function ids(s: SvidSnapshot | null | undefined): string[] {
  return s ? s.svids.map((v) => v.spiffeId) : [];
}

function serialOf(s: SvidSnapshot | null | undefined, id: string): string | undefined {
  return s?.svids.find((v) => v.spiffeId === id)?.serial;
}

beforeEach(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  fedCa = await initCaDir(join(tmp.dir, 'fed'), 'other.test');
  socket = join(tmp.dir, 'api.sock');
});

afterEach(async () => {
  try {
    for (const c of closers.splice(0).reverse()) await c();
  } finally {
    tmp.cleanup();
  }
});

describe('Delegated Identity API client against ward ca serve', () => {
  it('gets the first snapshot: SVIDs matching its selectors, own and federated bundles', async () => {
    await serve();
    const src = delegated();
    const snap = await until(() => src.current(), 5000, 'first snapshot');
    expect(ids(snap).sort()).toEqual([A, B]);
    expect([...snap.bundles.keys()].sort()).toEqual(['other.test', TD]);
    expect(snap.federatesWith).toEqual(['spiffe://other.test']);
    expect(src.state()).toBe('Available');
    const both = delegated(['cilium:mutual-auth', 'k8s:ns:other']);
    expect(ids(await until(() => both.current(), 5000)).sort()).toEqual([A, B, C]);
  });

  it('receives each rotation pushed at half-life (short TTL)', async () => {
    await serve(1600);
    const src = delegated();
    const first = serialOf(await until(() => src.current()), A);
    const rotated = await until(
      () => {
        const s = serialOf(src.current(), A);
        return s !== undefined && s !== first ? s : undefined;
      },
      4000,
      'rotation',
    );
    expect(rotated).not.toBe(first);
  });

  it('keeps the old valid SVIDs while the CA restarts, then takes the new ones', async () => {
    const server = await serve();
    const src = delegated();
    const store = createIdentityStore({ source: src, log: testLogger().log });
    closers.push(() => store.close());
    const before = serialOf(await until(() => src.current()), A);
    await server.close();
    await until(() => src.state() === 'Unavailable', 3000, 'Unavailable');
    expect(serialOf(src.current(), A)).toBe(before);
    expect(store.view().secureContext(A)).toBeTruthy();
    // A new CA process: same root, fresh issuance.
    await serve();
    const after = await until(
      () => {
        const s = serialOf(src.current(), A);
        return s !== before ? s : undefined;
      },
      5000,
      'new SVID after restart',
    );
    expect(after).toBeDefined();
    expect(src.state()).toBe('Available');
    expect(store.view().credentials(A)?.serial).toBe(after);
  });

  it('drops the SVIDs on PermissionDenied "caller not configured as an authorized delegate" and retries', async () => {
    const server = await serve();
    const { log, lines } = testLogger();
    const src = new DelegatedIdentitySource({ socket, log, backoff: FAST });
    closers.push(() => src.close());
    src.start();
    await until(() => src.current());
    await server.update(registry({ delegate: 'unauthorized' }));
    await until(() => src.current() === null, 3000, 'SVIDs withdrawn');
    expect(src.state()).toBe('Unavailable');
    expect(
      lines.some((l) =>
        String(l.msg).includes('PERMISSION_DENIED: caller not configured as an authorized delegate'),
      ),
    ).toBe(true);
    await server.update(registry());
    expect(ids(await until(() => src.current(), 3000, 'SVIDs back')).sort()).toEqual([A, B]);
  });

  it('reports PermissionDenied "no identity issued" and InvalidArgument for bad requests', async () => {
    await serve(3_600_000, registry({ delegate: 'no-identity' }));
    const { delegated: Delegated } = services();
    const client = new Delegated(`unix://${socket}`, grpc.credentials.createInsecure());
    closers.push(() => client.close());
    const firstError = (req: object) =>
      new Promise<grpc.ServiceError>((resolve) => {
        const call = (
          client as unknown as Record<string, (r: object) => grpc.ClientReadableStream<unknown>>
        ).SubscribeToX509SVIDs?.call(client, req);
        call?.on('error', resolve);
        call?.on('data', () => {});
      });
    const denied = await firstError({ selectors: [{ type: 'cilium', value: 'mutual-auth' }] });
    expect([denied.code, denied.details]).toEqual([grpc.status.PERMISSION_DENIED, 'no identity issued']);
    const both = await firstError({ selectors: [{ type: 'cilium', value: 'mutual-auth' }], pid: 42 });
    expect(both.code).toBe(grpc.status.INVALID_ARGUMENT);
    const neither = await firstError({});
    expect(neither.code).toBe(grpc.status.INVALID_ARGUMENT);
    const badSel = await firstError({ selectors: [{ type: 'a:b', value: 'x' }] });
    expect([badSel.code, badSel.details]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      'could not parse provided selectors',
    ]);
  });
});

describe('clients stop on InvalidArgument (no retry)', () => {
  it.each(['delegated', 'workload'] as const)(
    '%s client makes one call, then stays Unavailable',
    async (kind) => {
      let calls = 0;
      const server = new grpc.Server();
      const refuse = (call: grpc.ServerWritableStream<unknown, unknown>) => {
        calls++;
        call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'bad request' });
      };
      const { workload: W, delegated: D } = services();
      server.addService(W.service, { FetchX509SVID: refuse, FetchX509Bundles: refuse });
      server.addService(D.service, { SubscribeToX509SVIDs: refuse, SubscribeToX509Bundles: refuse });
      await new Promise<void>((r, j) =>
        server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
          e ? j(e) : r(),
        ),
      );
      closers.push(() => server.forceShutdown());
      const src = kind === 'delegated' ? delegated() : workload();
      await until(() => calls >= 2, 3000, 'both streams called');
      await new Promise((r) => setTimeout(r, 500));
      expect(calls).toBe(2);
      expect(src.state()).toBe('Unavailable');
      expect(src.current()).toBeUndefined();
    },
  );
});

describe('Workload API client against ward ca serve', () => {
  it('gets the first snapshot: workload identities in order, bundle under the SVID trust domain, federated bundles', async () => {
    await serve();
    const src = workload();
    const snap = await until(() => src.current(), 5000);
    expect(ids(snap)).toEqual([A, B]);
    expect([...snap.bundles.keys()].sort()).toEqual(['other.test', TD]);
    expect(snap.bundles.get(TD)?.authorities[0]?.der.equals(ca.certificate.der)).toBe(true);
  });

  it('receives rotations, and survives a CA restart keeping the old SVID meanwhile', async () => {
    const server = await serve(1600);
    const src = workload();
    const first = serialOf(await until(() => src.current()), A);
    const second = await until(
      () => {
        const s = serialOf(src.current(), A);
        return s !== first ? s : undefined;
      },
      4000,
      'rotation',
    );
    await server.close();
    await until(() => src.state() === 'Unavailable', 3000);
    expect(serialOf(src.current(), A)).toBe(second);
    await serve(1600);
    await until(
      () => src.state() === 'Available' && serialOf(src.current(), A) !== second,
      5000,
      'reconnect',
    );
  });

  it('on PermissionDenied (no workload identity) publishes null, keeps retrying, recovers when one is registered', async () => {
    const server = await serve(
      3_600_000,
      registry({ entries: [{ spiffeId: A, selectors: ['x:y'], workload: false }] }),
    );
    const src = workload();
    await until(() => src.current() === null, 3000, 'null snapshot');
    expect(src.state()).toBe('Unavailable');
    await server.update(registry());
    expect(ids(await until(() => src.current(), 3000, 'recovered'))).toEqual([A, B]);
  });

  it('the server answers InvalidArgument "security header missing from request" without the header', async () => {
    await serve();
    const { workload: Workload } = services();
    const client = new Workload(`unix://${socket}`, grpc.credentials.createInsecure());
    closers.push(() => client.close());
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const call = (
        client as unknown as Record<
          string,
          (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>
        >
      ).FetchX509SVID?.call(client, {}, new grpc.Metadata());
      call?.on('error', resolve);
      call?.on('data', () => {});
    });
    expect([err.code, err.details]).toEqual([
      grpc.status.INVALID_ARGUMENT,
      'security header missing from request',
    ]);
    const withHeader = new grpc.Metadata();
    withHeader.set(WORKLOAD_HEADER, 'true');
    const ok = await new Promise<unknown>((resolve, reject) => {
      const call = (
        client as unknown as Record<
          string,
          (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<unknown>
        >
      ).FetchX509Bundles?.call(client, {}, withHeader);
      call?.on('data', resolve);
      call?.on('error', reject);
    });
    expect(Object.keys((ok as { bundles: object }).bundles).sort()).toEqual([
      'spiffe://other.test',
      `spiffe://${TD}`,
    ]);
  });
});

describe('Workload API response rules (facts §6 E)', () => {
  it('zero SVIDs is an error; duplicate non-empty hints keep the first; empty hints are all kept', async () => {
    expect(() => parseX509SvidResponse({ svids: [], crl: [], federated_bundles: {} })).toThrow(
      expect.objectContaining({ code: 'SVID_BAD_RESPONSE' }),
    );
    const a = await ca.issue(A);
    const b = await ca.issue(B);
    const c = await ca.issue(C);
    const entry = (s: typeof a, hint: string) => ({
      spiffe_id: s.spiffeId,
      x509_svid: Buffer.concat(s.chain as Buffer[]),
      x509_svid_key: s.key,
      bundle: ca.certificate.der,
      hint,
    });
    const parsed = parseX509SvidResponse({
      svids: [entry(a, 'internal'), entry(b, 'internal'), entry(c, ''), entry(b, '')],
      crl: [],
      federated_bundles: { 'spiffe://other.test': fedCa.certificate.der, bare: fedCa.certificate.der },
    });
    expect(parsed.svids.map((s) => s.spiffeId)).toEqual([A, C, B]);
    expect([...parsed.bundles.keys()].sort()).toEqual(['bare', 'other.test', TD]);
  });

  it('refuses a bad entry on its own (truncated DER, key of another SVID, id mismatch) and keeps the good ones', async () => {
    const a = await ca.issue(A);
    const b = await ca.issue(B);
    const ok = {
      spiffe_id: A,
      x509_svid: a.chain[0] as Buffer,
      x509_svid_key: a.key,
      bundle: ca.certificate.der,
      hint: '',
    };
    const parsed = parseX509SvidResponse({
      svids: [
        { ...ok, spiffe_id: B, x509_svid: (b.chain[0] as Buffer).subarray(0, 50) },
        { ...ok, spiffe_id: B, x509_svid: b.chain[0] as Buffer },
        { ...ok, spiffe_id: C },
        ok,
      ],
      crl: [],
      federated_bundles: {},
    });
    expect(parsed.svids.map((s) => s.spiffeId)).toEqual([A]);
    expect(parsed.rejected.map((r) => r.code)).toEqual([
      'SVID_MALFORMED_CERT',
      'SVID_KEY_MISMATCH',
      'SVID_BAD_RESPONSE',
    ]);
  });
});

describe('bad bytes on the socket', () => {
  it('the CA keeps serving after a client writes garbage', async () => {
    await serve();
    await new Promise<void>((resolve) => {
      const c = createConnection(socket, () => {
        c.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\xff\xff\xffgarbage garbage'));
        c.write(Buffer.alloc(4096, 0xa5));
        setTimeout(() => {
          c.destroy();
          resolve();
        }, 100);
      });
      c.on('error', () => resolve());
    });
    const src = workload();
    expect(ids(await until(() => src.current(), 5000))).toEqual([A, B]);
  });

  it('a client facing a server that answers garbage stays Initializing/Unavailable, retries, and never throws', async () => {
    let connections = 0;
    const open = new Set<import('node:net').Socket>();
    const junk: Server = createServer((s) => {
      connections++;
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => {});
      s.end(Buffer.from('\x00\x00\x12\x04\x00\x00\x00\x00\x00 this is not http/2 at all'));
    });
    await new Promise<void>((r) => junk.listen(socket, r));
    closers.push(
      () =>
        new Promise<void>((r) => {
          junk.close(() => r());
          for (const s of open) s.destroy();
        }),
    );
    const d = delegated();
    const w = workload();
    await until(() => connections >= 3, 5000, 'reconnect attempts');
    expect(d.current()).toBeUndefined();
    expect(w.current()).toBeUndefined();
    expect(['Initializing', 'Unavailable']).toContain(d.state());
  });
});

describe('Delegated API response rules (facts §6 F, client side)', () => {
  it('refuses entries outside the trust domain or with a mismatched id, keeps the rest; bundle keys in both forms', async () => {
    const a = await ca.issue(A);
    const foreign = await fedCa.issue('spiffe://other.test/x');
    const entry = (s: typeof a, td: string, path: string) => ({
      x509_svid: {
        cert_chain: [...s.chain] as Buffer[],
        id: { trust_domain: td, path },
        expires_at: 0,
        hint: '',
      },
      x509_svid_key: s.key,
    });
    const parsed = parseDelegatedSvids(
      {
        x509_svids: [
          entry(a, TD, '/identity/1001'),
          entry(foreign, 'other.test', '/x'),
          entry(a, TD, '/identity/9999'),
        ],
        federates_with: ['spiffe://other.test'],
      },
      TD,
    );
    expect(parsed.svids.map((s) => s.spiffeId)).toEqual([A]);
    expect(parsed.rejected.map((r) => r.code)).toEqual(['SVID_UNKNOWN_TRUST_DOMAIN', 'SVID_BAD_RESPONSE']);
    const bundles = parseDelegatedBundles({
      ca_certificates: { [`spiffe://${TD}`]: ca.certificate.der, 'other.test': fedCa.certificate.der },
    });
    expect([...bundles.keys()].sort()).toEqual(['other.test', TD]);
  });

  it('a stream message the client cannot use ends the call and is retried; the process keeps going', async () => {
    let calls = 0;
    const a = await ca.issue(A);
    const server = new grpc.Server();
    const { workload: W } = services();
    server.addService(W.service, {
      FetchX509SVID: (call: grpc.ServerWritableStream<unknown, unknown>) => {
        calls++;
        // First call: zero SVIDs (an error for the client), then garbage DER; third call: a good SVID.
        if (calls === 1) call.write({ svids: [], crl: [], federated_bundles: {} });
        else if (calls === 2)
          call.write({
            svids: [
              {
                spiffe_id: A,
                x509_svid: Buffer.from([0x30, 0x84, 1]),
                x509_svid_key: a.key,
                bundle: Buffer.alloc(0),
                hint: '',
              },
            ],
          });
        else
          call.write({
            svids: [
              {
                spiffe_id: A,
                x509_svid: a.chain[0],
                x509_svid_key: a.key,
                bundle: ca.certificate.der,
                hint: '',
              },
            ],
          });
      },
      FetchX509Bundles: () => {},
    });
    await new Promise<void>((r, j) =>
      server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())),
    );
    closers.push(() => server.forceShutdown());
    const src = workload();
    const snap = await until(() => src.current(), 5000, 'good snapshot');
    expect(calls).toBe(3);
    expect(ids(snap)).toEqual([A]);
    expect(src.state()).toBe('Available');
  });
});
