// The `svid` config section inside ward's configuration, and the service the facade builds from it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../src/config/load.ts';
import { derToPem } from '../../../src/svid/certificate.ts';
import { initCaDir } from '../../../src/svid/dev-ca.ts';
import { createIdentityService, svidConfigSchema } from '../../../src/svid/index.ts';
import { tempDir, testLogger } from './helpers.ts';

const minimal = 'capture:\n  podCidrs: [198.19.1.0/24]\n';

describe('svid configuration', () => {
  it('defaults to source none, trust domain spiffe.cilium, Cilium selectors, for configs without the section', () => {
    const c = parseConfigText(minimal, 't.yaml');
    expect(c.svid).toMatchObject({
      source: 'none',
      trustDomain: 'spiffe.cilium',
      idScheme: 'identity',
      delegatedSocket: '/run/spire/sockets/admin.sock',
      selectors: ['cilium:mutual-auth'],
      reconnectInitial: 100,
      reconnectMax: 10_000,
    });
  });

  it('takes WARD_SVID_* overrides and names the field of a bad value', () => {
    const c = parseConfigText(minimal, 't.yaml', {
      WARD_SVID_SOURCE: 'delegated',
      WARD_SVID_SELECTORS: 'cilium:mutual-auth,k8s:ns:a',
    });
    expect(c.svid.source).toBe('delegated');
    expect(c.svid.selectors).toEqual(['cilium:mutual-auth', 'k8s:ns:a']);
    const bad = () =>
      parseConfigText(`${minimal}svid:\n  trustDomain: Bad.Domain\n  selectors: [nocolon]\n`, 't.yaml');
    expect(bad).toThrow(ConfigError);
    try {
      bad();
    } catch (err) {
      const paths = (err as ConfigError).problems.map((p) => p.path);
      expect(paths).toEqual(expect.arrayContaining(['svid.trustDomain', 'svid.selectors.0']));
    }
    expect(() => svidConfigSchema.parse({ source: 'magic' })).toThrow();
    expect(() => svidConfigSchema.parse({ unknownField: 1 })).toThrow();
  });
});

describe('createIdentityService', () => {
  it('builds the configured source and store; spiffeIdOf follows the ID scheme', async () => {
    const tmp = tempDir();
    const ca = await initCaDir(join(tmp.dir, 'ca'), 'spiffe.cilium');
    const s = await ca.issue('spiffe://spiffe.cilium/identity/42');
    mkdirSync(join(tmp.dir, 'svids'));
    writeFileSync(
      join(tmp.dir, 'svids', 'w.svid.pem'),
      derToPem(s.chain[0] as Buffer) + derToPem(s.key, 'PRIVATE KEY'),
    );
    writeFileSync(join(tmp.dir, 'svids', 'spiffe.cilium.bundle.pem'), ca.bundlePem());
    const service = createIdentityService(
      svidConfigSchema.parse({ source: 'files', filesDirectory: join(tmp.dir, 'svids') }),
      testLogger().log,
    );
    const none = createIdentityService(svidConfigSchema.parse({}), testLogger().log);
    try {
      expect(await service.ready(2000)).toBe('Available');
      const id = service.spiffeIdOf({ identity: 42 });
      expect(id).toBe('spiffe://spiffe.cilium/identity/42');
      expect(service.view().secureContext(id)).toBeTruthy();
      expect(service.snapshot().identities.map((i) => i.serial)).toEqual([s.serial]);
      expect(() => service.spiffeIdOf({ namespace: 'a', serviceAccount: 'b' })).toThrow(/numeric identity/);
      expect(await none.ready(1000)).toBe('Unavailable');
      expect(none.view().secureContext(id)).toBeNull();
    } finally {
      await service.close();
      await none.close();
      tmp.cleanup();
    }
  });
});
