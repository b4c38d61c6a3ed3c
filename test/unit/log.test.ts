// The access log's destination: the lines of one turn leave in one write, in batches of whole lines no
// larger than PIPE_BUF, so several threads sharing a pipe never interleave their lines.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DestinationStream } from 'pino';
import { describe, expect, it } from 'vitest';
import { PIPE_BUF, TurnBatchedDestination } from '../../src/log.ts';

function recorder(): { out: DestinationStream; writes: string[] } {
  const writes: string[] = [];
  return { out: { write: (s: string) => void writes.push(s) }, writes };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('TurnBatchedDestination', () => {
  it('writes the lines of one turn together, at the end of the turn', async () => {
    const { out, writes } = recorder();
    const d = new TurnBatchedDestination(out);
    d.write('a\n');
    d.write('b\n');
    d.write('c\n');
    expect(writes).toEqual([]);
    await turn();
    expect(writes).toEqual(['a\nb\nc\n']);
    d.write('d\n');
    await turn();
    expect(writes).toEqual(['a\nb\nc\n', 'd\n']);
  });

  it('never writes more than PIPE_BUF bytes of whole lines at once; a longer line goes alone', async () => {
    const { out, writes } = recorder();
    const d = new TurnBatchedDestination(out);
    // Two-byte characters: the limit is in bytes, not in string length.
    const lines = Array.from({ length: 60 }, (_, i) => `${i} ${'é'.repeat(120 + i)}\n`);
    const long = `${'x'.repeat(PIPE_BUF + 10)}\n`;
    for (const l of lines.slice(0, 30)) d.write(l);
    d.write(long);
    for (const l of lines.slice(30)) d.write(l);
    await turn();
    expect(writes.join('')).toBe([...lines.slice(0, 30), long, ...lines.slice(30)].join(''));
    expect(writes).toContain(long);
    for (const w of writes) {
      expect(w.endsWith('\n')).toBe(true);
      if (w !== long) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(PIPE_BUF);
    }
    expect(writes.length).toBeGreaterThan(3);
  });

  it('flush() writes what waits at once (a drain before the thread ends)', () => {
    const { out, writes } = recorder();
    const d = new TurnBatchedDestination(out);
    d.write('last\n');
    d.flush();
    expect(writes).toEqual(['last\n']);
    d.flush();
    expect(writes).toEqual(['last\n']);
  });

  it('two worker threads logging through it into one pipe: every line arrives whole', () => {
    const fixture = fileURLToPath(new URL('./fixtures/batched-log-writers.ts', import.meta.url));
    const r = spawnSync(process.execPath, [fixture], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      timeout: 30_000,
    });
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(8000);
    const seen = new Map<number, Set<number>>([
      [0, new Set()],
      [1, new Set()],
    ]);
    for (const l of lines) {
      const o = JSON.parse(l) as { worker: number; n: number; msg: string };
      expect(o.msg).toBe('connection closed');
      seen.get(o.worker)?.add(o.n);
    }
    expect(seen.get(0)?.size).toBe(4000);
    expect(seen.get(1)?.size).toBe(4000);
  });
});
