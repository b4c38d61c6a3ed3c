// `ward init`: a starting config per mode, each accepted by ward's own validation.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { configTemplate, INIT_MODES } from '../../../src/init/templates.ts';
import { ROOT } from './tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'ward-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ward = (args: string[]) => spawnSync(`${ROOT}bin/ward`, args, { encoding: 'utf8' });

describe('ward init templates', () => {
  it.each(INIT_MODES)('the %s config passes validation', (mode) => {
    const env = mode === 'kubernetes' ? { WARD_CAPTURE_POD_CIDRS: '10.0.1.0/24', WARD_NODE_NAME: 'n1' } : {};
    const c = parseConfigText(configTemplate(mode), mode, env);
    expect(c.capture.podCidrs.length).toBeGreaterThan(0);
  });

  it('kubernetes: identities from SPIRE, policy and workloads from the API; pod CIDRs from the environment', () => {
    const text = configTemplate('kubernetes');
    expect(() => parseConfigText(text, 'k8s')).toThrow(/capture\.podCidrs/);
    const c = parseConfigText(text, 'k8s', { WARD_CAPTURE_POD_CIDRS: '10.0.1.0/24', WARD_NODE_NAME: 'n1' });
    expect(c.node.name).toBe('n1');
    expect(c.svid).toMatchObject({ source: 'delegated', delegatedSocket: '/run/spire/sockets/admin.sock' });
    expect(c.policy.source).toBe('kubernetes');
    expect(c.inventory.source).toBe('kubernetes');
  });

  it('vm: files for policy and inventory, the options given', () => {
    const c = parseConfigText(
      configTemplate('vm', { nodeName: 'vm-b', podCidrs: ['10.10.2.0/24'], trustDomain: 'vm.test' }),
      'vm',
    );
    expect(c.node.name).toBe('vm-b');
    expect(c.capture.podCidrs).toEqual(['10.10.2.0/24']);
    expect(c.svid.trustDomain).toBe('vm.test');
    expect(c.policy).toMatchObject({ source: 'files', directory: '/etc/ward/policies' });
    expect(c.inventory).toEqual({ source: 'file', file: '/etc/ward/inventory.yaml' });
  });

  it('every template is commented', () => {
    for (const mode of INIT_MODES) expect(configTemplate(mode).split('\n')[0]).toMatch(/^# ward/);
  });
});

describe('ward init command', () => {
  it('prints the config on stdout without --out', () => {
    const res = ward(['init', '--mode', 'lab']);
    expect(res.status).toBe(0);
    expect(res.stdout).toBe(configTemplate('lab'));
  });

  it('writes --out, and refuses to overwrite it without --force', () => {
    const out = join(dir, 'ward.yaml');
    expect(
      ward(['init', '--mode', 'vm', '--node-name', 'vm-a', '--pod-cidr', '10.10.1.0/24', '--out', out])
        .status,
    ).toBe(0);
    expect(parseConfigText(readFileSync(out, 'utf8'), out).node.name).toBe('vm-a');
    writeFileSync(out, 'keep');
    const again = ward(['init', '--mode', 'vm', '--out', out]);
    expect(again.status).toBe(1);
    expect(readFileSync(out, 'utf8')).toBe('keep');
    expect(ward(['init', '--mode', 'kubernetes', '--out', out, '--force']).status).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(configTemplate('kubernetes'));
  });

  it('rejects an unknown mode and an invalid option value', () => {
    const bad = ward(['init', '--mode', 'cloud']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--mode must be one of kubernetes, vm, lab');
    const cidr = ward(['init', '--mode', 'vm', '--pod-cidr', '10.0.0.0/33']);
    expect(cidr.status).toBe(2);
    expect(cidr.stderr).toContain('capture.podCidrs.0');
  });
});
