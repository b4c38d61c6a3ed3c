// The processes' own accounting: CPU time (utime + stime of every thread, /proc/<pid>/stat) and resident
// memory (VmRSS, /proc/<pid>/status). Only the proxy processes of a path are counted, never the load
// generator or the backend.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clkTck: number | undefined;

function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** CPU seconds (user + system, all threads) a process has used so far; NaN once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name (state is 3).
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in KiB; NaN once the process is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? Number.NaN : Number(m[1]);
  } catch {
    return Number.NaN;
  }
}

export function totalCpu(pids: readonly number[]): number {
  return pids.reduce((s, p) => s + cpuSeconds(p), 0);
}

export function totalRss(pids: readonly number[]): number {
  return pids.reduce((s, p) => s + rssKiB(p), 0);
}

/** Runs fn and returns the CPU seconds the given processes spent meanwhile. */
export async function cpuDuring<T>(
  pids: readonly number[],
  fn: () => Promise<T>,
): Promise<{ value: T; cpu: number }> {
  const before = totalCpu(pids);
  const value = await fn();
  return { value, cpu: totalCpu(pids) - before };
}
