// The inventory file source: a bad new version never replaces the last good inventory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileInventorySource, type InventorySource } from '../../../src/inventory/index.ts';

describe('file inventory source', () => {
  let dir: string | undefined;
  let src: InventorySource | undefined;
  afterEach(async () => {
    await src?.close();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    src = undefined;
    dir = undefined;
  });

  it('loads, keeps the last good version on a bad edit, and takes the next good one', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-inv-'));
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, 'workloads: [{ name: a, labels: { app: a }, ips: [10.0.0.1] }]\n');
    src = createFileInventorySource({ file, debounce: 60_000, logger: pino({ level: 'silent' }) });
    await src.start();
    expect(src.current()?.lookup('10.0.0.1')?.name).toBe('a');
    writeFileSync(file, 'workloads: [{ name: a, ips: [10.0.0.');
    await src.reload();
    expect(src.current()?.lookup('10.0.0.1')?.name).toBe('a');
    expect(src.lastError()?.message).toMatch(/inventory.yaml/);
    writeFileSync(file, 'workloads: [{ name: b, ips: [10.0.0.2] }]\n');
    await src.reload();
    expect(src.current()?.lookup('10.0.0.2')?.name).toBe('b');
    expect(src.current()?.lookup('10.0.0.1')).toBeUndefined();
    expect(src.lastError()).toBeUndefined();
  });

  it('fails closed at start when the file is invalid', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-inv-'));
    const file = join(dir, 'inventory.yaml');
    writeFileSync(file, 'workloads: [{ name: a, ips: [nope] }]\n');
    src = createFileInventorySource({ file, logger: pino({ level: 'silent' }) });
    await expect(src.start()).rejects.toThrow(/INV|must be an IPv4/);
  });
});
