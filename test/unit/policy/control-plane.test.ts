// Config → sources → engine, with the seed's manifests and inventory: decide by IP, read auth and the
// deciding rules, get SPIFFE IDs, see swaps.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { clusterConfigSchema, kubernetesConfigSchema } from '../../../src/policy/config.ts';
import { startPolicyControlPlane } from '../../../src/policy/control-plane.ts';

const seed = new URL('../../../examples/seed/', import.meta.url).pathname;

describe('policy control plane', () => {
  it('with a Kubernetes source, loads the client on demand and names a kubeconfig it cannot read', async () => {
    const start = startPolicyControlPlane({
      policy: { source: 'kubernetes' },
      inventory: { source: 'kubernetes' },
      cluster: clusterConfigSchema.parse({ name: 'cluster1', id: 1 }),
      kubernetes: kubernetesConfigSchema.parse({
        auth: 'kubeconfig',
        kubeconfig: '/nonexistent/ward-kubeconfig',
      }),
      nodeName: 'aks-node-0',
      logger: pino({ level: 'silent' }),
    });
    await expect(start).rejects.toMatchObject({
      code: 'POL_KUBE_API',
      message: expect.stringContaining('/nonexistent/ward-kubeconfig'),
    });
  });

  it('runs the seed scenario by IP from files', async () => {
    const cp = await startPolicyControlPlane({
      policy: {
        source: 'files',
        directory: `${seed}policies`,
        defaultNamespace: 'default',
        debounce: 60_000,
      },
      inventory: { source: 'file', file: `${seed}inventory.yaml` },
      cluster: clusterConfigSchema.parse({ name: 'cluster1', id: 1 }),
      kubernetes: kubernetesConfigSchema.parse(undefined),
      nodeName: 'aks-node-0',
      logger: pino({ level: 'silent' }),
    });
    try {
      const inv = cp.inventory();
      const at = (src: string, dst: string) =>
        cp.engine.decide({ src: inv.peer(src), dst: inv.peer(dst), dport: 80, protocol: 'TCP' });
      const demo = '100.64.2.127';
      expect(at('100.64.1.197', demo)).toMatchObject({ verdict: 'allow', authRequired: false }); // client1
      const c2 = at('100.64.2.25', demo); // client2
      expect(c2).toMatchObject({ verdict: 'allow', authRequired: true, auth: 'required' });
      expect(c2.ingress.matched.map((m) => m.name)).toEqual(['demo3-allow-client2-mutual-auth']);
      expect(at('100.64.1.150', demo)).toMatchObject({
        verdict: 'deny',
        direction: 'ingress',
        reason: 'default-deny',
      }); // client3
      expect(inv.spiffeId('100.64.2.25')).toBe('spiffe://spiffe.cilium/identity/77602');
      expect(inv.spiffeId(demo)).toBe('spiffe://spiffe.cilium/identity/108597');
      expect(inv.peer('172.21.14.68').labels.bySourceKey.has('reserved:host')).toBe(true);
      expect(cp.engine.current().policies).toHaveLength(3);
    } finally {
      await cp.close();
    }
  });
});
