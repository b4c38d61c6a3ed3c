// The sources' memo of own SVIDs: a full snapshot that repeats an SVID byte for byte reuses it (nothing
// parsed, imported or checked again), anything whose certificate or key bytes changed is parsed with
// every check, and the memo is sized by what the last message held, so a node holding more SVIDs than
// the certificate parse cache does not fall off a cliff.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/log.ts';
import { makeBundle } from '../../../src/svid/bundle.ts';
import { certificateParses, PARSE_CACHE_ENTRIES } from '../../../src/svid/certificate.ts';
import { parseDelegatedSvids } from '../../../src/svid/delegated-identity-client.ts';
import { type DevCa, type IssuedSvid, initCaDir } from '../../../src/svid/dev-ca.ts';
import type { SubscribeToX509SvidsResponse, X509SvidResponse } from '../../../src/svid/grpc-protos.ts';
import { createIdentityStore } from '../../../src/svid/identity-store.ts';
import { OwnSvidMemo } from '../../../src/svid/own-svid-memo.ts';
import { SourceBase, type SvidSnapshot } from '../../../src/svid/source.ts';
import { parseX509SvidResponse } from '../../../src/svid/workload-api-client.ts';
import { tempDir, testLogger } from './helpers.ts';

const TD = 'spiffe.cilium';
const A = `spiffe://${TD}/identity/5001`;
const B = `spiffe://${TD}/identity/5002`;
const C = `spiffe://${TD}/identity/5003`;

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
const issued = new Map<string, IssuedSvid>();

beforeAll(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  for (const id of [A, B, C]) issued.set(id, await ca.issue(id));
});

afterAll(() => tmp.cleanup());

function get(id: string): IssuedSvid {
  const s = issued.get(id);
  if (s === undefined) throw new Error(`no SVID issued for ${id}`);
  return s;
}

/** A SubscribeToX509SVIDs message; each entry's chain and key are fresh copies, as a new message has. */
function delegated(entries: { id: string; chain: readonly Buffer[]; key: Buffer; hint?: string }[]) {
  return {
    x509_svids: entries.map((e) => ({
      x509_svid: {
        cert_chain: e.chain.map((d) => Buffer.from(d)),
        id: { trust_domain: TD, path: e.id.slice(`spiffe://${TD}`.length) },
        expires_at: 0,
        hint: e.hint ?? '',
      },
      x509_svid_key: Buffer.from(e.key),
    })),
    federates_with: [],
  } satisfies SubscribeToX509SvidsResponse;
}

const entry = (id: string, s: IssuedSvid = get(id)) => ({ id, chain: s.chain, key: s.key });

describe('own SVID memo: Delegated Identity API messages', () => {
  it('a message repeating the held SVIDs reuses them: nothing is parsed, the same objects come back', () => {
    const memo = new OwnSvidMemo();
    const first = parseDelegatedSvids(delegated([entry(A), entry(B)]), TD, memo);
    expect(first.svids.map((s) => s.spiffeId)).toEqual([A, B]);
    expect(memo.stats()).toEqual({ parsed: 2, reused: 0 });
    const certs = certificateParses();
    const again = parseDelegatedSvids(delegated([entry(A), entry(B)]), TD, memo);
    expect(again.rejected).toEqual([]);
    expect(again.svids[0]).toBe(first.svids[0]);
    expect(again.svids[1]).toBe(first.svids[1]);
    expect(memo.stats()).toEqual({ parsed: 2, reused: 2 });
    expect(certificateParses()).toBe(certs);
    expect(memo.size).toBe(2);
  });

  it('picks up a rotated SVID: only the changed one is parsed, the others are reused', async () => {
    const memo = new OwnSvidMemo();
    const first = parseDelegatedSvids(delegated([entry(A), entry(B), entry(C)]), TD, memo);
    const rotated = await ca.issue(B);
    const certs = certificateParses();
    const next = parseDelegatedSvids(delegated([entry(A), entry(B, rotated), entry(C)]), TD, memo);
    expect(memo.stats()).toEqual({ parsed: 4, reused: 2 });
    expect(certificateParses()).toBe(certs + 1);
    expect(next.svids[0]).toBe(first.svids[0]);
    expect(next.svids[2]).toBe(first.svids[2]);
    expect(next.svids[1]?.chain[0]?.der.equals(rotated.chain[0] as Buffer)).toBe(true);
    expect(next.svids[1]?.serial).not.toBe(first.svids[1]?.serial);
  });

  it('a changed key under the same certificate is parsed and checked again: a key of another SVID is refused', () => {
    const memo = new OwnSvidMemo();
    parseDelegatedSvids(delegated([entry(A)]), TD, memo);
    const wrongKey = parseDelegatedSvids(delegated([{ ...entry(A), key: get(B).key }]), TD, memo);
    expect(wrongKey.svids).toEqual([]);
    expect(wrongKey.rejected).toMatchObject([{ spiffeId: A, code: 'SVID_KEY_MISMATCH' }]);
    expect(memo.stats()).toEqual({ parsed: 2, reused: 0 });
    expect(memo.size).toBe(0);
    // A refused SVID is not held: the good pair again is a new SVID, parsed and checked.
    const back = parseDelegatedSvids(delegated([entry(A)]), TD, memo);
    expect(back.svids.map((s) => s.spiffeId)).toEqual([A]);
    expect(memo.stats()).toEqual({ parsed: 3, reused: 0 });
  });

  it("a changed certificate under a held ID is checked against the claimed ID (another ID's certificate is refused)", () => {
    const memo = new OwnSvidMemo();
    parseDelegatedSvids(delegated([entry(A)]), TD, memo);
    const swapped = parseDelegatedSvids(delegated([{ ...entry(B), id: A }]), TD, memo);
    expect(swapped.rejected).toMatchObject([{ spiffeId: A, code: 'SVID_BAD_RESPONSE' }]);
    expect(swapped.rejected[0]?.message).toContain('does not match');
  });

  it('an SVID the memo holds is still refused for a trust domain outside the configured one', () => {
    const memo = new OwnSvidMemo();
    parseDelegatedSvids(delegated([entry(A)]), TD, memo);
    const other = parseDelegatedSvids(delegated([entry(A)]), 'other.test', memo);
    expect(other.rejected).toMatchObject([{ spiffeId: A, code: 'SVID_UNKNOWN_TRUST_DOMAIN' }]);
  });

  it('a new hint on unchanged bytes is taken without parsing', () => {
    const memo = new OwnSvidMemo();
    parseDelegatedSvids(delegated([entry(A)]), TD, memo);
    const hinted = parseDelegatedSvids(delegated([{ ...entry(A), hint: 'internal' }]), TD, memo);
    expect(hinted.svids[0]?.hint).toBe('internal');
    expect(memo.stats()).toEqual({ parsed: 1, reused: 1 });
  });
});

describe('own SVID memo: Workload API responses', () => {
  const response = (svids: { id: string; s: IssuedSvid }[]): X509SvidResponse => ({
    svids: svids.map(({ id, s }) => ({
      spiffe_id: id,
      x509_svid: Buffer.concat(s.chain.map((d) => Buffer.from(d))),
      x509_svid_key: Buffer.from(s.key),
      bundle: Buffer.from(ca.certificate.der),
      hint: '',
    })),
    crl: [],
    federated_bundles: {},
  });

  it('reuses unchanged SVIDs (concatenated DER); a response refused whole keeps the last one held', () => {
    const memo = new OwnSvidMemo();
    const first = parseX509SvidResponse(response([{ id: A, s: get(A) }]), memo);
    expect(parseX509SvidResponse(response([{ id: A, s: get(A) }]), memo).svids[0]).toBe(first.svids[0]);
    expect(memo.stats()).toEqual({ parsed: 1, reused: 1 });
    // Zero usable SVIDs: the response is refused (thrown), the memo keeps what it held.
    const bad = response([{ id: A, s: { ...get(A), key: get(B).key } }]);
    expect(() => parseX509SvidResponse(bad, memo)).toThrow(/no usable SVID/);
    expect(memo.size).toBe(1);
    expect(parseX509SvidResponse(response([{ id: A, s: get(A) }]), memo).svids[0]).toBe(first.svids[0]);
    expect(memo.stats()).toEqual({ parsed: 2, reused: 2 });
  });
});

class ManualSource extends SourceBase {
  readonly kind = 'delegated' as const;
  constructor(log: Logger) {
    super(log);
  }
  start(): void {}
  refresh(): void {}
  async close(): Promise<void> {}
  push(s: SvidSnapshot): void {
    this.publish(s);
  }
}

/**
 * `n` certificates for distinct IDs made from one issued SVID by rewriting the digits of its URI SAN in
 * place: the same key fits them all. Own-SVID parsing does not check the CA's signature (ward takes its
 * own SVIDs from its source as they are), so they parse like issued ones, at a fraction of the cost.
 */
async function manyEntries(n: number): Promise<{ id: string; chain: Buffer[]; key: Buffer }[]> {
  const base = await ca.issue(`spiffe://${TD}/identity/1000000`);
  const der = base.chain[0] as Buffer;
  const digits = der.indexOf(Buffer.from('/identity/1000000')) + '/identity/'.length;
  return Array.from({ length: n }, (_, i) => {
    const cert = Buffer.from(der);
    cert.write(String(1_000_000 + i), digits, 'latin1');
    return { id: `spiffe://${TD}/identity/${1_000_000 + i}`, chain: [cert], key: base.key };
  });
}

describe('own SVID memo: more SVIDs than the certificate parse cache', () => {
  it(`a store holding ${PARSE_CACHE_ENTRIES + 1} SVIDs takes a one-SVID rotation parsing one certificate`, async () => {
    const n = PARSE_CACHE_ENTRIES + 1;
    const entries = await manyEntries(n);
    const { log } = testLogger();
    const source = new ManualSource(log);
    const store = createIdentityStore({ source, log });
    const memo = new OwnSvidMemo();
    const bundles = new Map([[TD, makeBundle(TD, ca.bundlePem())]]);
    const deliver = (list: typeof entries) => {
      const parsed = parseDelegatedSvids(delegated(list), TD, memo);
      expect(parsed.rejected).toEqual([]);
      source.push({ svids: parsed.svids, bundles, federatesWith: [] });
      return parsed;
    };
    try {
      const loaded = deliver(entries);
      await store.view().built();
      expect(store.view().identities()).toHaveLength(n);
      const last = entries[n - 1] as (typeof entries)[number];
      const unchanged = store.view().secureContext(last.id);
      expect(unchanged).toBeTruthy();

      const rotated = await ca.issue(entries[0]?.id as string);
      const certs = certificateParses();
      const before = memo.stats();
      const next = deliver([
        { ...(entries[0] as (typeof entries)[number]), chain: [...rotated.chain], key: rotated.key },
        ...entries.slice(1),
      ]);
      expect(memo.stats()).toEqual({ parsed: before.parsed + 1, reused: before.reused + n - 1 });
      expect(certificateParses()).toBe(certs + 1);
      // The rotation is picked up; the unchanged identities keep their contexts.
      const serial = store.view().credentials(entries[0]?.id as string)?.serial;
      expect(serial).toBe(next.svids[0]?.serial);
      expect(serial).not.toBe(loaded.svids[0]?.serial);
      expect(store.view().secureContext(last.id)).toBe(unchanged);
      expect(store.stats().rotations).toBe(n + 1);
    } finally {
      await store.close();
    }
  }, 120_000);
});
