// Config sections owned by the policy domain, wired into src/config/schema.ts. All optional with
// defaults, so configs written before these sections existed stay valid.
import { z } from 'zod';

const duration = z
  .union([z.number().nonnegative(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/)])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v)!;
    return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[m[2]!]!;
  });

/** Where policies come from. */
export const policyConfigSchema = z
  .discriminatedUnion('source', [
    z.strictObject({
      source: z.literal('files'),
      /** Directory of CNP/CCNP/KNP manifests (YAML/JSON), watched for changes. */
      directory: z.string().min(1),
      /** Namespace of namespaced policies that name none. */
      defaultNamespace: z.string().min(1).default('default'),
      /** Quiet time after a change before the directory is re-read (editors write in several steps). */
      debounce: duration.default(200),
    }),
    z.strictObject({ source: z.literal('kubernetes') }),
    /** No policy: every connection is allowed (Cilium's "no policy selects the endpoint"). */
    z.strictObject({ source: z.literal('none') }),
  ])
  .default({ source: 'none' });

/** Where the workload inventory (IP → workload, identity) comes from. */
export const inventoryConfigSchema = z
  .discriminatedUnion('source', [
    z.strictObject({ source: z.literal('file'), file: z.string().min(1) }),
    z.strictObject({ source: z.literal('kubernetes') }),
    /** No inventory: every address is outside the cluster (reserved:world). */
    z.strictObject({ source: z.literal('none') }),
  ])
  .default({ source: 'none' });

/** The cluster as Cilium names it: `io.cilium.k8s.policy.cluster` and the high byte of identities. */
export const clusterConfigSchema = z
  .strictObject({
    /** Cilium's `cluster.name` (max 32, lower-case alphanumerics and '-'). */
    name: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/, 'must be at most 32 lower-case alphanumerics or -')
      .default('default'),
    /** Cilium's `cluster.id`, 0..255. */
    id: z.number().int().min(0).max(255).default(0),
  })
  .default({ name: 'default', id: 0 });

/** How to reach the Kubernetes API (policy.source or inventory.source `kubernetes`). */
export const kubernetesConfigSchema = z
  .strictObject({
    /** `in-cluster`: the pod's service-account token and CA; `kubeconfig`: a kubeconfig file. */
    auth: z.enum(['in-cluster', 'kubeconfig']).default('in-cluster'),
    /** Path of the kubeconfig (default $KUBECONFIG or ~/.kube/config). */
    kubeconfig: z.string().min(1).optional(),
    /** Context of the kubeconfig (default its current-context). */
    context: z.string().min(1).optional(),
    /** First reconnect delay; doubles up to maxBackoff, with jitter. */
    initialBackoff: duration.default(500),
    maxBackoff: duration.default(30_000),
    /** Server-side timeout of each watch request. */
    watchTimeout: duration.default(300_000),
  })
  .default({ auth: 'in-cluster', initialBackoff: 500, maxBackoff: 30_000, watchTimeout: 300_000 });

export type PolicyConfig = z.output<typeof policyConfigSchema>;
export type InventoryConfig = z.output<typeof inventoryConfigSchema>;
export type ClusterConfig = z.output<typeof clusterConfigSchema>;
export type KubernetesConfig = z.output<typeof kubernetesConfigSchema>;
