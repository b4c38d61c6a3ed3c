// A thread's CredentialView: a snapshot that changes few identities is built inside apply(); one that
// changes many is built BUILD_CHUNK contexts per event-loop turn, and an identity asked for before its
// chunk ran is built on demand, so no lookup ever finds an identity without a context. Unchanged
// identities keep their context objects; failures in a chunk go to onError.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BUILD_CHUNK,
  type CredentialsSnapshot,
  createCredentialView,
  type IdentityCredentials,
} from '../../../src/svid/credentials.ts';
import { type DevCa, initCaDir } from '../../../src/svid/dev-ca.ts';
import type { SvidError } from '../../../src/svid/errors.ts';
import { credentialsOf, tempDir } from './helpers.ts';

const TD = 'spiffe.cilium';
const MANY = BUILD_CHUNK * 3 + 1;
const ids = Array.from({ length: MANY }, (_, i) => `spiffe://${TD}/identity/${6000 + i}`);

let ca: DevCa;
/** Two generations of credentials per identity: the first load and a rotation. */
let first: IdentityCredentials[];
let second: IdentityCredentials[];

async function credentials(id: string): Promise<IdentityCredentials> {
  return credentialsOf(await ca.issue(id));
}

function snapshot(version: number, identities: readonly IdentityCredentials[]): CredentialsSnapshot {
  return { version, state: 'Available', identities, bundles: [{ trustDomain: TD, caPem: ca.bundlePem() }] };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

beforeAll(async () => {
  const tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  first = await Promise.all(ids.map(credentials));
  second = await Promise.all(ids.map(credentials));
  return () => tmp.cleanup();
});

describe('credential view', () => {
  it(`builds a snapshot changing up to ${BUILD_CHUNK} identities inside apply(), and returns its failures`, () => {
    const view = createCredentialView();
    const broken = { ...(first[1] as IdentityCredentials), keyPem: (first[2] as IdentityCredentials).keyPem };
    const errors = view.apply(snapshot(1, [first[0] as IdentityCredentials, broken]));
    expect(view.pending()).toBe(0);
    expect(errors.map((e) => e.code)).toEqual(['SVID_KEY_MISMATCH']);
    expect(view.identities()).toEqual([ids[0]]);
    expect(view.secureContext(ids[1] as string)).toBeNull();
  });

  it('builds a large change set in chunks between event-loop turns; an identity asked for early is built on demand', async () => {
    const view = createCredentialView();
    expect(view.apply(snapshot(1, first))).toEqual([]);
    // apply() returned without building: every identity is pending, none is missing.
    expect(view.pending()).toBe(MANY);
    expect(view.identities()).toEqual(ids);
    const last = ids[MANY - 1] as string;
    const early = view.secureContext(last);
    expect(early).toBeTruthy();
    expect(view.pending()).toBe(MANY - 1);
    await turn();
    expect(view.pending()).toBe(MANY - 1 - BUILD_CHUNK);
    await view.built();
    expect(view.pending()).toBe(0);
    expect(view.secureContext(last)).toBe(early);
    for (const id of ids) expect(view.secureContext(id)).toBeTruthy();
  });

  it('a rotation of many keeps serving every identity during the chunks and swaps in the new credentials', async () => {
    const view = createCredentialView();
    view.apply(snapshot(1, first));
    await view.built();
    const old = new Map(ids.map((id) => [id, view.secureContext(id)]));
    // All but the first identity rotate; the first is unchanged and keeps its context.
    view.apply(snapshot(2, [first[0] as IdentityCredentials, ...second.slice(1)]));
    expect(view.pending()).toBe(MANY - 1);
    let turns = 0;
    while (view.pending() > 0) {
      // One identity per turn, a different one each time: always a context, always the new serial.
      const i = 1 + ((turns * 7) % (MANY - 1));
      const id = ids[i] as string;
      const ctx = view.secureContext(id);
      expect(ctx).toBeTruthy();
      expect(ctx).not.toBe(old.get(id));
      expect(view.credentials(id)?.serial).toBe(second[i]?.serial);
      await turn();
      turns++;
    }
    expect(turns).toBeGreaterThan(1);
    expect(view.secureContext(ids[0] as string)).toBe(old.get(ids[0] as string));
    for (const [i, id] of ids.entries()) {
      if (i === 0) continue;
      expect(view.secureContext(id)).not.toBe(old.get(id));
      expect(view.credentials(id)?.serial).toBe(second[i]?.serial);
    }
  });

  it('a context that fails to build in a chunk goes to onError and leaves that identity out', async () => {
    const failed: SvidError[] = [];
    const view = createCredentialView({ onError: (e) => failed.push(e) });
    const bad = ids[5] as string;
    const list = first.map((c, i) =>
      i === 5 ? { ...c, keyPem: (first[6] as IdentityCredentials).keyPem } : c,
    );
    expect(view.apply(snapshot(1, list))).toEqual([]);
    await view.built();
    expect(failed.map((e) => e.code)).toEqual(['SVID_KEY_MISMATCH']);
    expect(failed[0]?.message).toContain(bad);
    expect(view.identities()).toHaveLength(MANY - 1);
    expect(view.identities()).not.toContain(bad);
    expect(view.secureContext(bad)).toBeNull();
    expect(view.credentials(bad)).toBeNull();
  });

  it('a newer snapshot applied while chunks are pending supersedes them; an older one is ignored', async () => {
    const view = createCredentialView();
    view.apply(snapshot(1, first));
    view.apply(snapshot(2, second));
    expect(view.apply(snapshot(1, first))).toEqual([]);
    expect(view.version()).toBe(2);
    await view.built();
    for (const [i, id] of ids.entries()) expect(view.credentials(id)?.serial).toBe(second[i]?.serial);
  });
});
