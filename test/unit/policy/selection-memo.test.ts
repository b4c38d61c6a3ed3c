// The snapshot's memo of rules selecting a label set: nothing allocated before a label set is seen (a
// snapshot is compiled in every thread on every policy change), the same frozen rules on every hit,
// and past its bound the oldest label set is worked out again with the same result.
import { describe, expect, it, vi } from 'vitest';
import { labelSet, POD_NAMESPACE_LABEL, SOURCE_K8S } from '../../../src/policy/labels.ts';
import { compileSnapshot, SELECTION_MEMO_MAX } from '../../../src/policy/snapshot.ts';
import { cnp, parseYaml } from './helpers.ts';

const { caches } = vi.hoisted(() => ({ caches: [] as number[] }));

// Records every LRUCache made (its `max`): the cache library preallocates its arrays for `max` entries.
vi.mock('lru-cache', async (importOriginal) => {
  const lru = await importOriginal<typeof import('lru-cache')>();
  class Recorded<K extends {}, V extends {}> extends lru.LRUCache<K, V> {
    constructor(options: ConstructorParameters<typeof lru.LRUCache<K, V>>[0]) {
      caches.push((options as { max?: number }).max ?? 0);
      super(options);
    }
  }
  return { ...lru, LRUCache: Recorded };
});

const { policies } = parseYaml(
  cnp(
    'web',
    'default',
    'endpointSelector: { matchLabels: { app: web } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: client } }] }]',
  ) +
    cnp('all', 'default', 'endpointSelector: {}\negress: [{ toEndpoints: [{ matchLabels: { app: db } }] }]'),
);

function pod(app: string, ns = 'default') {
  return labelSet([
    { source: SOURCE_K8S, key: 'app', value: app },
    { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, value: ns },
  ]);
}

describe('snapshot selection memo', () => {
  it('compiling a snapshot allocates no memo up front: no preallocating cache is made', () => {
    caches.length = 0;
    const s = compileSnapshot(policies);
    expect(caches).toEqual([]);
    s.selecting(pod('web'), 'ingress');
    expect(caches).toEqual([]);
  });

  it('serves the same frozen rules for a label set on every call, per direction', () => {
    const s = compileSnapshot(policies);
    const web = pod('web');
    const ingress = s.selecting(web, 'ingress');
    expect(ingress.map((r) => r.policy.name)).toEqual(['web']);
    expect(Object.isFrozen(ingress)).toBe(true);
    // An equal label set built again hits the memo (keyed by the canonical form).
    expect(s.selecting(pod('web'), 'ingress')).toBe(ingress);
    expect(s.selecting(web, 'egress').map((r) => r.policy.name)).toEqual(['all']);
    expect(s.selecting(pod('web', 'other'), 'ingress')).toEqual([]);
  });

  it(`past ${SELECTION_MEMO_MAX.toLocaleString('en-US')} label sets forgets the oldest and works it out again alike`, () => {
    const s = compileSnapshot(policies);
    const first = pod('web');
    const rules = s.selecting(first, 'ingress');
    for (let i = 1; i < SELECTION_MEMO_MAX; i++) s.selecting(pod(`app-${i}`), 'ingress');
    // Exactly at the bound: still held.
    expect(s.selecting(first, 'ingress')).toBe(rules);
    const last = pod('one-more');
    const lastRules = s.selecting(last, 'ingress');
    // One more: the oldest (first) went; asked again it is recomputed to equal rules.
    const again = s.selecting(first, 'ingress');
    expect(again).not.toBe(rules);
    expect(again).toEqual(rules);
    expect(s.selecting(last, 'ingress')).toBe(lastRules);
  });
});
