// Where ward's time goes: node --cpu-prof on both wards (mTLS path) during a keep-alive run and a bulk
// run, and strace -c on the wards and on the HAProxy hops during the same loads (syscalls per request
// and per MiB). Run after the measured runs, so the profilers never slow a figure that is reported.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.ts';
import { sleep, track } from './exec.ts';
import { iperf, wrk } from './load.ts';
import { BACKEND, type Certs, peerAvailable, startPeer } from './peers.ts';
import {
  monotonicUs,
  parseStraceSummary,
  readProfileDir,
  type StraceRow,
  type ThreadProfile,
} from './profile.ts';
import { startWards, stopWards } from './ward.ts';

export interface StraceResult {
  readonly path: string;
  readonly load: 'keepalive' | 'bulk';
  /** Requests (keep-alive) or MiB (bulk) moved while strace was attached. */
  readonly units: number;
  readonly unit: 'request' | 'MiB';
  readonly perUnit: number;
  readonly top: readonly (StraceRow & { perUnit: number })[];
  readonly note?: string;
}

export interface ProfileResult {
  readonly cpu: { load: 'keepalive' | 'bulk'; node: string; threads: ThreadProfile[] }[];
  readonly strace: StraceResult[];
}

function straceAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v strace'], { stdio: 'ignore' }).status === 0;
}

function attach(pid: number): { child: ChildProcess; done: Promise<string> } {
  const child = track(
    spawn('strace', ['-c', '-f', '-q', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] }),
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return { child, done: new Promise((r) => child.once('exit', () => r(err))) };
}

async function straced(
  pids: readonly number[],
  pathName: string,
  load: 'keepalive' | 'bulk',
  fn: () => Promise<number>,
): Promise<StraceResult> {
  const tracers = pids.map(attach);
  await sleep(500);
  const units = await fn();
  for (const t of tracers) t.child.kill('SIGINT');
  const texts = await Promise.all(tracers.map((t) => t.done));
  const sum = new Map<string, StraceRow>();
  for (const rows of texts.map(parseStraceSummary)) {
    for (const r of rows) {
      const e = sum.get(r.syscall);
      sum.set(r.syscall, {
        syscall: r.syscall,
        calls: (e?.calls ?? 0) + r.calls,
        errors: (e?.errors ?? 0) + r.errors,
      });
    }
  }
  const rows = [...sum.values()].sort((a, b) => b.calls - a.calls);
  const total = rows.reduce((s, r) => s + r.calls, 0);
  return {
    path: pathName,
    load,
    units,
    unit: load === 'keepalive' ? 'request' : 'MiB',
    perUnit: total / units,
    top: rows.slice(0, 8).map((r) => ({ ...r, perUnit: r.calls / units })),
  };
}

export async function profileWard(
  lab: Lab,
  certs: Certs,
  dir: string,
  seconds: number,
  outDir: string,
): Promise<ProfileResult> {
  const ns = lab.pod('client').ns;
  seconds = Math.max(seconds, 5);
  const server = lab.pod('server').ip;
  const profDir = join(outDir, 'profile');
  rmSync(profDir, { recursive: true, force: true });
  const cpu: ProfileResult['cpu'] = [];
  const loads = {
    keepalive: async (t: { host: string; port: number }) => (await wrk(ns, t, seconds, 50, false)).requests,
    bulk: async (t: { host: string; port: number }) => (await iperf(ns, t, seconds, 1)).bytes / 2 ** 20,
  } as const;
  for (const load of ['keepalive', 'bulk'] as const) {
    const d = join(profDir, load);
    mkdirSync(d, { recursive: true });
    for (const node of lab.nodes) mkdirSync(join(d, node.name), { recursive: true });
    // One directory per node: each ward writes a profile per thread (main and worker) on exit.
    await Promise.all(
      lab.nodes.map(async (node) => {
        const { startBenchWard } = await import('./ward.ts');
        await startBenchWard(node, {
          mode: 'mtls',
          workers: 1,
          tag: `prof-${load}`,
          nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${join(d, node.name)}`],
        });
      }),
    );
    let window: readonly [number, number];
    try {
      const target = { host: server, port: load === 'keepalive' ? BACKEND.http : BACKEND.iperf };
      await loads[load](target); // warm: the tunnel and JIT, outside the window
      const from = monotonicUs();
      await loads[load](target);
      window = [from, monotonicUs()];
    } finally {
      await stopWards(lab);
    }
    for (const node of lab.nodes)
      cpu.push({ load, node: node.name, threads: readProfileDir(join(d, node.name), window) });
  }
  const strace: StraceResult[] = [];
  if (straceAvailable()) {
    const wards = await startWards(lab, { mode: 'mtls', workers: 1, tag: 'strace' });
    try {
      const pids = wards.map((w) => w.pid);
      await loads.keepalive({ host: server, port: BACKEND.http });
      strace.push(
        await straced(pids, 'ward-mtls', 'keepalive', () =>
          loads.keepalive({ host: server, port: BACKEND.http }),
        ),
      );
      strace.push(
        await straced(pids, 'ward-mtls', 'bulk', () => loads.bulk({ host: server, port: BACKEND.iperf })),
      );
    } finally {
      await stopWards(lab);
    }
    if (peerAvailable('haproxy')) {
      const pair = await startPeer('haproxy', lab, certs, dir);
      try {
        strace.push(
          await straced(pair.pids, 'haproxy', 'keepalive', () => loads.keepalive(pair.target('http'))),
        );
        strace.push(await straced(pair.pids, 'haproxy', 'bulk', () => loads.bulk(pair.target('iperf'))));
      } finally {
        await pair.stop();
      }
    }
  }
  return { cpu, strace };
}
