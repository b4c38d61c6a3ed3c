// Hostile input against ward's parsers, with fast-check: the config loader, policy manifests, X.509
// certificate and SVID parsing, SPIFFE bundle documents, and the SVID API response handlers (the code
// behind both gRPC streams) fed garbage. The property everywhere: a parser returns or throws ward's own
// error (a stable `code`); it never throws a TypeError/RangeError, never hangs, never accepts a mutated
// certificate as a different valid identity, and does not grow the heap across runs.
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseConfigText } from '../../../src/config/load.ts';
import { WardError } from '../../../src/errors.ts';
import { parseDocuments, splitDocuments } from '../../../src/policy/manifest.ts';
import { makeBundle, parseSpiffeBundle } from '../../../src/svid/bundle.ts';
import { certificateDers, parseCertificate } from '../../../src/svid/certificate.ts';
import { parseDelegatedBundles, parseDelegatedSvids } from '../../../src/svid/delegated-identity-client.ts';
import { type DevCa, type IssuedSvid, initCaDir } from '../../../src/svid/dev-ca.ts';
import { verifyPeerChainBytes } from '../../../src/svid/verify.ts';
import { parseX509SvidResponse } from '../../../src/svid/workload-api-client.ts';
import { parseOwnSvid } from '../../../src/svid/x509-svid.ts';
import { tempDir } from '../svid/helpers.ts';

const TD = 'spiffe.cilium';
const ID = `spiffe://${TD}/identity/1001`;

/** Runs fn; a thrown error must be one of ward's (with a code), anything else fails the property. */
function wardErrorsOnly(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof WardError && typeof err.code === 'string' && err.code.length > 0) return true;
    throw err;
  }
}

function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** A byte string derived from `good`: bit flips, truncation, an inserted run, or a splice with junk. */
const mutated = (good: Buffer) =>
  fc.oneof(
    fc
      .array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      })
      .map((flips) => {
        const b = Buffer.from(good);
        for (const [i, x] of flips) b[i] = (b[i] ?? 0) ^ x;
        return b;
      }),
    fc.nat(good.length - 1).map((n) => good.subarray(0, n)),
    fc
      .tuple(fc.nat(good.length), fc.uint8Array({ minLength: 1, maxLength: 64 }))
      .map(([i, junk]) => Buffer.concat([good.subarray(0, i), junk, good.subarray(i)])),
    fc.uint8Array({ maxLength: 1500 }).map((u) => Buffer.from(u)),
  );

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
let svid: IssuedSvid;

beforeAll(async () => {
  tmp = tempDir('ward-fuzz-');
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  svid = await ca.issue(ID);
});

afterAll(() => tmp?.cleanup());

/** YAML-ish values: nested maps and lists of scalars, with the keys the real schemas use. */
const KEYS = [
  'apiVersion',
  'kind',
  'metadata',
  'name',
  'namespace',
  'spec',
  'specs',
  'endpointSelector',
  'ingress',
  'egress',
  'fromEndpoints',
  'toEndpoints',
  'toPorts',
  'ports',
  'port',
  'protocol',
  'authentication',
  'mode',
  'matchLabels',
  'matchExpressions',
  'key',
  'operator',
  'values',
  'fromCIDR',
  'toCIDRSet',
  'cidr',
  'except',
  'podSelector',
  'policyTypes',
  'nodeSelector',
  'capture',
  'podCidrs',
  'proxy',
  'workers',
  'mesh',
  'svid',
  'source',
  'policy',
  'inventory',
  'admin',
  'address',
  'log',
  'level',
  'listeners',
  'handshakeTimeout',
];
const scalar = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    'cilium.io/v2',
    'CiliumNetworkPolicy',
    'CiliumClusterwideNetworkPolicy',
    'NetworkPolicy',
    'networking.k8s.io/v1',
    'required',
    'TCP',
    '80',
    '0-65535',
    'In',
    'NotIn',
    'Exists',
    '10.0.0.0/8',
    'auto',
    '5s',
    '0x10',
    'files',
    'delegated',
    '::/0',
    '1e309',
  ),
);
const tree = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, scalar, tie('map'), tie('list')),
  map: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })), tie('node'), {
    maxKeys: 6,
  }),
  list: fc.array(tie('node'), { maxLength: 4 }),
})).node;

/** A "billion laughs" document: n levels of aliases, each doubling the expanded size. */
function aliasBomb(n: number): string {
  const lines = ['a: &a [x]'];
  for (let i = 0; i < n; i++) {
    const prev = i === 0 ? 'a' : `b${i - 1}`;
    lines.push(`b${i}: &b${i} [*${prev}, *${prev}]`);
  }
  return `${lines.join('\n')}\n`;
}

describe('config parser', () => {
  it('random text and random YAML trees: a Config or a ConfigError, never anything else', () => {
    const before = heapAfterGc();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 400 }),
          tree.map((t) => YAML.stringify(t)),
          // Valid shape with random values in it.
          tree.map((t) => YAML.stringify({ capture: { podCidrs: ['10.0.0.0/24'] }, proxy: t, mesh: t })),
          // YAML features that bite: anchors and aliases (billion laughs), tags, deep nesting.
          fc.nat(14).map((n) => `${aliasBomb(n)}capture: { podCidrs: [10.0.0.0/24] }\n`),
          fc.nat(3000).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
          fc.constantFrom('!!binary x', '!!js/function f', '? [a]\n: b', '%YAML 9.9\n---\n', '---\n---\n'),
        ),
        (text) => wardErrorsOnly(() => parseConfigText(text, 'fuzz.yaml')),
      ),
      { numRuns: 1500 },
    );
    expect(heapAfterGc() - before).toBeLessThan(64 << 20);
  });
});

describe('policy manifest parser', () => {
  it('random manifests: policies and issues, never a throw', () => {
    const manifest = fc.oneof(
      fc.string({ maxLength: 400 }),
      tree.map((t) => YAML.stringify(t)),
      fc
        .tuple(
          fc.constantFrom('CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy', 'NetworkPolicy'),
          tree,
          tree,
        )
        .map(([kind, spec, meta]) =>
          YAML.stringify({
            apiVersion: kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'cilium.io/v2',
            kind,
            metadata: typeof meta === 'object' && meta !== null ? { name: 'p', ...meta } : { name: 'p' },
            spec,
          }),
        ),
      fc.array(tree, { maxLength: 3 }).map((ts) => ts.map((t) => YAML.stringify(t)).join('---\n')),
      fc.nat(14).map(aliasBomb),
    );
    fc.assert(
      fc.property(manifest, (text) => {
        const { docs, issues } = splitDocuments('fuzz.yaml', text);
        const parsed = parseDocuments(docs);
        expect(Array.isArray(parsed.policies)).toBe(true);
        for (const i of [...issues, ...parsed.issues]) expect(typeof i.message).toBe('string');
        return true;
      }),
      { numRuns: 1500 },
    );
  });
});

describe('certificate and SVID parsing', () => {
  it('mutated certificates: parsed, or refused with an SVID error; a mutation never verifies', () => {
    const leaf = svid.chain[0] as Buffer;
    const bundles = new Map([[TD, makeBundle(TD, ca.bundlePem())]]);
    fc.assert(
      fc.property(mutated(leaf), (der) => {
        wardErrorsOnly(() => parseCertificate(der));
        wardErrorsOnly(() => certificateDers(der));
        let verified: string | null = null;
        wardErrorsOnly(() => {
          verified = verifyPeerChainBytes(der, bundles).spiffeId;
        });
        // A changed certificate never passes the signature check (unless the change was a no-op).
        if (verified !== null) expect(Buffer.compare(der, leaf) === 0 || der.includes(leaf)).toBe(true);
        return true;
      }),
      { numRuns: 1500 },
    );
  });

  it('mutated SVIDs (chain and key) and PEM text: an SVID only when both are intact', () => {
    const leaf = svid.chain[0] as Buffer;
    fc.assert(
      fc.property(mutated(leaf), mutated(svid.key), fc.boolean(), (chain, key, pem) => {
        const input = pem
          ? {
              chain: `-----BEGIN CERTIFICATE-----\n${chain.toString('base64')}\n-----END CERTIFICATE-----\n`,
              key,
            }
          : { chain, key };
        let got: string | null = null;
        wardErrorsOnly(() => {
          got = parseOwnSvid(input).spiffeId;
        });
        if (got !== null) expect(got).toBe(ID);
        return true;
      }),
      { numRuns: 1000 },
    );
  });

  it('SPIFFE bundle documents: random JSON is parsed or refused with a ward error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.json({ maxDepth: 4 }),
          tree.map((t) => JSON.stringify({ keys: [t], spiffe_sequence: t, spiffe_refresh_hint: t })),
        ),
        (text) => wardErrorsOnly(() => parseSpiffeBundle(text)),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('SVID API responses (the gRPC stream handlers) fed garbage', () => {
  const bytes = fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u));
  const text = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.constantFrom(ID, `spiffe://${TD}`, TD, '', '/identity/1'),
  );

  it('Delegated Identity API: bad entries are rejected one by one, good ones kept, nothing throws', () => {
    const good = {
      x509_svid: {
        cert_chain: [...svid.chain],
        id: { trust_domain: TD, path: '/identity/1001' },
        expires_at: 0,
        hint: '',
      },
      x509_svid_key: svid.key,
    };
    const entry = fc.record({
      x509_svid: fc.option(
        fc.record({
          cert_chain: fc.array(fc.oneof(bytes, mutated(svid.chain[0] as Buffer)), { maxLength: 3 }),
          id: fc.option(fc.record({ trust_domain: text, path: text })),
          expires_at: fc.integer(),
          hint: text,
        }),
      ),
      x509_svid_key: fc.oneof(bytes, mutated(svid.key)),
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 4 }), fc.boolean(), (entries, withGood) => {
        const resp = { x509_svids: withGood ? [...entries, good] : entries, federates_with: [] };
        const parsed = parseDelegatedSvids(resp as Parameters<typeof parseDelegatedSvids>[0], TD);
        expect(parsed.svids.every((s) => s.spiffeId === ID)).toBe(true);
        if (withGood) expect(parsed.svids.length).toBeGreaterThanOrEqual(1);
        expect(parsed.svids.length + parsed.rejected.length).toBe(resp.x509_svids.length);
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it('bundle maps and Workload API responses: parsed or refused with a ward error', () => {
    fc.assert(
      fc.property(
        fc.dictionary(text, fc.oneof(bytes, mutated(ca.certificate.der)), { maxKeys: 3 }),
        fc.array(
          fc.record({
            spiffe_id: text,
            x509_svid: fc.oneof(bytes, fc.constant(Buffer.concat(svid.chain))),
            x509_svid_key: fc.oneof(bytes, fc.constant(svid.key)),
            bundle: fc.oneof(bytes, fc.constant(ca.certificate.der)),
            hint: text,
          }),
          { maxLength: 3 },
        ),
        (map, svids) => {
          wardErrorsOnly(() => parseDelegatedBundles({ ca_certificates: map }));
          wardErrorsOnly(() =>
            parseX509SvidResponse({ svids, crl: [], federated_bundles: map } as Parameters<
              typeof parseX509SvidResponse
            >[0]),
          );
          return true;
        },
      ),
      { numRuns: 500 },
    );
  });
});
