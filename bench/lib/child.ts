// One measurement per fresh Node process, so the memory one size leaves behind (heap, malloc arenas,
// caches) does not flatter or pollute the next: the child prints one JSON line last; stderr passes through.
import { spawn } from 'node:child_process';

export interface ChildOptions {
  /** Node flags before the script (e.g. --expose-gc). */
  readonly nodeFlags?: readonly string[];
  readonly timeoutMs?: number;
}

export function runNodeJson<T>(script: string, args: readonly string[], opts: ChildOptions = {}): Promise<T> {
  const argv = [...(opts.nodeFlags ?? []), '--disable-warning=ExperimentalWarning', script, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} ${args.join(' ')}: no result within ${opts.timeoutMs} ms`));
    }, opts.timeoutMs ?? 600_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) {
        reject(new Error(`${script} ${args.join(' ')} exited ${code ?? signal}: ${last.slice(0, 400)}`));
        return;
      }
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`${script} ${args.join(' ')}: last line is not JSON: ${last.slice(0, 400)}`));
      }
    });
  });
}

/** global.gc, which the child has with --expose-gc; twice, so weakly held garbage goes too. */
export function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}
