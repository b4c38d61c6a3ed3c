// The DaemonSet's init container against a stand-in API server: CiliumNode first, then Node, retried
// while neither has CIDRs, and the env file the ward container sources.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { lookupPodCidrs } from '../../../src/init/pod-cidrs.ts';
import { configTemplate } from '../../../src/init/templates.ts';
import { ROOT } from './tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'ward-podcidrs-'));
const objects = new Map<string, unknown>();
const seen: { path: string; auth: string | undefined }[] = [];
let server: Server;
let api: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', auth: req.headers.authorization });
    const obj = objects.get(req.url ?? '');
    res.writeHead(obj === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(obj ?? { kind: 'Status', code: 404 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(`${ROOT}node_modules/.bin/node`, [`${ROOT}src/init/pod-cidrs.ts`, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('pod-cidrs', () => {
  it("prefers the CiliumNode's spec.ipam.podCIDRs", async () => {
    objects.clear();
    objects.set('/apis/cilium.io/v2/ciliumnodes/n1', {
      spec: { ipam: { podCIDRs: ['10.0.1.0/24', 'fd00:1::/64'] } },
    });
    objects.set('/api/v1/nodes/n1', { spec: { podCIDRs: ['10.99.0.0/24'] } });
    expect(await lookupPodCidrs({ api, node: 'n1', token: 't0k' })).toEqual({
      cidrs: ['10.0.1.0/24', 'fd00:1::/64'],
      from: 'CiliumNode n1',
    });
    expect(seen.at(-1)?.auth).toBe('Bearer t0k');
  });

  it("falls back to the Node's spec.podCIDRs, then spec.podCIDR", async () => {
    objects.clear();
    objects.set('/api/v1/nodes/n2', { spec: { podCIDRs: ['10.0.2.0/24'] } });
    expect((await lookupPodCidrs({ api, node: 'n2' })).cidrs).toEqual(['10.0.2.0/24']);
    objects.set('/api/v1/nodes/n3', { spec: { podCIDR: '10.0.3.0/24' } });
    expect(await lookupPodCidrs({ api, node: 'n3' })).toEqual({ cidrs: ['10.0.3.0/24'], from: 'Node n3' });
    await expect(lookupPodCidrs({ api, node: 'nope' })).rejects.toThrow(/node nope not found/);
  });

  it('writes the env file that makes the kubernetes config valid', async () => {
    objects.clear();
    objects.set('/apis/cilium.io/v2/ciliumnodes/n4', { spec: { ipam: { podCIDRs: ['10.0.4.0/24'] } } });
    const out = join(dir, 'n4.env');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'secret\n');
    const res = await run(['--node', 'n4', '--out', out, '--api', api, '--token-file', tokenFile]);
    expect(res.code).toBe(0);
    const env = readFileSync(out, 'utf8');
    expect(env).toBe('WARD_CAPTURE_POD_CIDRS=10.0.4.0/24\n');
    const [k, v] = env.trim().split('=') as [string, string];
    const c = parseConfigText(configTemplate('kubernetes'), 'k8s', { [k]: v });
    expect(c.capture.podCidrs).toEqual(['10.0.4.0/24']);
    expect(seen.at(-1)?.auth).toBe('Bearer secret');
  });

  it('retries while the node has no CIDRs yet, then gives up with exit 1', async () => {
    objects.clear();
    objects.set('/api/v1/nodes/n5', { spec: {} });
    const out = join(dir, 'n5.env');
    const res = await run([
      '--node',
      'n5',
      '--out',
      out,
      '--api',
      api,
      '--timeout',
      '300ms',
      '--interval',
      '100ms',
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('retrying');
    expect(res.stderr).toContain('giving up: neither CiliumNode nor Node n5 lists pod CIDRs yet');
  });

  it('refuses a CIDR that ward would refuse', async () => {
    objects.clear();
    objects.set('/api/v1/nodes/n6', { spec: { podCIDRs: ['10.0.6.0/33'] } });
    const res = await run(['--node', 'n6', '--out', join(dir, 'n6.env'), '--api', api, '--timeout', '0s']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/prefix/);
  });
});
