import { describe, expect, it } from 'vitest';
import { SvidError } from '../../../src/svid/errors.ts';
import {
  identitySpiffeId,
  namespaceSpiffeId,
  parseSpiffeId,
  parseTrustDomain,
  parseWorkloadName,
} from '../../../src/svid/spiffe-id.ts';

function rejection(input: string): string {
  try {
    parseSpiffeId(input);
  } catch (err) {
    expect(err).toBeInstanceOf(SvidError);
    expect((err as SvidError).code).toBe('SVID_BAD_SPIFFE_ID');
    return (err as SvidError).message;
  }
  throw new Error(`${JSON.stringify(input)} was accepted`);
}

describe('SPIFFE ID parsing (facts §6 A)', () => {
  it('accepts a trust-domain ID and an ID with a path', () => {
    expect(parseSpiffeId('spiffe://trustdomain')).toEqual({
      id: 'spiffe://trustdomain',
      trustDomain: 'trustdomain',
      path: '',
    });
    expect(parseSpiffeId('spiffe://trustdomain/path')).toEqual({
      id: 'spiffe://trustdomain/path',
      trustDomain: 'trustdomain',
      path: '/path',
    });
  });

  it.each([
    ['', /empty/],
    ['s', /scheme/],
    ['spiffe:/', /scheme/],
    ['Spiffe://td', /scheme/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///', /trust domain is missing/],
    ['spiffe://td/', /trailing slash/],
    ['spiffe://td/path/', /trailing slash/],
    ['spiffe://td//', /empty segment/],
    ['spiffe://td//path', /empty segment/],
    ['spiffe://td/.', /dot segment/],
    ['spiffe://td/./path', /dot segment/],
    ['spiffe://td/path/./other', /dot segment/],
    ['spiffe://td/path/..', /dot segment/],
    ['spiffe://td/..', /dot segment/],
    ['spiffe://td/../path', /dot segment/],
    ['spiffe://td/path/../other', /dot segment/],
    ['spiffe://%62%61%64/path', /bad character '%'/],
    ['spiffe://%F0%9F%A4%AF/path', /bad character '%'/],
    ['spiffe://td/%62%61%64', /bad character '%'/],
    ['spiffe://td/%F0%9F%A4%AF', /bad character '%'/],
    ['spiffe://user@td/path', /bad character '@'/],
    ['spiffe://td:8080/path', /bad character ':'/],
    ['spiffe://td/path?query', /bad character '\?'/],
    ['spiffe://td/path#frag', /bad character '#'/],
    ['spiffe://TD/path', /bad character 'T'/],
  ])('rejects %j', (input, why) => {
    expect(rejection(input)).toMatch(why);
  });

  it.each(['/.path', '/..path', '/...', '/a/.b/..c/...d'])('accepts the dot-prefixed path %s', (path) => {
    expect(parseSpiffeId(`spiffe://td${path}`).path).toBe(path);
  });

  it('accepts exactly a-z 0-9 . - _ in a trust domain, for every byte except /', () => {
    const ok = new Set('abcdefghijklmnopqrstuvwxyz0123456789.-_');
    for (let b = 0; b <= 0xff; b++) {
      if (b === 0x2f) continue;
      const ch = String.fromCharCode(b);
      const input = `spiffe://trustdomain${ch}`;
      if (ok.has(ch)) expect(parseSpiffeId(input).trustDomain).toBe(`trustdomain${ch}`);
      else expect(() => parseSpiffeId(input), `byte 0x${b.toString(16)}`).toThrow(/bad character/);
    }
  });

  it('accepts exactly a-z A-Z 0-9 . - _ in a path, for every byte except /', () => {
    const ok = new Set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_');
    for (let b = 0; b <= 0xff; b++) {
      if (b === 0x2f) continue;
      const ch = String.fromCharCode(b);
      const input = `spiffe://trustdomain/path${ch}`;
      if (ok.has(ch)) expect(parseSpiffeId(input).path).toBe(`/path${ch}`);
      else expect(() => parseSpiffeId(input), `byte 0x${b.toString(16)}`).toThrow(/bad character/);
    }
  });

  it('refuses IDs over 2048 bytes and trust domains over 255 bytes', () => {
    expect(rejection(`spiffe://td/${'a'.repeat(2048)}`)).toMatch(/longer than 2048/);
    expect(rejection(`spiffe://${'a'.repeat(256)}/x`)).toMatch(/longer than 255/);
    expect(parseSpiffeId(`spiffe://${'a'.repeat(255)}/x`).trustDomain).toHaveLength(255);
  });

  it('parses a trust domain from a bare name or from any SPIFFE ID', () => {
    expect(parseTrustDomain('trustdomain')).toBe('trustdomain');
    expect(parseTrustDomain('spiffe://trustdomain')).toBe('trustdomain');
    expect(parseTrustDomain('spiffe://trustdomain/path')).toBe('trustdomain');
    expect(() => parseTrustDomain('spiffe:/trustdomain/path')).toThrow(/scheme/);
    expect(() => parseTrustDomain('Trust')).toThrow(
      expect.objectContaining({ code: 'SVID_BAD_TRUST_DOMAIN' }),
    );
  });
});

describe('ward ID schemes', () => {
  it('builds and reads back Cilium identity IDs, default trust domain spiffe.cilium', () => {
    expect(identitySpiffeId(76513)).toBe('spiffe://spiffe.cilium/identity/76513');
    expect(parseWorkloadName('spiffe://spiffe.cilium/identity/76513')).toEqual({
      scheme: 'identity',
      trustDomain: 'spiffe.cilium',
      identity: 76513,
    });
    expect(() => identitySpiffeId(-1)).toThrow(/non-negative/);
  });

  it('builds and reads back namespace/service-account IDs', () => {
    expect(namespaceSpiffeId('default', 'client1', 'cluster.local')).toBe(
      'spiffe://cluster.local/ns/default/sa/client1',
    );
    expect(parseWorkloadName('spiffe://cluster.local/ns/default/sa/client1')).toEqual({
      scheme: 'ns-sa',
      trustDomain: 'cluster.local',
      namespace: 'default',
      serviceAccount: 'client1',
    });
    expect(() => namespaceSpiffeId('a/b', 'sa', 'td')).toThrow(
      expect.objectContaining({ code: 'SVID_BAD_SPIFFE_ID' }),
    );
  });

  it('reads other IDs as neither scheme', () => {
    expect(parseWorkloadName('spiffe://spiffe.cilium/cilium-agent')).toBeUndefined();
    expect(parseWorkloadName('spiffe://spiffe.cilium/identity/01')).toBeUndefined();
    expect(parseWorkloadName('not an id')).toBeUndefined();
  });
});
