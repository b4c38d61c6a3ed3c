// Identity labels (reference §1.1) and numeric identities / SPIFFE IDs (src/inventory/identity.ts).
import { describe, expect, it } from 'vitest';
import { assignIdentities, homeSlot, spiffeIdFor } from '../../../src/inventory/identity.ts';
import { buildInventory } from '../../../src/inventory/inventory.ts';
import { parseInventory } from '../../../src/inventory/inventory-file.ts';
import { formatLabel, isIdentityRelevant, labelSet, podIdentityLabels } from '../../../src/policy/labels.ts';

describe('pod identity labels (§1.1)', () => {
  it('builds the labels the seed CiliumIdentity 76513 shows', () => {
    const l = podIdentityLabels({
      namespace: 'default',
      labels: { app: 'client1' },
      serviceAccount: 'default',
      cluster: 'cluster1',
    });
    expect(l.labels.map(formatLabel)).toEqual([
      'k8s:app=client1',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
      'k8s:io.cilium.k8s.policy.cluster=cluster1',
      'k8s:io.cilium.k8s.policy.serviceaccount=default',
      'k8s:io.kubernetes.pod.namespace=default',
    ]);
  });

  it('adds namespace labels under io.cilium.k8s.namespace.labels', () => {
    const l = podIdentityLabels({ namespace: 'web', labels: {}, namespaceLabels: { team: 'a' } });
    expect(l.bySourceKey.get('k8s:io.cilium.k8s.namespace.labels.team')).toBe('a');
  });

  it.each([
    ['pod-template-hash', false],
    ['controller-revision-hash', false],
    ['statefulset.kubernetes.io/pod-name', false],
    ['io.kubernetes.pod.name', false],
    ['app.kubernetes.io/name', true],
    ['app', true],
    ['k8s.io/thing', false],
  ])('label %s identity-relevant: %s (Cilium default label filter)', (key, relevant) => {
    expect(isIdentityRelevant(key)).toBe(relevant);
  });

  it('equal label sets have equal canonical strings whatever the insertion order', () => {
    const a = labelSet([
      { source: 'k8s', key: 'a', value: '1' },
      { source: 'k8s', key: 'b', value: '2' },
    ]);
    const b = labelSet([
      { source: 'k8s', key: 'b', value: '2' },
      { source: 'k8s', key: 'a', value: '1' },
    ]);
    expect(a.canonical).toBe(b.canonical);
  });
});

describe('numeric identities', () => {
  const sets = Array.from({ length: 2000 }, (_, i) =>
    podIdentityLabels({ namespace: 'ns', labels: { app: `a${i}` } }),
  );

  it('derives identities in the cluster-local range, above the reserved ones', () => {
    const ids = assignIdentities(sets, 0);
    for (const id of ids.values()) {
      expect(id).toBeGreaterThanOrEqual(256);
      expect(id).toBeLessThanOrEqual(65535);
    }
  });

  it('puts the cluster id in the high bits, as the seed (cluster.id 1) shows', () => {
    const ids = assignIdentities(sets.slice(0, 10), 1);
    for (const id of ids.values()) expect(id >> 16).toBe(1);
  });

  it('is unique per label set and independent of input order (collisions resolved deterministically)', () => {
    const a = assignIdentities(sets, 0);
    const b = assignIdentities([...sets].reverse(), 0);
    expect(new Set(a.values()).size).toBe(sets.length);
    expect([...a.entries()].sort()).toEqual([...b.entries()].sort());
  });

  it('resolves a home-slot collision by (home, canonical) order', () => {
    // Find two sets that collide.
    const seen = new Map<number, number>();
    let pair: [number, number] | undefined;
    for (let i = 0; i < 100_000 && pair === undefined; i++) {
      const h = homeSlot(podIdentityLabels({ namespace: 'c', labels: { k: String(i) } }));
      const j = seen.get(h);
      if (j !== undefined) pair = [j, i];
      seen.set(h, i);
    }
    expect(pair).toBeDefined();
    const [x, y] = pair!.map((i) => podIdentityLabels({ namespace: 'c', labels: { k: String(i) } }));
    const ids = assignIdentities([y!, x!], 0);
    const first = x!.canonical < y!.canonical ? x! : y!;
    const second = first === x ? y! : x!;
    expect(ids.get(first.canonical)).toBe(homeSlot(first));
    expect(ids.get(second.canonical)).toBe(homeSlot(first) === 65535 ? 256 : homeSlot(first) + 1);
  });

  it('keeps pinned identities and never hands them out again', () => {
    const pinned = new Map([[sets[0]!.canonical, homeSlot(sets[1]!)]]);
    const ids = assignIdentities(sets.slice(0, 2), 0, pinned);
    expect(ids.get(sets[0]!.canonical)).toBe(homeSlot(sets[1]!));
    expect(ids.get(sets[1]!.canonical)).not.toBe(homeSlot(sets[1]!));
  });
});

describe('SPIFFE IDs', () => {
  const w = { identity: 76513, namespace: 'default', serviceAccount: 'default' };
  it('Cilium scheme by default', () => expect(spiffeIdFor(w)).toBe('spiffe://spiffe.cilium/identity/76513'));
  it('ns/sa scheme', () =>
    expect(spiffeIdFor(w, 'ns-sa', 'example.org')).toBe('spiffe://example.org/ns/default/sa/default'));
  it('rejects a bad trust domain', () =>
    expect(() => spiffeIdFor(w, 'identity', 'Bad/TD')).toThrow(/trust domain/));
});

describe('inventory', () => {
  const text = `
cluster: cluster1
clusterId: 1
namespaces: { web: { team: a } }
nodes: [{ name: n1, ips: [192.168.1.1] }, { name: n2, ips: [192.168.1.2] }]
workloads:
  - { name: c1, labels: { app: client1 }, ips: [100.64.1.197], identity: 76513, node: n1 }
  - { name: c1b, labels: { app: client1 }, ips: [100.64.0.206], identity: 76513, node: n2 }
  - { name: web, namespace: web, labels: { app: w }, serviceAccount: websa, ips: [10.1.0.5, "fd00::5"], ports: { http: 8080 } }
`;
  const inv = parseInventory(text, 'inv.yaml', 'n1');

  it('looks up a workload by any of its IPs', () => {
    expect(inv.lookup('100.64.1.197')?.name).toBe('c1');
    expect(inv.lookup('fd00::5')?.name).toBe('web');
    expect(inv.lookup('::ffff:10.1.0.5')?.name).toBe('web');
  });

  it('keeps pinned identities and derives the rest in cluster 1', () => {
    expect(inv.lookup('100.64.0.206')?.identity).toBe(76513);
    const web = inv.lookup('10.1.0.5')!;
    expect(web.identitySource).toBe('derived');
    expect(web.identity >> 16).toBe(1);
    expect(web.securityLabels.bySourceKey.get('k8s:io.cilium.k8s.namespace.labels.team')).toBe('a');
    expect(web.securityLabels.bySourceKey.get('k8s:io.cilium.k8s.policy.serviceaccount')).toBe('websa');
  });

  it('gives the SPIFFE ID of an IP', () => {
    expect(inv.spiffeId('100.64.1.197')).toBe('spiffe://spiffe.cilium/identity/76513');
    expect(inv.spiffeId('10.1.0.5', 'ns-sa')).toBe('spiffe://spiffe.cilium/ns/web/sa/websa');
    expect(inv.spiffeId('8.8.8.8')).toBeUndefined();
  });

  it('maps node IPs to host / remote-node and unknown IPs to world', () => {
    expect(inv.peer('192.168.1.1').labels.bySourceKey.has('reserved:host')).toBe(true);
    expect(inv.peer('192.168.1.2').labels.bySourceKey.has('reserved:remote-node')).toBe(true);
    const w = inv.peer('8.8.8.8');
    expect(w.kind).toBe('world');
    expect(w.identity).toBe(9);
  });

  it('rejects an IP owned twice', () => {
    expect(() =>
      buildInventory({
        workloads: [
          { name: 'a', namespace: 'x', labels: {}, ips: ['10.0.0.1'] },
          { name: 'b', namespace: 'x', labels: { b: '1' }, ips: ['10.0.0.1'] },
        ],
      }),
    ).toThrow(/belongs to both/);
  });

  it('rejects one identity pinned for two label sets, and reserved identities', () => {
    expect(() =>
      buildInventory({
        workloads: [
          { name: 'a', namespace: 'x', labels: {}, ips: ['10.0.0.1'], identity: 300 },
          { name: 'b', namespace: 'x', labels: { b: '1' }, ips: ['10.0.0.2'], identity: 300 },
        ],
      }),
    ).toThrow(/conflicts/);
    expect(() =>
      buildInventory({
        workloads: [{ name: 'a', namespace: 'x', labels: {}, ips: ['10.0.0.1'], identity: 2 }],
      }),
    ).toThrow(/reserved/);
  });

  it('names the bad field of an inventory file', () => {
    expect(() => parseInventory('workloads: [{ name: a, ips: [not-an-ip] }]', 'f.yaml')).toThrow(
      /f.yaml: workloads.0.ips.0: must be an IPv4 or IPv6 address/,
    );
    expect(() => parseInventory('workload: []', 'f.yaml')).toThrow(/INV|Unrecognized|workload/);
  });

  it('parses the seed inventory', async () => {
    const { loadInventoryFile } = await import('../../../src/inventory/inventory-file.ts');
    const seed = await loadInventoryFile(
      new URL('../../../examples/seed/inventory.yaml', import.meta.url).pathname,
    );
    expect(seed.lookup('100.64.2.25')?.identity).toBe(77602);
    expect(seed.spiffeId('100.64.0.124')).toBe('spiffe://spiffe.cilium/identity/108597');
    expect(seed.workloads()).toHaveLength(12);
  });
});
