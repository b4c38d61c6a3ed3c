// Addresses carry their family everywhere, so IPv6 is an addition and never a rewrite.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Endpoint {
  readonly family: Family;
  readonly ip: string;
  readonly port: number;
}

export interface Cidr {
  readonly family: Family;
  /** The network address, normalised (host bits cleared). */
  readonly network: string;
  readonly prefix: number;
  /** Bits of the network as a bigint, for containment checks. */
  readonly bits: bigint;
}

export function familyOf(ip: string): Family | undefined {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  return undefined;
}

/** Node reports IPv4 peers of dual-stack sockets as ::ffff:a.b.c.d; ward speaks of them as IPv4. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

export function endpoint(ip: string, port: number): Endpoint {
  const norm = normaliseIp(ip);
  const family = familyOf(norm);
  if (family === undefined) throw new TypeError(`not an IP address: ${ip}`);
  return { family, ip: norm, port };
}

export function formatEndpoint(e: Endpoint): string {
  return e.family === 6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

export function ipToBigInt(ip: string): bigint {
  const family = familyOf(ip);
  if (family === 4) {
    return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  if (family === 6) {
    let text = ip;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
    const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4?.[1] !== undefined) {
      const n = ipToBigInt(v4[1]);
      text = `${text.slice(0, -v4[1].length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
    }
    const [head = '', tail] = text.split('::');
    const h = head === '' ? [] : head.split(':');
    const t = tail === undefined || tail === '' ? [] : tail.split(':');
    const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
  }
  throw new TypeError(`not an IP address: ${ip}`);
}

export function bigIntToIp(n: bigint, family: Family): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((n >> s) & 0xffn).toString()).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const family = familyOf(ip);
  if (family === undefined) throw new TypeError(`not a CIDR (bad address): ${text}`);
  const width = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(width) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > width) {
    throw new TypeError(`not a CIDR (prefix must be 0-${width}): ${text}`);
  }
  const prefix = Number(prefixText);
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(width - prefix);
  const bits = ipToBigInt(ip) & mask;
  return { family, network: bigIntToIp(bits, family), prefix, bits };
}

export function formatCidr(c: Cidr): string {
  return `${c.network}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const family = familyOf(ip);
  if (family !== c.family) return false;
  const width = family === 4 ? 32 : 128;
  const mask = c.prefix === 0 ? 0n : ((1n << BigInt(c.prefix)) - 1n) << BigInt(width - c.prefix);
  return (ipToBigInt(ip) & mask) === c.bits;
}
