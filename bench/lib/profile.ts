// Reading what the profilers wrote: V8 .cpuprofile files (node --cpu-prof) as top self-time functions,
// and `strace -c -f` summaries as syscalls per request.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    hitCount?: number;
  }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  readonly fn: string;
  readonly where: string;
  readonly ms: number;
  /** Share of the thread's non-idle samples. */
  readonly share: number;
}

export interface ThreadProfile {
  readonly file: string;
  readonly totalMs: number;
  readonly busyMs: number;
  readonly top: readonly SelfTime[];
  /** Busy time by where the code lives: ward's src/, Node's internals, V8/native ("(program)", GC). */
  readonly byArea: Record<string, number>;
}

function area(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)' || url === '') return 'native/program';
  if (url.includes('/src/')) return 'ward src';
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('node_modules')) return 'dependencies';
  return 'other';
}

/** A time window in microseconds of CLOCK_MONOTONIC (V8's profile clock and process.hrtime both use it). */
export type Window = readonly [number, number];

export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Self time per function, counting only samples inside the window (the load, not start-up). */
export function readCpuProfile(path: string, window?: Window, topN = 15): ThreadProfile {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t < window[0] || t > window[1])) continue;
    const id = p.samples[i] ?? -1;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const agg = new Map<string, { fn: string; where: string; us: number; area: string }>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    total += us;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += us;
      continue;
    }
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|node_modules)\//, '$1/');
    const where = url === '' ? '' : `${url}:${n.callFrame.lineNumber + 1}`;
    const key = `${fn} ${where}`;
    const e = agg.get(key) ?? { fn, where, us: 0, area: area(n.callFrame.url, fn) };
    e.us += us;
    agg.set(key, e);
  }
  const busy = total - idle;
  const byArea: Record<string, number> = {};
  for (const e of agg.values()) byArea[e.area] = (byArea[e.area] ?? 0) + e.us / busy;
  const top = [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => ({ fn: e.fn, where: e.where, ms: e.us / 1000, share: e.us / busy }));
  return { file: path, totalMs: total / 1000, busyMs: busy / 1000, top, byArea };
}

export function readProfileDir(dir: string, window?: Window): ThreadProfile[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  } catch {
    return [];
  }
  return files.map((f) => readCpuProfile(join(dir, f), window)).sort((a, b) => b.busyMs - a.busyMs);
}

export interface StraceRow {
  readonly syscall: string;
  readonly calls: number;
  readonly errors: number;
}

/** Parses the table `strace -c` prints on exit. */
export function parseStraceSummary(text: string): StraceRow[] {
  const rows: StraceRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d+)?\s*([a-z_0-9]+)\s*$/.exec(line);
    if (m === null || m[3] === 'total') continue;
    rows.push({ syscall: m[3] ?? '?', calls: Number(m[1]), errors: Number(m[2] ?? 0) });
  }
  return rows.sort((a, b) => b.calls - a.calls);
}
