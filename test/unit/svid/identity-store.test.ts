// The identity store: credentials built once per rotation, refresh requested at half-life, still-valid
// SVIDs served while the source is down, expiry → Unavailable (logged and counted), withdrawal on null.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/log.ts';
import { makeBundle } from '../../../src/svid/bundle.ts';
import { type DevCa, initCaDir } from '../../../src/svid/dev-ca.ts';
import { createIdentityStore, type IdentityStore } from '../../../src/svid/identity-store.ts';
import { SourceBase, type SvidSnapshot } from '../../../src/svid/source.ts';
import { parseOwnSvid, type X509Svid } from '../../../src/svid/x509-svid.ts';
import { tempDir, testLogger, until } from './helpers.ts';

const TD = 'spiffe.cilium';
const A = `spiffe://${TD}/identity/3001`;
const B = `spiffe://${TD}/identity/3002`;

class ManualSource extends SourceBase {
  readonly kind = 'files' as const;
  refreshes = 0;
  constructor(log: Logger) {
    super(log);
  }
  start(): void {}
  refresh(): void {
    this.refreshes++;
  }
  async close(): Promise<void> {}
  push(s: SvidSnapshot | null, state: 'Available' | 'Unavailable' = 'Available'): void {
    this.publish(s);
    this.transitionTo(['Initializing', 'Available', 'Unavailable'], state);
  }
  down(): void {
    this.transitionTo(['Initializing', 'Available'], 'Unavailable', 'test');
  }
}

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
let store: IdentityStore | undefined;

async function svid(id: string, ttlMs: number): Promise<X509Svid> {
  // notBefore is backdated 30 s by the CA; make the lifetime start now for the timing tests.
  const s = await ca.issue(id, ttlMs);
  return parseOwnSvid({ chain: s.chain, key: s.key });
}

function snap(svids: X509Svid[]): SvidSnapshot {
  return { svids, bundles: new Map([[TD, makeBundle(TD, ca.bundlePem())]]), federatesWith: [] };
}

beforeAll(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  return () => tmp.cleanup();
});

afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('identity store', () => {
  it('is Initializing until the source answers; undefined → then the credentials, built once per rotation', async () => {
    const src = new ManualSource(testLogger().log);
    store = createIdentityStore({ source: src, log: testLogger().log });
    expect(store.state()).toBe('Initializing');
    expect(store.view().secureContext(A)).toBeUndefined();
    const a1 = await svid(A, 3_600_000);
    src.push(snap([a1]));
    expect(store.state()).toBe('Available');
    const ctx = store.view().secureContext(A);
    expect(ctx).toBeTruthy();
    expect(store.view().secureContext(B)).toBeNull();
    // The same SVID again: no rebuild, same context object, no new version.
    const v = store.snapshot().version;
    src.push(snap([a1]));
    expect(store.view().secureContext(A)).toBe(ctx);
    expect(store.snapshot().identities).toHaveLength(1);
    expect(store.snapshot().version).toBe(v + 1);
    // A rotation: new context.
    src.push(snap([await svid(A, 3_600_000)]));
    expect(store.view().secureContext(A)).not.toBe(ctx);
    expect(store.stats().rotations).toBe(2);
    const cloned = structuredClone(store.snapshot());
    expect(cloned.identities[0]?.spiffeId).toBe(A);
  });

  it('keeps serving while the source is down, asks for a refresh at half-life, then expires the identity', async () => {
    const { log, lines } = testLogger();
    const src = new ManualSource(log);
    store = createIdentityStore({ source: src, log, refreshBackoff: { initialMs: 100, maxMs: 200 } });
    // 32 s lifetime from a notBefore 30 s in the past: half-life has already passed, expiry in ~2 s.
    const a = await svid(A, 2000);
    src.push(snap([a]));
    src.down();
    expect(store.view().secureContext(A)).toBeTruthy();
    await until(() => src.refreshes >= 2, 2000, 'refresh requests');
    expect(store.view().secureContext(A)).toBeTruthy();
    await until(() => store?.stats().expired === 1, 4000, 'expiry');
    expect(store.view().secureContext(A)).toBeNull();
    expect(store.state()).toBe('Unavailable');
    expect(lines.find((l) => l.code === 'SVID_IDENTITY_UNAVAILABLE')).toMatchObject({
      spiffeId: A,
      expiredTotal: 1,
    });
  });

  it('drops identities that leave the snapshot, and everything when the source withdraws (null)', async () => {
    const src = new ManualSource(testLogger().log);
    store = createIdentityStore({ source: src, log: testLogger().log });
    src.push(snap([await svid(A, 3_600_000), await svid(B, 3_600_000)]));
    expect(store.view().identities()).toEqual([A, B]);
    src.push(snap([await svid(B, 3_600_000)]));
    expect(store.view().identities()).toEqual([B]);
    src.push(null, 'Unavailable');
    expect(store.view().identities()).toEqual([]);
    expect(store.view().secureContext(B)).toBeNull();
    expect(store.view().bundles().has(TD)).toBe(true);
  });

  it('refuses an SVID that is already expired', async () => {
    const src = new ManualSource(testLogger().log);
    store = createIdentityStore({ source: src, log: testLogger().log });
    const a = await ca.issue(A, 1000, Date.now() - 60_000);
    src.push(snap([parseOwnSvid({ chain: a.chain, key: a.key })]));
    expect(store.view().secureContext(A)).toBeNull();
    expect(store.stats().refusedExpired).toBe(1);
  });
});
