// The load generators, run in the client pod: iperf3 (bulk), wrk (keep-alive and new-connection
// requests/s), the fixed-rate client (latency at 1,000 requests/s) and the idle-connection holder.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runIn, startIn } from './exec.ts';

const CLIENTS = fileURLToPath(new URL('../clients/', import.meta.url));

export interface Target {
  readonly host: string;
  readonly port: number;
}

const addr = (t: Target): string => `${t.host}:${t.port}`;

export interface Bulk {
  readonly gbps: number;
  readonly bytes: number;
}

export async function iperf(ns: string, t: Target, seconds: number, streams: number): Promise<Bulk> {
  const res = await runIn(
    ns,
    ['iperf3', '-c', t.host, '-p', String(t.port), '-t', String(seconds), '-P', String(streams), '-J'],
    (seconds + 30) * 1000,
  );
  if (res.code !== 0)
    throw new Error(`iperf3 → ${addr(t)} failed: ${res.stderr || res.stdout.slice(0, 400)}`);
  const j = JSON.parse(res.stdout) as { end: { sum_received: { bits_per_second: number; bytes: number } } };
  return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes };
}

const WRK_SCRIPT = join(tmpdir(), `ward-bench-wrk-${process.pid}.lua`);
writeFileSync(
  WRK_SCRIPT,
  `done = function(summary, latency, requests)
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
`,
);

export interface Wrk {
  readonly rps: number;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
}

/** wrk, one thread, `conns` connections; `close` adds `Connection: close` (a fresh TCP connection per request). */
export async function wrk(
  ns: string,
  t: Target,
  seconds: number,
  conns: number,
  close: boolean,
): Promise<Wrk> {
  const res = await runIn(
    ns,
    [
      'wrk',
      '-t',
      '1',
      '-c',
      String(conns),
      '-d',
      `${seconds}s`,
      '--timeout',
      '5s',
      '-s',
      WRK_SCRIPT,
      ...(close ? ['-H', 'Connection: close'] : []),
      `http://${addr(t)}/`,
    ],
    (seconds + 30) * 1000,
  );
  const line = res.stdout.split('\n').find((l) => l.startsWith('WRKJSON '));
  if (res.code !== 0 || line === undefined)
    throw new Error(`wrk → ${addr(t)} failed: ${res.stderr} ${res.stdout}`);
  const j = JSON.parse(line.slice(8)) as Record<string, number>;
  const requests = j.requests ?? 0;
  return {
    rps: requests / ((j.duration_us ?? 1) / 1e6),
    requests,
    p50Ms: (j.p50_us ?? Number.NaN) / 1000,
    p99Ms: (j.p99_us ?? Number.NaN) / 1000,
    errors: (j.connect ?? 0) + (j.read ?? 0) + (j.write ?? 0) + (j.status ?? 0) + (j.timeout ?? 0),
  };
}

export interface FixedRate {
  readonly completed: number;
  readonly sent: number;
  readonly achievedRate: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly errors: number;
}

export async function fixedRate(ns: string, t: Target, seconds: number, rate: number): Promise<FixedRate> {
  const res = await runIn(
    ns,
    [
      process.execPath,
      join(CLIENTS, 'fixed-rate.ts'),
      '--to',
      addr(t),
      '--rate',
      String(rate),
      '--seconds',
      String(seconds),
      '--conns',
      '10',
    ],
    (seconds + 30) * 1000,
  );
  if (res.code !== 0) throw new Error(`fixed-rate → ${addr(t)} failed: ${res.stderr}`);
  return JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as FixedRate;
}

export interface Holding {
  readonly ready: number;
  readonly failed: number;
  readonly errors: string[];
  readonly ms: number;
  release(): Promise<void>;
}

/** Opens `count` idle end-to-end connections and holds them until release(). */
export function hold(ns: string, t: Target, count: number): Promise<Holding> {
  const child: ChildProcess = startIn(
    ns,
    [process.execPath, join(CLIENTS, 'hold.ts'), '--to', addr(t), '--count', String(count)],
    ['pipe', 'pipe', 'pipe'],
  );
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hold ${count} → ${addr(t)}: not ready in time; ${err}`));
    }, 120_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      const j = JSON.parse(out.slice(0, nl)) as {
        ready: number;
        failed: number;
        errors: string[];
        ms: number;
      };
      resolve({
        ...j,
        release: () =>
          new Promise<void>((done) => {
            const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
            child.once('exit', () => {
              clearTimeout(kill);
              done();
            });
            child.stdin?.end();
          }),
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hold ${count} → ${addr(t)} exited ${code}: ${err}`));
    });
  });
}
