// The files source: a half-written or invalid file never replaces the last good policy silently.
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import { createFilePolicySource } from '../../../src/policy/file-source.ts';
import type { PolicySnapshot } from '../../../src/policy/snapshot.ts';
import { app, cnp } from './helpers.ts';

const deny = cnp('deny', 'default', 'endpointSelector: { matchLabels: { app: server } }\ningress: [{}]');
const allow = cnp(
  'allow',
  'default',
  'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: client } }] }]',
);
const verdict = (s: PolicySnapshot | undefined) =>
  decide({ src: app('client'), dst: app('server'), dport: 80, protocol: 'TCP' }, s!).verdict;

describe('file policy source', () => {
  let dir: string;
  let src: ReturnType<typeof createFilePolicySource> | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ward-fsrc-'));
  });
  afterEach(async () => {
    await src?.close();
    src = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  // The reload tests call reload() themselves: a long debounce keeps the watcher out of their way.
  const open = async (debounce = 60_000) => {
    src = createFilePolicySource({ directory: dir, debounce, logger: pino({ level: 'silent' }) });
    await src.start();
    return src;
  };

  it('loads the directory and publishes a snapshot', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny + allow);
    const s = await open();
    expect(s.current()?.policies).toHaveLength(2);
    expect(verdict(s.current())).toBe('allow');
  });

  it('keeps the last good version of a file that stops parsing, and says so', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny + allow);
    const s = await open();
    writeFileSync(
      join(dir, 'a.yaml'),
      `${deny}apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: allow, namespace: default\n`,
    );
    await s.reload();
    expect(s.current()!.revision).toBe(2);
    expect(
      s
        .current()!
        .policies.map((p) => p.ref.name)
        .sort(),
    ).toEqual(['allow', 'deny']);
    expect(
      s.current()!.issues.some((i) => /keeping the last good version of this file/.test(i.message)),
    ).toBe(true);
    expect(verdict(s.current())).toBe('allow');
  });

  it('keeps the last good version of a policy that becomes invalid; other policies update', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny + allow);
    const s = await open();
    const badAllow = cnp(
      'allow',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\ningress: [{ toPorts: [{ ports: [{ port: "99999" }] }] }]',
    );
    const changedDeny = cnp(
      'deny',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\negress: [{}]',
    );
    writeFileSync(join(dir, 'a.yaml'), changedDeny + badAllow);
    await s.reload();
    const snap = s.current()!;
    const kept = snap.policies.find((p) => p.ref.name === 'allow')!;
    expect(kept.rules[0]!.ingress[0]!.l3.kind).toBe('peers');
    expect(snap.policies.find((p) => p.ref.name === 'deny')!.rules[0]!.egress).toHaveLength(1);
    expect(snap.issues.find((i) => i.severity === 'error')?.message).toMatch(
      /keeping the last good version of CiliumNetworkPolicy\/default\/allow/,
    );
  });

  it('rejects an invalid new file on its own; the others stay enforced', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny);
    const s = await open();
    writeFileSync(
      join(dir, 'b.yaml'),
      cnp('x', 'default', 'endpointSelector: {}\ningress: [{ fromEntities: [nope] }]'),
    );
    await s.reload();
    expect(s.current()!.policies.map((p) => p.ref.name)).toEqual(['deny']);
    expect(s.current()!.issues.some((i) => i.file === join(dir, 'b.yaml') && i.severity === 'error')).toBe(
      true,
    );
    expect(verdict(s.current())).toBe('deny');
  });

  it('drops the policies of a removed file', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny);
    writeFileSync(join(dir, 'b.yaml'), allow);
    const s = await open();
    unlinkSync(join(dir, 'b.yaml'));
    await s.reload();
    expect(verdict(s.current())).toBe('deny');
  });

  it('notices changes through the directory watch', async () => {
    writeFileSync(join(dir, 'a.yaml'), deny);
    const s = await open(20);
    const next = new Promise<PolicySnapshot>((resolve) => {
      const off = s.onSnapshot((snap) => {
        off();
        resolve(snap);
      });
    });
    writeFileSync(join(dir, 'b.yaml'), allow);
    const snap = await next;
    expect(verdict(snap)).toBe('allow');
  });
});
