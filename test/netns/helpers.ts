import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { LabPod } from '../../src/lab/lab.ts';

export const PEER = fileURLToPath(new URL('../../src/lab/peer.ts', import.meta.url));

/** A lab name unique to this run: t + 6 hex digits (namespaces ward-tXXXXXX-…). */
export function labName(): string {
  return `t${randomBytes(3).toString('hex')}`;
}

/** Runs the lab peer program inside a pod and returns its one JSON line. */
export function peer(pod: LabPod, args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = pod.spawn([process.execPath, PEER, ...args]);
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`peer ${args.join(' ')} in ${pod.name} timed out; stderr: ${err}`));
    }, timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Record<string, unknown>);
      } catch {
        reject(new Error(`peer ${args.join(' ')} printed no JSON: ${out} ${err}`));
      }
    });
  });
}

/** Starts a long-running peer server in a pod; resolves once it listens. */
export async function servePeer(pod: LabPod, args: string[]): Promise<{ stop: () => void }> {
  const child = pod.spawn([process.execPath, PEER, ...args]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer server ${args.join(' ')} did not start`)), 15_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`peer server exited ${code}`)));
  });
  return { stop: () => child.kill('SIGKILL') };
}

export async function until<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** iptables-save output without the lines that change between runs (timestamps, counters). */
export function stableRuleset(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}

/** A `peer hold` connection: resolves `echoing` once bytes flow, `ended` with its last line. */
export function holdConnection(
  pod: LabPod,
  to: string,
): { echoing: Promise<void>; ended: Promise<Record<string, unknown>>; kill: () => void } {
  const child = pod.spawn([process.execPath, PEER, 'hold', '--to', to]);
  let buf = '';
  let onEcho: () => void = () => {};
  let onEnd: (v: Record<string, unknown>) => void = () => {};
  const echoing = new Promise<void>((r) => {
    onEcho = r;
  });
  const ended = new Promise<Record<string, unknown>>((r) => {
    onEnd = r;
  });
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl < 0) break;
      const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if (line.event === 'echoing') onEcho();
      if (line.event === 'end') onEnd(line);
    }
  });
  child.on('exit', () => onEnd({ event: 'end', outcome: 'exited' }));
  return { echoing, ended, kill: () => child.kill('SIGKILL') };
}
