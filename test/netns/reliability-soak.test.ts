// The soak (bench/soak.ts) in a short version for CI: 1,000 concurrent connections through the mesh path,
// held 20 s with echo traffic on a tenth of them each second. Nothing may error or come back wrong, and
// both wards' descriptors must return to their baseline after close. The long run (10,000 connections,
// 5 minutes) is run by hand; its figures are in docs/reliability.md.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SOAK = fileURLToPath(new URL('../../bench/soak.ts', import.meta.url));

describe('soak (short)', () => {
  it('1,000 connections held 20 s with traffic: no errors, no mismatches, descriptors back to baseline', () => {
    const res = spawnSync(process.execPath, [SOAK, '--count', '1000', '--active', '100', '--seconds', '20'], {
      encoding: 'utf8',
      timeout: 150_000,
    });
    const summary = JSON.parse(res.stdout) as {
      ok: boolean;
      opened: number;
      final: { errors: number; mismatches: number; open: number };
      baseline: { fdsA: number; fdsB: number };
      after: { fdsA: number; fdsB: number };
    };
    expect(summary.opened).toBe(1000);
    expect(summary.final).toMatchObject({ errors: 0, mismatches: 0, open: 1000 });
    expect(summary.after.fdsA).toBeLessThanOrEqual(summary.baseline.fdsA + 4);
    expect(summary.after.fdsB).toBeLessThanOrEqual(summary.baseline.fdsB + 4);
    expect(summary.ok).toBe(true);
    expect(res.status).toBe(0);
  }, 180_000);
});
