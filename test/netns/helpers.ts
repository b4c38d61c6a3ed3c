import { spawn } from 'node:child_process';
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
