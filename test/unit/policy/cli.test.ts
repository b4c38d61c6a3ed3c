// `ward policy validate` and `ward policy trace`, run through bin/ward as a user runs them.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const WARD = new URL('../../../bin/ward', import.meta.url).pathname;
const SEED = new URL('../../../examples/seed/policies', import.meta.url).pathname;

async function ward(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(WARD, args, { timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const demo = JSON.stringify({ namespace: 'default', labels: { app: 'demodeployment' } });
const client = (n: number) => JSON.stringify({ namespace: 'default', labels: { app: `client${n}` } });

describe('ward policy (CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ward-cli-'));
    writeFileSync(
      join(dir, 'bad.yaml'),
      `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: ok, namespace: default }
spec: { endpointSelector: {}, ingress: [{}] }
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: bad, namespace: default }
spec:
  endpointSelector: {}
  ingress: [{ toPorts: [{ ports: [{ port: "80", endPort: 10 }] }] }]
`,
    );
    writeFileSync(
      join(dir, 'ns.yaml'),
      `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: from-web, namespace: default }
spec:
  podSelector: { matchLabels: { app: demodeployment } }
  ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: web } } }] }]
`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validate: the seed is valid (exit 0)', async () => {
    const r = await ward('policy', 'validate', SEED);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 valid policies, 0 errors/);
  });

  it('validate: names file, document and field; exit 1', async () => {
    const r = await ward('policy', 'validate', join(dir, 'bad.yaml'));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `${join(dir, 'bad.yaml')}#1 spec.ingress[0].toPorts[0].ports[0].endPort: endPort 10 must be greater`,
    );
    expect(r.stdout).toMatch(/1 valid policy, 1 error/);
  });

  it('trace -o json: the seed client2 needs authentication', async () => {
    const r = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      client(2),
      '--to',
      demo,
      '--dport',
      '80',
      '-o',
      'json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as {
      egress: { verdict: string; authRequired: boolean; matched: unknown[] };
      ingress: {
        verdict: string;
        authRequired: boolean;
        matched: { policy: string; authentication?: string }[];
      };
      authRequired: boolean;
    };
    expect(j.egress).toEqual({ verdict: 'allow', authRequired: false, matched: [] });
    expect(j.ingress.verdict).toBe('allow');
    expect(j.ingress.authRequired).toBe(true);
    expect(j.ingress.matched.map((m) => m.policy)).toEqual([
      'CiliumNetworkPolicy/default/demo3-allow-client2-mutual-auth',
    ]);
    expect(j.authRequired).toBe(true);
  });

  it('trace text: client3 is denied and the default-deny policy is named; exit 0', async () => {
    const r = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      client(3),
      '--to',
      demo,
      '--dport',
      '80',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /default deny enabled by:\n\s+CiliumNetworkPolicy\/default\/demo1-default-deny spec/,
    );
    expect(r.stdout).toMatch(/Final verdict: DENIED \(ingress\)/);
  });

  it('trace: --namespace labels reach the identity (KNP namespaceSelector)', async () => {
    const from = JSON.stringify({ namespace: 'w', labels: {} });
    const args = [
      'policy',
      'trace',
      '--policy',
      join(dir, 'ns.yaml'),
      '--from',
      from,
      '--to',
      demo,
      '--dport',
      '80',
      '-o',
      'json',
    ];
    const without = JSON.parse((await ward(...args)).stdout) as { ingress: { verdict: string } };
    expect(without.ingress.verdict).toBe('deny');
    const withNs = JSON.parse((await ward(...args, '--namespace', 'w=team=web')).stdout) as {
      ingress: { verdict: string };
    };
    expect(withNs.ingress.verdict).toBe('allow');
  });

  it('trace: an object with only ip is outside the cluster', async () => {
    const r = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      '{"ip":"8.8.8.8"}',
      '--to',
      demo,
      '--dport',
      '80',
      '-o',
      'json',
    );
    const j = JSON.parse(r.stdout) as { ingress: { verdict: string } };
    expect(j.ingress.verdict).toBe('deny');
  });

  it('trace: invalid input exits 2 with the error', async () => {
    const bad = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      '{"labels":',
      '--to',
      demo,
      '--dport',
      '80',
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--from: not JSON/);
    const port = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      client(1),
      '--to',
      demo,
      '--dport',
      '0',
    );
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--dport/);
    const field = await ward(
      'policy',
      'trace',
      '--policy',
      SEED,
      '--from',
      '{"nmespace":"x"}',
      '--to',
      demo,
      '--dport',
      '80',
    );
    expect(field.code).toBe(2);
    expect(field.stderr).toMatch(/nmespace|Unrecognized/);
  });
});
