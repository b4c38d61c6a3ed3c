import { describe, expect, it } from 'vitest';
import { cidrContains, endpoint, formatCidr, formatEndpoint, parseCidr } from '../../src/net/address.ts';

describe('addresses carry their family', () => {
  const cases: [string, string, boolean][] = [
    ['198.19.1.0/24', '198.19.1.10', true],
    ['198.19.1.0/24', '198.19.2.10', false],
    ['198.19.1.77/24', '198.19.1.255', true],
    ['0.0.0.0/0', '8.8.8.8', true],
    ['fd00:19:1::/64', 'fd00:19:1::a', true],
    ['fd00:19:1::/64', 'fd00:19:2::a', false],
    ['::/0', '::1', true],
    ['198.19.1.0/24', 'fd00::1', false],
    ['::ffff:0:0/96', '::ffff:198.19.1.1', true],
  ];
  for (const [cidr, ip, inside] of cases) {
    it(`${ip} ${inside ? 'is' : 'is not'} in ${cidr}`, () =>
      expect(cidrContains(parseCidr(cidr), ip)).toBe(inside));
  }

  it('normalises networks', () => {
    expect(formatCidr(parseCidr('198.19.1.77/24'))).toBe('198.19.1.0/24');
    expect(formatCidr(parseCidr('fd00:19:1:0:0:0:0:5/64'))).toBe('fd00:19:1::/64');
    expect(formatCidr(parseCidr('10.0.0.1'))).toBe('10.0.0.1/32');
  });

  it('rejects what is not a CIDR', () => {
    expect(() => parseCidr('198.19.1.0/33')).toThrow('prefix must be 0-32');
    expect(() => parseCidr('198.19.1/24')).toThrow('bad address');
    expect(() => parseCidr('fd00::/129')).toThrow('prefix must be 0-128');
  });

  it('speaks of mapped IPv4 peers as IPv4, and brackets IPv6 endpoints', () => {
    expect(endpoint('::ffff:198.19.1.10', 80)).toEqual({ family: 4, ip: '198.19.1.10', port: 80 });
    expect(formatEndpoint(endpoint('fd00::1', 443))).toBe('[fd00::1]:443');
    expect(() => endpoint('nope', 1)).toThrow('not an IP address');
  });
});
