// Kubernetes API credentials: kubeconfig (token, tokenFile, CA data) and in-cluster detection.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectKube } from '../../../src/policy/kube/client.ts';

describe('connectKube', () => {
  let dir: string | undefined;
  const saved = process.env.KUBERNETES_SERVICE_HOST;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
    if (saved === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
    else process.env.KUBERNETES_SERVICE_HOST = saved;
  });

  const kubeconfig = (user: string) => `apiVersion: v1
kind: Config
current-context: dev
contexts:
  - name: dev
    context: { cluster: c1, user: u1 }
  - name: other
    context: { cluster: c1, user: missing }
clusters:
  - name: c1
    cluster: { server: "https://127.0.0.1:6443/", insecure-skip-tls-verify: true }
users:
  - name: u1
    user: ${user}
`;

  it('reads server and bearer token from the current context', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-kc-'));
    const path = join(dir, 'config');
    writeFileSync(path, kubeconfig('{ token: abc123 }'));
    const c = connectKube({ auth: 'kubeconfig', kubeconfig: path });
    expect(c.server).toBe('https://127.0.0.1:6443');
    expect(c.authorization()).toBe('Bearer abc123');
    await c.dispatcher.close();
  });

  it('re-reads a tokenFile for every request (rotated tokens)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-kc-'));
    writeFileSync(join(dir, 'token'), 'one\n');
    writeFileSync(join(dir, 'config'), kubeconfig(`{ tokenFile: ${join(dir, 'token')} }`));
    const c = connectKube({ auth: 'kubeconfig', kubeconfig: join(dir, 'config') });
    expect(c.authorization()).toBe('Bearer one');
    writeFileSync(join(dir, 'token'), 'two\n');
    expect(c.authorization()).toBe('Bearer two');
    await c.dispatcher.close();
  });

  it('names a missing context, and refuses exec plugins', () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-kc-'));
    writeFileSync(join(dir, 'config'), kubeconfig('{ exec: { command: aws } }'));
    expect(() =>
      connectKube({ auth: 'kubeconfig', kubeconfig: join(dir!, 'config'), context: 'nope' }),
    ).toThrow(/context "nope" not found/);
    expect(() => connectKube({ auth: 'kubeconfig', kubeconfig: join(dir!, 'config') })).toThrow(
      /exec credential plugins/,
    );
  });

  it('in-cluster without KUBERNETES_SERVICE_HOST says so', () => {
    delete process.env.KUBERNETES_SERVICE_HOST;
    expect(() => connectKube({ auth: 'in-cluster' })).toThrow(/not running in a pod/);
  });
});
