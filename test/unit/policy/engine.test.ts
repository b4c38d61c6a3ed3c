// The engine: cached decisions per (source identity, destination identity, port, protocol), dropped
// when a snapshot is swapped in.
import { describe, expect, it } from 'vitest';
import { createPolicyEngine } from '../../../src/policy/engine.ts';
import type { PolicySnapshot } from '../../../src/policy/snapshot.ts';
import { app, cnp, pod, snap, world } from './helpers.ts';

const denyAll = snap(
  cnp('d', 'default', 'endpointSelector: { matchLabels: { app: server } }\ningress: [{}]'),
);
const allowClient = snap(
  cnp(
    'a',
    'default',
    'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: client } }], authentication: { mode: required } }]',
  ),
);

describe('policy engine', () => {
  const c = { src: app('client'), dst: app('server'), dport: 80, protocol: 'TCP' as const };

  it('caches decisions and serves the same verdict object', () => {
    const e = createPolicyEngine(denyAll);
    const a = e.decide(c);
    const b = e.decide(c);
    expect(a).toBe(b);
    expect(e.cacheStats()).toMatchObject({ hits: 1, misses: 1, size: 1 });
  });

  it('drops the cache on swap and tells listeners', () => {
    const e = createPolicyEngine(denyAll);
    expect(e.decide(c).verdict).toBe('deny');
    const seen: PolicySnapshot[] = [];
    const off = e.onSwap((s) => seen.push(s));
    e.swap(allowClient);
    expect(seen).toEqual([allowClient]);
    expect(e.cacheStats().size).toBe(0);
    const v = e.decide(c);
    expect(v.verdict).toBe('allow');
    expect(v.authRequired).toBe(true);
    off();
    e.swap(denyAll);
    expect(seen).toHaveLength(1);
    expect(e.current()).toBe(denyAll);
  });

  it('the cache grows past its starting size to its bound, then forgets the least recently used', () => {
    const e = createPolicyEngine(allowClient, { cacheSize: 2048 });
    // Distinct source identities (labels shared, so every verdict is the same allow).
    const from = (i: number) => ({ ...c, src: { ...app('client'), identity: 100_000 + i } });
    // 2,048 pairs: the cache starts smaller and grows on the way, keeping the order of use.
    for (let i = 0; i < 2048; i++) e.decide(from(i));
    expect(e.cacheStats()).toMatchObject({ misses: 2048, pairs: 2048 });
    // 100 more push out the 100 least recently used: the first 100.
    for (let i = 2048; i < 2148; i++) e.decide(from(i));
    expect(e.cacheStats()).toMatchObject({ misses: 2148, pairs: 2048 });
    for (let i = 100; i < 2148; i++) expect(e.decide(from(i)).verdict).toBe('allow');
    expect(e.cacheStats()).toMatchObject({ hits: 2048, misses: 2148 });
    e.decide(from(0));
    expect(e.cacheStats().misses).toBe(2149);
  });

  it('keys world peers by address, so CIDR rules are not confused', () => {
    const s = snap(
      cnp(
        'c',
        'default',
        'endpointSelector: { matchLabels: { app: client } }\negress: [{ toCIDR: [1.1.1.0/24] }]',
      ),
    );
    const e = createPolicyEngine(s);
    expect(e.decide({ ...c, dst: world('1.1.1.1') }).verdict).toBe('allow');
    expect(e.decide({ ...c, dst: world('8.8.8.8') }).verdict).toBe('deny');
  });

  it('keys by the destination named ports when the snapshot uses named ports', () => {
    const s = snap(
      cnp(
        'n',
        'default',
        'endpointSelector: { matchLabels: { app: server } }\ningress: [{ toPorts: [{ ports: [{ port: http }] }] }]',
      ),
    );
    expect(s.hasNamedPorts).toBe(true);
    const e = createPolicyEngine(s);
    const a = pod({ labels: { app: 'server' }, ports: { http: 80 } });
    const b = { ...pod({ labels: { app: 'server' }, ports: { http: 8080 } }), identity: a.identity };
    expect(e.decide({ ...c, dst: a }).verdict).toBe('allow');
    expect(e.decide({ ...c, dst: b }).verdict).toBe('deny');
  });
});
