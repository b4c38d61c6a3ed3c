// The systemd units of the VM guide pass `systemd-analyze verify` (package systemd, in .ci/run), checked
// inside a scratch root that holds the units, the host's own system units and the ExecStart binary.
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { configTemplate } from '../../../src/init/templates.ts';
import { ROOT } from './tools.ts';

const UNITS = ['ward.service', 'ward-ca.service'];
const root = mkdtempSync(join(tmpdir(), 'ward-systemd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function verify(unitText: Record<string, string>): { status: number | null; output: string } {
  rmSync(join(root, 'etc'), { recursive: true, force: true });
  mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
  mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
  mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
  cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
  writeFileSync(join(root, 'usr/local/bin/ward'), '#!/bin/sh\n');
  chmodSync(join(root, 'usr/local/bin/ward'), 0o755);
  for (const [name, text] of Object.entries(unitText))
    writeFileSync(join(root, 'etc/systemd/system', name), text);
  const res = spawnSync(
    'systemd-analyze',
    ['verify', `--root=${root}`, ...Object.keys(unitText).map((u) => `/etc/systemd/system/${u}`)],
    { encoding: 'utf8' },
  );
  if (res.error !== undefined)
    throw new Error(`systemd-analyze: ${res.error.message} (apt-get install systemd)`);
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

const read = (u: string) => readFileSync(`${ROOT}deploy/systemd/${u}`, 'utf8');

describe('deploy/systemd', () => {
  it('the units pass systemd-analyze verify with no warning', () => {
    const res = verify(Object.fromEntries(UNITS.map((u) => [u, read(u)])));
    expect(res.output).toBe('');
    expect(res.status).toBe(0);
  });

  it('the check catches a broken unit', () => {
    const res = verify({
      'ward.service': read('ward.service').replace('KillMode=mixed', 'KillMode=sometimes'),
    });
    expect(res.output).toMatch(/kill mode/i);
  });

  it('ward runs unprivileged with exactly NET_ADMIN and NET_RAW, and stops after its drain', () => {
    const unit = read('ward.service');
    const field = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(unit)?.[1];
    expect(field('User')).toBe('ward');
    expect(field('AmbientCapabilities')).toBe('CAP_NET_ADMIN CAP_NET_RAW');
    expect(field('CapabilityBoundingSet')).toBe('CAP_NET_ADMIN CAP_NET_RAW');
    expect(field('NoNewPrivileges')).toBe('yes');
    expect(field('ExecStart')).toBe('/usr/local/bin/ward run --config /etc/ward/ward.yaml');
    const drain = parseConfigText(configTemplate('vm'), 'vm').shutdown.drainTimeout;
    expect(Number(/^(\d+)s$/.exec(field('TimeoutStopSec') ?? '')?.[1]) * 1000).toBeGreaterThan(drain);
    // The CA unit serves the socket the vm config dials.
    expect(read('ward-ca.service')).toContain(
      `--socket ${parseConfigText(configTemplate('vm'), 'vm').svid.delegatedSocket}`,
    );
  });
});
