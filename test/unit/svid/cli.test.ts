// `ward ca` and `ward svid` as a user runs them: the real bin/ward in child processes.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, until } from './helpers.ts';
import { leafExt, OpensslPki } from './pki.ts';

const WARD = fileURLToPath(new URL('../../../bin/ward', import.meta.url));
let tmp: ReturnType<typeof tempDir>;
const children: ChildProcess[] = [];

function ward(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(WARD, args, { env: { ...process.env, WARD_LOG_LEVEL: 'warn' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 99;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  tmp = tempDir();
  expect(
    (await ward('ca', 'init', '--dir', join(tmp.dir, 'ca'), '--trust-domain', 'spiffe.cilium')).code,
  ).toBe(0);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

describe('ward ca init / issue', () => {
  it('writes the root with the key at mode 0600, and refuses to overwrite it without --force', async () => {
    expect(statSync(join(tmp.dir, 'ca', 'ca.key.pem')).mode & 0o777).toBe(0o600);
    const again = await ward('ca', 'init', '--dir', join(tmp.dir, 'ca'), '--trust-domain', 'spiffe.cilium');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/SVID_CA_FILES: .*--force/);
    const bad = await ward('ca', 'init', '--dir', join(tmp.dir, 'x'), '--trust-domain', 'Bad_TD');
    expect(bad.code).toBe(2);
  });
});

describe('ward svid verify', () => {
  it('exit 0 with the SPIFFE ID, 1 with code and message, 2 on usage errors; JSON shape', async () => {
    const out = join(tmp.dir, 'svids');
    const issued = await ward(
      'ca',
      'issue',
      '--dir',
      join(tmp.dir, 'ca'),
      '--id',
      'spiffe://spiffe.cilium/identity/9',
      '--out',
      out,
    );
    expect(issued.code).toBe(0);
    const chain = join(out, '9.svid.pem');
    const bundle = `spiffe.cilium=${join(tmp.dir, 'ca', 'bundle.json')}`;
    expect(await ward('svid', 'verify', '--bundle', bundle, chain)).toMatchObject({
      code: 0,
      stdout: 'spiffe://spiffe.cilium/identity/9\n',
    });
    const json = await ward('svid', 'verify', '--bundle', bundle, '-o', 'json', chain);
    expect(JSON.parse(json.stdout)).toEqual({
      valid: true,
      spiffeId: 'spiffe://spiffe.cilium/identity/9',
      error: null,
    });
    const late = await ward(
      'svid',
      'verify',
      '--bundle',
      bundle,
      '--at',
      '2100-01-01T00:00:00Z',
      '-o',
      'json',
      chain,
    );
    expect(late.code).toBe(1);
    expect(JSON.parse(late.stdout)).toMatchObject({
      valid: false,
      spiffeId: null,
      error: { code: 'SVID_EXPIRED' },
    });
    const other = await ward(
      'svid',
      'verify',
      '--bundle',
      `other.test=${join(tmp.dir, 'ca', 'ca.pem')}`,
      chain,
    );
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(
      /^SVID_UNKNOWN_TRUST_DOMAIN: no trust bundle for trust domain spiffe.cilium/,
    );
    expect((await ward('svid', 'verify', chain)).code).toBe(2);
    expect((await ward('svid', 'verify', '--bundle', bundle, '--at', 'yesterday', chain)).code).toBe(2);
    expect((await ward('svid', 'verify', '--bundle', bundle, join(tmp.dir, 'missing.pem'))).code).toBe(2);
  });

  it('rejects an openssl-made leaf without URI SAN and garbage input, with their codes', async () => {
    const pki = new OpensslPki();
    try {
      const root = pki.root('root', 'domain1.test');
      const leaf = pki.issue('nouri', root, leafExt(null, { subjectAltName: 'DNS:a.test' }));
      const r = await ward(
        'svid',
        'verify',
        '--bundle',
        `domain1.test=${root.certPath}`,
        '-o',
        'json',
        leaf.certPath,
      );
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).error.code).toBe('SVID_NO_URI_SAN');
      const junk = join(pki.dir, 'junk.der');
      writeFileSync(junk, Buffer.from([0x30, 0x82, 0x05, 0x00, 1, 2, 3]));
      const j = await ward('svid', 'verify', '--bundle', `domain1.test=${root.certPath}`, '-o', 'json', junk);
      expect(j.code).toBe(1);
      expect(JSON.parse(j.stdout).error.code).toBe('SVID_MALFORMED_CERT');
    } finally {
      pki.cleanup();
    }
  });
});

describe('ward ca serve + ward svid list', () => {
  it('serves both APIs, reloads the identities file, and stops on SIGTERM', async () => {
    const socket = join(tmp.dir, 'api.sock');
    const ids = join(tmp.dir, 'ids.yaml');
    writeFileSync(ids, 'identities:\n  - id: spiffe://spiffe.cilium/identity/11\n    workload: true\n');
    const serve = spawn(WARD, [
      'ca',
      'serve',
      '--dir',
      join(tmp.dir, 'ca'),
      '--socket',
      socket,
      '--identities',
      ids,
      '--ttl',
      '10m',
    ]);
    children.push(serve);
    let log = '';
    serve.stdout.on('data', (d: Buffer) => (log += d.toString()));
    await until(() => log.includes('"serving"'), 10_000, 'ca serve');
    const d = await ward('svid', 'list', '--socket', socket, '-o', 'json');
    expect(d.code).toBe(0);
    expect(JSON.parse(d.stdout).svids.map((s: { spiffeId: string }) => s.spiffeId)).toEqual([
      'spiffe://spiffe.cilium/identity/11',
    ]);
    const w = await ward('svid', 'list', '--socket', socket, '--workload');
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/spiffe:\/\/spiffe.cilium\/identity\/11\s+[0-9A-F]{32}\s+\d{4}-/);
    writeFileSync(
      ids,
      'identities:\n  - id: spiffe://spiffe.cilium/identity/11\n  - id: spiffe://spiffe.cilium/identity/12\n',
    );
    await until(() => log.includes('registry reloaded'), 5000, 'reload');
    const after = await ward('svid', 'list', '--socket', socket, '-o', 'json');
    expect(JSON.parse(after.stdout).svids).toHaveLength(2);
    const denied = await ward('svid', 'list', '--socket', socket, '--workload', '--timeout', '3s');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/PERMISSION_DENIED: no identity issued/);
    const exited = new Promise<number | null>((r) => serve.on('exit', (c) => r(c)));
    serve.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 40_000);
});
