import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cgroupCpuQuota, usableCpus } from '../../src/proxy/cpu-limit.ts';

const files = (m: Record<string, string>) => (p: string) => m[p];

describe('worker count follows the cgroup CPU limit', () => {
  it('cgroup v2 quota of 1.5 CPUs', () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' }))).toBe(1.5);
  });
  it('cgroup v2 without a limit', () => {
    expect(cgroupCpuQuota(files({ '/sys/fs/cgroup/cpu.max': 'max 100000' }))).toBeUndefined();
  });
  it('cgroup v1 quota', () => {
    expect(
      cgroupCpuQuota(
        files({
          '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '50000',
          '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
        }),
      ),
    ).toBe(0.5);
  });
  it('cgroup v1 unlimited (-1)', () => {
    expect(
      cgroupCpuQuota(
        files({
          '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1',
          '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
        }),
      ),
    ).toBeUndefined();
  });
  it('rounds a fractional quota up and never exceeds the CPUs there are', () => {
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '50000 100000' }))).toBe(1);
    expect(usableCpus(files({ '/sys/fs/cgroup/cpu.max': '6400000 100000' }))).toBe(availableParallelism());
    expect(usableCpus(files({}))).toBe(availableParallelism());
  });
});
