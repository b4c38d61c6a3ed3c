import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../../src/config/load.ts';
import { assertNoKeyMaterial, buildConfigDump } from '../../../src/observe/config-dump.ts';
import { heldSvids } from '../../../src/observe/node-status.ts';
import type { IdentityCredentials } from '../../../src/svid/index.ts';
import { nodeStatus, svidStatus } from './fixtures.ts';

function credentials(type: 'ec' | 'ed25519' | 'rsa', now: number): IdentityCredentials {
  const pair =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  return {
    spiffeId: `spiffe://spiffe.cilium/identity/${type}`,
    certChainPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    serial: '0A1B2C',
    notBefore: now - 60_000,
    notAfter: now + 3_600_000,
  };
}

describe('/config_dump', () => {
  const now = Date.parse('2025-01-01T00:00:00.000Z');
  const held = (['ec', 'ed25519', 'rsa'] as const).map((t) => credentials(t, now));
  const config = buildConfig({ capture: { podCidrs: ['10.0.0.0/24'] } }, 'test');
  const dump = buildConfigDump({
    config,
    status: nodeStatus({ svid: svidStatus({ identities: heldSvids(held, now) }) }),
    workloads: null,
    policy: null,
    bundles: [{ trustDomain: 'spiffe.cilium', authorities: 1 }],
  });
  const text = JSON.stringify(dump, null, 2);

  it('shows each identity with serial and expiry', () => {
    expect((dump.identities as { svids: unknown[] }).svids).toEqual(
      held.map((c) => ({
        spiffeId: c.spiffeId,
        serial: '0A1B2C',
        notBefore: '2024-12-31T23:59:00.000Z',
        notAfter: '2025-01-01T01:00:00.000Z',
        expiresInSeconds: 3600,
      })),
    );
    expect((dump.config as { observe: unknown }).observe).toMatchObject({
      metricsPort: 15020,
      readinessPort: 15021,
    });
  });

  it('holds no private key: no PEM armour, no line of the keys, no key bytes in hex or base64', () => {
    expect(text).not.toContain('PRIVATE KEY');
    for (const c of held) {
      for (const line of c.keyPem.split('\n').filter((l) => l !== '' && !l.startsWith('-----'))) {
        expect(text.includes(line)).toBe(false);
      }
      const der = Buffer.from(
        c.keyPem
          .split('\n')
          .filter((l) => !l.startsWith('-----'))
          .join(''),
        'base64',
      );
      expect(text.includes(der.toString('hex'))).toBe(false);
      expect(text.includes(der.subarray(-32).toString('base64'))).toBe(false);
    }
    expect(() => assertNoKeyMaterial(text)).not.toThrow();
  });

  it('the guard refuses a text that carries a key, PEM or bare base64', () => {
    for (const c of held) {
      expect(() => assertNoKeyMaterial(JSON.stringify({ leaked: c.keyPem }))).toThrow(/key material/);
      const bare = c.keyPem
        .split('\n')
        .filter((l) => !l.startsWith('-----'))
        .join('');
      expect(() => assertNoKeyMaterial(JSON.stringify({ leaked: bare }))).toThrow(/key material/);
    }
  });

  it('drops expired credentials from what it shows', () => {
    expect(heldSvids([{ ...(held[0] as IdentityCredentials), notAfter: now }], now)).toEqual([]);
  });
});
