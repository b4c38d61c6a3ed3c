// Faults injected into a running mesh (two nodes, each with ward, the development CA standing in for the
// SPIRE agent, policies from files): a slow reader, garbage from the policy and inventory files, a tunnel
// whose TCP path is cut, a worker killed, the SVID source gone past the SVIDs' expiry, and ward itself
// killed mid-transfer. Each test asserts what a client sees (never a hang) and what ward logs.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../../src/lab/lab.ts';
import { holdConnection, labName, peer, servePeer, stableRuleset, until } from './helpers.ts';

const MiB = 1 << 20;
const ALLOW = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: allow-client, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      authentication: { mode: required }
`;
const POLICIES = { '10-allow.yaml': ALLOW };

let lab: Lab;
let server: { stop: () => void };
let to: string;

function admin(node: LabNode, method: string, path: string): Record<string, unknown> {
  const res = spawnSync(
    'ip',
    ['netns', 'exec', node.ns, 'curl', '-sS', '-X', method, `http://127.0.0.1:15000${path}`],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(res.stdout) as Record<string, unknown>;
}

function tunnelsOpened(node: LabNode): number {
  return (admin(node, 'GET', '/stats') as { counters: { tunnels: { opened: number } } }).counters.tunnels
    .opened;
}

/** Resident set of a ward (the node process and its worker threads are one process). */
function rssBytes(node: LabNode): number {
  const pid = node.ward?.pid ?? -1;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

const send = (pod = 'client', bytes = 20_000) =>
  peer(lab.pod(pod), ['send', '--to', to, '--bytes', String(bytes)], 30_000);

beforeAll(async () => {
  lab = await Lab.create({
    name: labName(),
    nodes: [
      { name: 'a', pods: ['client', 'client2'] },
      { name: 'b', pods: ['server'] },
    ],
    mesh: { svidTtl: '6s', policies: POLICIES },
    wardConfig: {
      proxy: { workers: 2 },
      mesh: { keepaliveInterval: '1s', keepaliveTimeout: '1s' },
    },
  });
  server = await servePeer(lab.pod('server'), ['serve', '--port', '8080']);
  to = `${lab.pod('server').ip}:8080`;
  const first = await send();
  expect(first).toMatchObject({ ok: true });
}, 120_000);

afterAll(async () => {
  server?.stop();
  await lab?.destroy();
});

describe('bounded buffering', () => {
  it('a reader that stops never makes either ward buffer the stream: RSS stays flat, then every byte arrives', async () => {
    const flag = join(lab.dir, 'resume-slow-reader');
    rmSync(flag, { force: true });
    const rssA = rssBytes(lab.node('a'));
    const rssB = rssBytes(lab.node('b'));
    const bytes = 256 * MiB;
    const fetch = peer(
      lab.pod('client'),
      ['fetch', '--to', to, '--bytes', String(bytes), '--seed', 'ab', '--pause-until', flag],
      120_000,
    );
    // The server can write 256 MiB in well under this; all of it would sit in ward if it read unbounded.
    await new Promise((r) => setTimeout(r, 4000));
    const grownA = rssBytes(lab.node('a')) - rssA;
    const grownB = rssBytes(lab.node('b')) - rssB;
    writeFileSync(flag, '');
    const res = await fetch;
    expect(res).toMatchObject({ ok: true, received: bytes });
    // At most the socket buffers, one stream window and a read chunk per hop; generous for GC noise.
    expect(grownA).toBeLessThan(48 * MiB);
    expect(grownB).toBeLessThan(48 * MiB);
  }, 150_000);
});

describe('the policy and inventory files return garbage', () => {
  it('the last good policy stays enforced, and the last good inventory too', async () => {
    const b = lab.node('b').ward;
    const before = b?.lines().length ?? 0;
    // The allow policy replaced by a syntax error, a second file that is an alias bomb, and junk bytes.
    const bomb = [
      'a: &a [x]',
      ...Array.from(
        { length: 12 },
        (_, i) => `b${i}: &b${i} [*${i === 0 ? 'a' : `b${i - 1}`}, *${i === 0 ? 'a' : `b${i - 1}`}]`,
      ),
    ].join('\n');
    lab.setPolicies({
      '10-allow.yaml': `${ALLOW}\n  oops: [unclosed\n`,
      '20-bomb.yaml': bomb,
      '30-junk.yaml': '\u0000\u00ff\u0001 not yaml {{{{',
    });
    await b?.waitForLine(
      (l) =>
        String(l.msg ?? '').includes('keeping the last good') ||
        String(l.message ?? '').includes('keeping the last good') ||
        JSON.stringify(l).includes('keeping the last good'),
      15_000,
      'a rejected policy file',
      before,
    );
    const inv = readFileSync(lab.inventoryPath, 'utf8');
    writeFileSync(lab.inventoryPath, 'workloads: [ {name: 1, ips: "not a list"} ]\n\u0000garbage');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await send()).toMatchObject({ ok: true });
    const denied = await send('client2');
    expect(denied.ok).not.toBe(true);
    expect(lab.node('a').ward?.running).toBe(true);
    expect(b?.running).toBe(true);
    writeFileSync(lab.inventoryPath, inv);
    lab.setPolicies(POLICIES);
  }, 60_000);
});

describe('a tunnel whose TCP path is cut', () => {
  it('its streams fail within the keepalive deadline, and new connections open a new tunnel', async () => {
    const a = lab.node('a');
    const held = holdConnection(lab.pod('client'), to);
    await held.echoing;
    const opened = tunnelsOpened(a);
    // The tunnel's TCP connection: client pod IP:<port> → server pod IP:15008, seen from node a.
    const ss = a.exec(['ss', '-tnH', 'state', 'established', 'dst', `${lab.pod('server').ip}:15008`]);
    const ports = [...ss.matchAll(/\s[\d.]+:(\d+)\s+[\d.]+:15008/g)].map((m) => m[1]);
    expect(ports.length).toBeGreaterThan(0);
    // Drop that 4-tuple both ways on the underlay, at each node's eth0 ingress.
    const rules = (node: LabNode, match: string) =>
      node.exec(
        ['nft', '-f', '-'],
        `table netdev wardcut {\n chain in {\n  type filter hook ingress device eth0 priority 0;\n${ports.map((p) => `  tcp ${match} ${p} drop\n`).join('')} }\n}\n`,
      );
    rules(lab.node('b'), 'sport');
    rules(a, 'dport');
    const bBefore = lab.node('b').ward?.accessLog().length ?? 0;
    const cutAt = Date.now();
    try {
      const end = await Promise.race([held.ended, new Promise((r) => setTimeout(() => r('hang'), 15_000))]);
      const tookMs = Date.now() - cutAt;
      expect(end).toMatchObject({ event: 'end', outcome: 'reset' });
      // Keepalive: a PING every 1 s, 1 s to answer, checked by a coarse sweep: well within 10 s.
      expect(tookMs).toBeLessThan(10_000);
      const line = await until('keepalive line', () =>
        a.ward?.lines().find((l) => l.msg === 'tunnel keepalive timed out; closing it'),
      );
      expect(line).toBeDefined();
      // The destination side notices too (its own PING goes unanswered): the stream and its upstream
      // connection to the server pod are reset, not left open until the idle timeout.
      const atB = await until(
        'the held stream closed at b',
        () =>
          lab
            .node('b')
            .ward?.accessLog()
            .slice(bBefore)
            .find((l) => String(l.src).startsWith(`${lab.pod('client').ip}:`) && l.reason === 'client_reset'),
        10_000,
      );
      expect(atB.tunnel).toBe(true);
      expect(await send()).toMatchObject({ ok: true });
      expect(tunnelsOpened(a)).toBeGreaterThan(opened);
    } finally {
      for (const n of [a, lab.node('b')]) n.exec(['nft', 'delete', 'table', 'netdev', 'wardcut']);
      held.kill();
    }
  }, 60_000);
});

describe('a worker killed under mesh traffic', () => {
  it('the other worker keeps its connections and the node keeps serving', async () => {
    const a = lab.node('a');
    const held = Array.from({ length: 8 }, () => holdConnection(lab.pod('client'), to));
    await Promise.all(held.map((h) => h.echoing));
    const ended: (Record<string, unknown> | null)[] = held.map(() => null);
    held.forEach((h, i) => {
      void h.ended.then((v) => {
        ended[i] = v;
      });
    });
    expect(admin(a, 'POST', '/workers/kill?index=0')).toEqual({ killed: true, index: 0 });
    await new Promise((r) => setTimeout(r, 2000));
    // Those on the killed worker ended at once with a reset (the kernel closes a terminated thread's
    // sockets, abortively: SO_LINGER 0 until ward closes them itself); the rest are still echoing.
    const gone = ended.filter((e) => e !== null);
    for (const e of gone) expect(e?.outcome).toBe('reset');
    const survivors = ended.filter((e) => e === null).length;
    expect(survivors).toBeLessThan(8);
    const results = await Promise.all(Array.from({ length: 6 }, () => send()));
    for (const r of results) expect(r).toMatchObject({ ok: true });
    await until('worker replaced', () => {
      const s = admin(a, 'GET', '/stats') as { workers: { state: string }[]; workerRestarts: number };
      return s.workerRestarts >= 1 && s.workers.every((w) => w.state === 'ready');
    });
    for (const h of held) h.kill();
  }, 60_000);
});

describe('the SVID source disappears', () => {
  it('existing SVIDs serve until they expire, then connections are refused with a reason, then service resumes', async () => {
    const a = lab.node('a');
    await lab.stopCa();
    const stoppedAt = Date.now();
    // Still within the SVIDs' lifetime (6 s, rotated every 3 s): connections go through.
    expect(await send()).toMatchObject({ ok: true });
    // Past every SVID's expiry (issued at most 3 s before the CA stopped, living 6 s).
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 7500 - Date.now())));
    const before = a.ward?.accessLog().length ?? 0;
    const refused = await send();
    expect(refused.ok).not.toBe(true);
    const line = await until('refusal line', () =>
      a.ward
        ?.accessLog()
        .slice(before)
        .find((l) => String(l.src).startsWith(lab.pod('client').ip)),
    );
    expect(line.reason).toBe('identity_unavailable');
    expect(String(line.error)).toMatch(/SVID|identity/i);
    await lab.startCa();
    await until(
      'service resumed',
      () => {
        const r = spawnSync(
          'ip',
          [
            'netns',
            'exec',
            lab.pod('client').ns,
            process.execPath,
            join(import.meta.dirname, '../../src/lab/peer.ts'),
            'send',
            '--to',
            to,
            '--bytes',
            '1000',
          ],
          { encoding: 'utf8', timeout: 10_000 },
        );
        return r.stdout.includes('"ok":true');
      },
      30_000,
    );
  }, 90_000);
});

describe('ward killed on the source node mid-transfer', () => {
  it('clients see the connection end at once (never a hang); the rules stay; a restart restores service', async () => {
    const a = lab.node('a');
    const rulesBefore = stableRuleset(a.ruleset());
    const held = holdConnection(lab.pod('client'), to);
    await held.echoing;
    const upload = peer(lab.pod('client'), ['send', '--to', to, '--bytes', String(2048 * MiB)], 60_000);
    await new Promise((r) => setTimeout(r, 500));
    await a.ward?.stop('SIGKILL');
    const killedAt = Date.now();
    const end = await Promise.race([held.ended, new Promise((r) => setTimeout(() => r('hang'), 10_000))]);
    expect(end).not.toBe('hang');
    // A reset, not an orderly close: ward's sockets are set to close abortively until ward closes them itself.
    expect((end as { outcome: string }).outcome).toBe('reset');
    const up = await upload;
    expect(up.ok).not.toBe(true);
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    // Fails closed: the rules stay and a new connection finds no listener.
    expect(stableRuleset(a.ruleset())).toBe(rulesBefore);
    const closed = await peer(lab.pod('client'), ['probe', '--to', to, '--timeout', '2000'], 20_000);
    expect(closed.outcome).not.toBe('echoed');
    await a.startWard();
    expect(stableRuleset(a.ruleset())).toBe(rulesBefore);
    expect(await send()).toMatchObject({ ok: true });
  }, 120_000);
});
