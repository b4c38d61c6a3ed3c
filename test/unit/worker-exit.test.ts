// A ward whose worker thread is wedged in Node's own teardown still stops: within() gives up on the
// thread's terminate() after its grace, and exitNow ends the process where process.exit() would wait.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const FIXTURE = fileURLToPath(new URL('./fixtures/wedged-worker.ts', import.meta.url));

function run(mode: 'exitNow' | 'processExit', timeout: number) {
  return spawnSync(process.execPath, [FIXTURE, mode], { encoding: 'utf8', timeout });
}

describe('a worker thread wedged in teardown', () => {
  it('within() reports that terminate did not end it, and exitNow still ends the process', () => {
    const r = run('exitNow', 10_000);
    expect(r.stdout).toBe('worker wedged; terminate ended it: false\n');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });

  it('process.exit() alone would wait for it (why exitNow exists): still running after 3 s', () => {
    const r = run('processExit', 3000);
    expect(r.stdout).toBe('worker wedged; terminate ended it: false\n');
    expect(r.signal).toBe('SIGTERM');
  });
});
