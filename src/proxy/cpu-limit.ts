// How many CPUs this process may use: the smaller of the CPUs it can run on and its cgroup's CPU quota
// (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded up. Envoy and ztunnel users
// complain when a proxy starts one worker per host core inside a pod limited to one.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The cgroup's CPU quota as a fraction of CPUs, or undefined where there is none. */
export function cgroupCpuQuota(readFile: (path: string) => string | undefined = read): number | undefined {
  const v2 = readFile('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    if (quota === undefined || quota === 'max' || period === undefined) return undefined;
    const q = Number(quota);
    const p = Number(period);
    return q > 0 && p > 0 ? q / p : undefined;
  }
  const q = Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const p = Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return q > 0 && p > 0 ? q / p : undefined;
}

export function usableCpus(readFile?: (path: string) => string | undefined): number {
  const cpus = availableParallelism();
  const quota = cgroupCpuQuota(readFile);
  return Math.max(1, quota === undefined ? cpus : Math.min(cpus, Math.ceil(quota)));
}
