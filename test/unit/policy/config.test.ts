// The policy/inventory/cluster/kubernetes config sections: optional, defaulted, strict.
import { describe, expect, it } from 'vitest';
import {
  clusterConfigSchema,
  inventoryConfigSchema,
  kubernetesConfigSchema,
  policyConfigSchema,
} from '../../../src/policy/config.ts';

describe('policy config sections', () => {
  it('default to no policy, no inventory, cluster default/0, in-cluster API access', () => {
    expect(policyConfigSchema.parse(undefined)).toEqual({ source: 'none' });
    expect(inventoryConfigSchema.parse(undefined)).toEqual({ source: 'none' });
    expect(clusterConfigSchema.parse(undefined)).toEqual({ name: 'default', id: 0 });
    expect(kubernetesConfigSchema.parse(undefined)).toMatchObject({
      auth: 'in-cluster',
      initialBackoff: 500,
      maxBackoff: 30_000,
    });
  });

  it('files needs a directory; durations parse', () => {
    expect(policyConfigSchema.safeParse({ source: 'files' }).success).toBe(false);
    expect(
      policyConfigSchema.parse({ source: 'files', directory: '/etc/ward/policies', debounce: '1s' }),
    ).toEqual({
      source: 'files',
      directory: '/etc/ward/policies',
      defaultNamespace: 'default',
      debounce: 1000,
    });
  });

  it('rejects unknown fields and bad values, naming the field', () => {
    const r = policyConfigSchema.safeParse({ source: 'kubernetes', directory: 'x' });
    expect(r.success).toBe(false);
    expect(inventoryConfigSchema.safeParse({ source: 'file' }).success).toBe(false);
    const c = clusterConfigSchema.safeParse({ name: 'Bad_Name', id: 300 });
    expect(c.success).toBe(false);
    expect(c.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['id', 'name']);
  });
});
