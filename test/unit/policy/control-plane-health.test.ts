// Source health as the control plane reports it: an inventory file that turns bad is "down" (while the
// last good inventory stays), and "up" again once it is fixed.
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startPolicyControlPlane } from '../../../src/policy/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ward-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

async function until(what: string, fn: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (fn()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('control-plane source health', () => {
  it('an inventory file that turns invalid is down, keeps the last good inventory, and recovers', async () => {
    const policies = join(dir, 'policies');
    const inventory = join(dir, 'inventory.yaml');
    const good = 'workloads:\n  - { name: web, labels: { app: web }, node: n1, ips: [10.0.0.5] }\n';
    write(inventory, good);
    mkdirSync(policies, { recursive: true });
    const cp = await startPolicyControlPlane({
      policy: { source: 'files', directory: policies, defaultNamespace: 'default', debounce: 20 },
      inventory: { source: 'file', file: inventory },
      cluster: { name: 'default', id: 0 },
      kubernetes: { auth: 'in-cluster', initialBackoff: 500, maxBackoff: 30_000, watchTimeout: 300_000 },
      nodeName: 'n1',
      logger: pino({ level: 'silent' }),
    });
    try {
      expect(cp.health()).toEqual({
        policy: { kind: 'files', up: true },
        inventory: { kind: 'file', up: true },
      });
      write(inventory, 'workloads: [ { name: 1, ips: "not a list" } ]\n');
      await until('inventory down', () => cp.health().inventory?.up === false);
      expect(cp.health().inventory?.detail).toContain('the last good inventory stays');
      expect(cp.inventory().lookup('10.0.0.5')?.name).toBe('web');
      write(inventory, good);
      await until('inventory up', () => cp.health().inventory?.up === true);
    } finally {
      await cp.close();
    }
  });
});
