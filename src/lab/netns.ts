// Thin, synchronous helpers over iproute2 for the lab. Every change happens inside namespaces the lab
// created (`ip -n NS …`); nothing here touches the root namespace's links, routes or rules.
import { execFileSync, spawnSync } from 'node:child_process';
import { WardError } from '../errors.ts';

export class LabError extends WardError {
  constructor(message: string) {
    super('LAB', message);
  }
}

export function run(argv: readonly string[], input?: string): string {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new LabError('empty command');
  const res = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (res.error !== undefined) throw new LabError(`${argv.join(' ')}: ${res.error.message}`);
  if (res.status !== 0)
    throw new LabError(`${argv.join(' ')} failed (exit ${res.status}): ${res.stderr.trim()}`);
  return res.stdout;
}

export function tryRun(argv: readonly string[]): boolean {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return false;
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

export function ipIn(ns: string, ...args: string[]): string {
  return run(['ip', '-n', ns, ...args]);
}

export function execIn(ns: string, argv: readonly string[], input?: string): string {
  return run(['ip', 'netns', 'exec', ns, ...argv], input);
}

export function sysctlIn(ns: string, key: string, value: string | number): void {
  execIn(ns, ['sysctl', '-qw', `${key}=${value}`]);
}

export function listNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.length > 0);
}

export function pidsIn(ns: string): number[] {
  const res = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  if (res.status !== 0) return [];
  return res.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** Kills every process left in the namespace, then deletes it. */
export function deleteNamespace(ns: string): void {
  for (const pid of pidsIn(ns)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  tryRun(['ip', 'netns', 'del', ns]);
}

export function addNamespace(ns: string): void {
  run(['ip', 'netns', 'add', ns]);
  ipIn(ns, 'link', 'set', 'lo', 'up');
}
