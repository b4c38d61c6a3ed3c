import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const WARD = fileURLToPath(new URL('../../bin/ward', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ward-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ward(args: string[], env: NodeJS.ProcessEnv = {}) {
  // A PATH without the project's node_modules: the launcher must still pick the project's Node 24.
  return spawnSync(WARD, args, { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin', ...env } });
}

describe('ward CLI', () => {
  it('the launcher runs dist/ and refuses a dist/ that is missing or older than src/', () => {
    const root = join(dir, 'install');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'src'), { recursive: true });
    copyFileSync(WARD, join(root, 'bin', 'ward'));
    const launch = () =>
      spawnSync(join(root, 'bin', 'ward'), [], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    writeFileSync(join(root, 'src', 'main.ts'), '');
    let res = launch();
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('dist is not built');
    mkdirSync(join(root, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(root, 'dist', 'cli', 'main.js'), "console.log('ran dist');\n");
    writeFileSync(join(root, 'dist', 'BUILD'), '');
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'dist', 'BUILD'), past, past);
    res = launch();
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('is older than');
    expect(res.stderr).toContain("run 'npm run build'");
    utimesSync(join(root, 'src', 'main.ts'), past, past);
    utimesSync(join(root, 'dist', 'BUILD'), new Date(), new Date());
    res = launch();
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('ran dist\n');
  });

  it('--version prints the ward and Node.js versions, on Node 24', () => {
    const res = ward(['--version']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^ward \d+\.\d+\.\d+ \(node v24\.\d+\.\d+\)\n$/);
  });

  it('an unknown command is a usage error (exit 2)', () => {
    const res = ward(['frobnicate']);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("unknown command 'frobnicate'");
  });

  it('run without --config is a usage error', () => {
    const res = ward(['run']);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('--config FILE is required');
  });

  it('run with a bad config exits 2 naming each field and reason', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'capture:\n  podCidrs: [300.1.1.0/24]\nproxy:\n  workers: -1\n');
    const res = ward(['run', '--config', path]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(`invalid configuration (${path})`);
    expect(res.stderr).toContain('capture.podCidrs.0: not a CIDR (bad address): 300.1.1.0/24');
    expect(res.stderr).toContain('proxy.workers:');
  });

  it('an environment override is validated like the file', () => {
    const path = join(dir, 'ok.yaml');
    writeFileSync(path, 'capture:\n  podCidrs: [198.19.1.0/24]\n');
    const res = ward(['run', '--config', path], { WARD_LISTENERS_OUTBOUND_PORT: '0' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('listeners.outboundPort: Too small');
  });

  it('a missing config file names the file', () => {
    const res = ward(['run', '--config', join(dir, 'nope.yaml')]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/nope\.yaml.*cannot read the file/s);
  });

  it('rules show prints the rules ward would install, without installing them', () => {
    const path = join(dir, 'show.yaml');
    writeFileSync(path, 'capture:\n  podCidrs: [198.19.1.0/24]\n  chainPrefix: DEMO\n');
    const res = ward(['rules', 'show', '--config', path]);
    expect(res.status).toBe(0);
    expect(res.stdout).toContain(':DEMO_PREROUTING - [0:0]');
    expect(res.stdout).toContain('# then: ip -4 rule add pref 15001 fwmark 0x10/0xf0 lookup 15001');
  });
});
