// Running programs inside the lab's namespaces, asynchronously, with a deadline; and remembering every
// long-lived child so a failed run still kills it.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Done {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const children = new Set<ChildProcess>();

/** Every process started with `track` is killed by killTracked (the harness's finally and signal paths). */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killTracked(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
  children.clear();
}

/** This process's hard limit of open files: children may raise their soft limit up to it, no further. */
export function hardNofile(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const v = m?.[1] === 'unlimited' ? 1_048_576 : Number(m?.[1]);
  return Number.isFinite(v) && v > 0 ? v : 1024;
}

/** The argv that runs `argv` in namespace ns with the open-files limit raised to the hard limit (prlimit execs, pid kept). */
export function inNs(ns: string, argv: readonly string[]): string[] {
  const n = hardNofile();
  return ['ip', 'netns', 'exec', ns, 'prlimit', `--nofile=${n}:${n}`, '--', ...argv];
}

export function runIn(ns: string, argv: readonly string[], timeoutMs: number): Promise<Done> {
  const [cmd, ...args] = inNs(ns, argv);
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd ?? 'ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${argv.join(' ')} in ${ns}: no exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running program in a namespace; its output goes to the given file descriptors. */
export function startIn(
  ns: string,
  argv: readonly string[],
  stdio: ['ignore' | 'pipe', number | 'pipe' | 'ignore', number | 'pipe' | 'ignore'],
): ChildProcess {
  const [cmd, ...args] = inNs(ns, argv);
  return track(spawn(cmd ?? 'ip', args, { stdio }));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns true or the timeout passes (then throws with `what`). */
export async function waitFor(
  what: string,
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
