// `ward demo`, as a user runs it: the seed scenario in the lab, its JSON summary checked row by row.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { DemoResult } from '../../src/cli/demo-command.ts';
import { listNamespaces } from '../../src/lab/netns.ts';
import { labName } from './helpers.ts';

const WARD = fileURLToPath(new URL('../../bin/ward', import.meta.url));

describe('ward demo', () => {
  it('plays the seed scenario: client1 allowed, client2 allowed over mTLS, client3 denied; leaves nothing behind', () => {
    const name = labName();
    const res = spawnSync(WARD, ['demo', '--json', '--name', name], { encoding: 'utf8', timeout: 120_000 });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    const rows = JSON.parse(res.stdout) as DemoResult[];
    expect(rows).toHaveLength(9);
    const row = (client: string, target: string) =>
      rows.find((r) => r.client === client && r.target === target);
    for (const target of ['demodeployment-0', 'demodeployment-1', 'demodeployment-2']) {
      expect(row('client1', target)?.outcome).toBe('allowed');
      expect(row('client2', target)?.outcome).toBe('allowed');
      expect(row('client3', target)).toMatchObject({ outcome: 'denied' });
      expect(row('client3', target)?.reason).toMatch(/^Policy denied/);
    }
    // demodeployment-0 is on client1's node (a); the others on node b with client2.
    expect(row('client1', 'demodeployment-1')).toMatchObject({ mtls: true });
    expect(row('client2', 'demodeployment-0')).toMatchObject({ mtls: true });
    expect(row('client2', 'demodeployment-0')?.reason).toContain('demo3-allow-client2-mutual-auth');
    expect(row('client2', 'demodeployment-1')?.reason).toContain('same node');
    expect(listNamespaces().filter((n) => n.startsWith(`ward-${name}-`))).toEqual([]);
  });
});
