// The seed scenario end to end, for real: three nodes (a and b run ward, c does not), the development
// CA serving the Delegated Identity API on a Unix socket (standing in for the SPIRE agent's admin
// socket), the seed's CiliumNetworkPolicies from files, and HBONE (mTLS, HTTP/2 CONNECT) between the
// wards over the underlay.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LogLine } from '../../src/lab/lab.ts';
import { run } from '../../src/lab/netns.ts';
import { keystreamSha256 } from '../../src/lab/peer.ts';
import { WARD_MAIN } from '../../src/lab/ward-entry.ts';
import { holdConnection, labName, peer, servePeer, until } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MiB = 1 << 20;
const seed = (f: string) => readFileSync(join(ROOT, 'examples/seed/policies', f), 'utf8');
const SEED_POLICIES = {
  '00-default-deny.yaml': seed('00-default-deny.yaml'),
  '10-allow-client1.yaml': seed('10-allow-client1.yaml'),
  '20-allow-client2-auth.yaml': seed('20-allow-client2-auth.yaml'),
};
// Test traffic on 8080 (lab protocol) between client1 and the demo pods, so bulk checks need no HTTP.
const BULK_POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: lab-bulk, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: demodeployment } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client1 } }]
      toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }]
`;

let lab: Lab;
const servers: { stop: () => void }[] = [];
let demo0: string;
let demo1: string;

function flows(node: string): LogLine[] {
  return (
    lab
      .node(node)
      .ward?.lines()
      .filter((l) => l.component === 'flow') ?? []
  );
}

function access(node: string): LogLine[] {
  return lab.node(node).ward?.accessLog() ?? [];
}

beforeAll(async () => {
  lab = await Lab.create({
    name: labName(),
    nodes: [
      { name: 'a', pods: ['client1', 'client2', 'client3'] },
      { name: 'b', pods: ['demo-0', 'demo-1'] },
      { name: 'c', pods: ['outsider', 'rogue'], ward: false },
    ],
    mesh: {
      workloads: {
        'demo-0': { labels: { app: 'demodeployment' } },
        'demo-1': { labels: { app: 'demodeployment' } },
        // A client2 on a node without ward: its traffic can only arrive in plaintext.
        outsider: { labels: { app: 'client2' } },
      },
      policies: { ...SEED_POLICIES, '30-lab-bulk.yaml': BULK_POLICY },
    },
  });
  demo0 = lab.pod('demo-0').ip;
  demo1 = lab.pod('demo-1').ip;
  for (const pod of ['demo-0', 'demo-1']) {
    servers.push(await servePeer(lab.pod(pod), ['http', '--port', '80']));
    servers.push(await servePeer(lab.pod(pod), ['serve', '--port', '8080']));
  }
}, 120_000);

afterAll(async () => {
  for (const s of servers) s.stop();
  await lab?.destroy();
});

describe('the seed scenario', () => {
  it('client1 → demodeployment is allowed, over mTLS, on its very first connection', async () => {
    const res = await peer(lab.pod('client1'), ['get', '--to', `${demo0}:80`]);
    expect(res).toMatchObject({ ok: true, status: 200, bytes: 615 });
    const out = await until('ward a access line', () =>
      access('a').find((l) => l.src?.toString().startsWith(lab.pod('client1').ip)),
    );
    expect(out).toMatchObject({ reason: 'completed', mtls: true, peer: lab.spiffeIds().get('demo-0') });
    const inFlow = await until('ward b flow', () =>
      flows('b').find((f) => (f.IP as { source: string }).source === lab.pod('client1').ip),
    );
    expect(inFlow).toMatchObject({ verdict: 'FORWARDED', traffic_direction: 'INGRESS', auth_type: 'SPIRE' });
    expect(inFlow.Summary).toBe('policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN; Auth: SPIRE)');
  });

  it('client2 → demodeployment is allowed with authentication; the underlay shows TLS 1.3, never the request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ward-pcap-'));
    const pcap = join(dir, 'underlay.pcap');
    const dump: ChildProcess = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.node('a').ns,
        'tcpdump',
        '-Z',
        'root',
        '--immediate-mode',
        '-i',
        'eth0',
        '-U',
        '-s',
        '0',
        '-w',
        pcap,
        'tcp',
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        dump.stderr?.on('data', (d: Buffer) => {
          if (d.toString().includes('listening on')) resolve();
        });
        dump.once('exit', (code) => reject(new Error(`tcpdump exited ${code}`)));
      });
      const res = await peer(lab.pod('client2'), [
        'get',
        '--to',
        `${demo1}:80`,
        '--path',
        '/secret-page-of-client2',
      ]);
      expect(res).toMatchObject({ ok: true, status: 200 });
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      dump.kill('SIGINT');
      await new Promise((r) => dump.once('exit', r));
    }
    const bytes = readFileSync(pcap);
    rmSync(dir, { recursive: true, force: true });
    expect(bytes.length).toBeGreaterThan(500);
    // The request text never crosses the underlay…
    expect(bytes.includes(Buffer.from('secret-page-of-client2'))).toBe(false);
    expect(bytes.includes(Buffer.from('GET /'))).toBe(false);
    // …TLS records do: a handshake, then application data records (content type 23, legacy version 3.3),
    // and the ServerHello's supported_versions extension says TLS 1.3 (0x002b, length 2, 0x0304).
    expect(bytes.includes(Buffer.from([0x16, 0x03, 0x01]))).toBe(true);
    expect(bytes.includes(Buffer.from([0x17, 0x03, 0x03]))).toBe(true);
    expect(bytes.includes(Buffer.from([0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]))).toBe(true);
    const inFlow = await until('ward b flow for client2', () =>
      flows('b').find(
        (f) => (f.IP as { source: string }).source === lab.pod('client2').ip && f.verdict === 'FORWARDED',
      ),
    );
    expect(inFlow.Summary).toBe('policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN; Auth: SPIRE)');
    expect((inFlow.ward as { policies: string[] }).policies).toEqual([
      'CiliumNetworkPolicy/default/demo3-allow-client2-mutual-auth',
    ]);
  });

  it('client3 → demodeployment is denied, with a DROPPED flow naming the policy', async () => {
    const res = await peer(lab.pod('client3'), ['get', '--to', `${demo0}:80`]);
    expect(res).toMatchObject({ ok: false, code: 'ECONNRESET' });
    const drop = await until('ward b drop', () =>
      flows('b').find(
        (f) => (f.IP as { source: string }).source === lab.pod('client3').ip && f.verdict === 'DROPPED',
      ),
    );
    expect(drop).toMatchObject({ drop_reason_desc: 'POLICY_DENIED', traffic_direction: 'INGRESS' });
    expect(drop.Summary).toBe('Policy denied DROPPED (TCP Flags: SYN; Auth: SPIRE)');
    expect((drop.ward as { policies: string[] }).policies).toContain(
      'CiliumNetworkPolicy/default/demo1-default-deny',
    );
  });

  it('a client2 on a node without ward, in plaintext, is refused: Authentication required', async () => {
    const res = await peer(lab.pod('outsider'), ['get', '--to', `${demo0}:80`]);
    expect(res).toMatchObject({ ok: false, code: 'ECONNRESET' });
    const drop = await until('ward b auth drop', () =>
      flows('b').find((f) => (f.IP as { source: string }).source === lab.pod('outsider').ip),
    );
    expect(drop).toMatchObject({
      verdict: 'DROPPED',
      drop_reason_desc: 'AUTH_REQUIRED',
      auth_type: 'DISABLED',
    });
    expect(drop.Summary).toBe('Authentication required DROPPED (TCP Flags: SYN)');
    expect(access('b').find((l) => String(l.src).startsWith(lab.pod('outsider').ip))).toMatchObject({
      reason: 'auth_required',
    });
  });

  it('a workload presenting a valid SVID of a denied identity is refused; a CONNECT past its tunnel too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ward-rogue-'));
    try {
      const ids = lab.spiffeIds();
      for (const [name, id] of [
        ['client3', ids.get('client3')],
        ['client2', ids.get('client2')],
      ] as const) {
        run([
          process.execPath,
          '--disable-warning=ExperimentalWarning',
          WARD_MAIN,
          'ca',
          'issue',
          '--dir',
          join(lab.dir, 'ca'),
          '--id',
          id ?? '',
          '--out',
          dir,
          '--name',
          name,
        ]);
      }
      const rogue = lab.pod('rogue');
      const as = (name: string, authority: string, to = demo0) =>
        peer(rogue, [
          'hbone',
          '--to',
          `${to}:15008`,
          '--authority',
          authority,
          '--cert',
          join(dir, `${name}.svid.pem`),
          '--key',
          join(dir, `${name}.key.pem`),
        ]);
      // client3's SVID is genuine, and client3 may not reach demodeployment.
      expect(await as('client3', `${demo0}:80`)).toEqual({ outcome: 'status', status: 403 });
      // client2's SVID may, but only to the pod the tunnel was authenticated for.
      expect(await as('client2', `${demo1}:80`)).toEqual({ outcome: 'status', status: 403 });
      const reasons = access('b')
        .filter((l) => String(l.src).startsWith(rogue.ip))
        .map((l) => l.reason);
      expect(reasons).toEqual(['policy_denied', 'target_mismatch']);
      // No certificate at all: refused at the handshake, and logged.
      const bare = await peer(rogue, ['hbone', '--to', `${demo0}:15008`, '--authority', `${demo0}:80`]);
      expect(['closed', 'tls_error']).toContain(bare.outcome);
      await until('tunnel refusal', () =>
        lab
          .node('b')
          .ward?.lines()
          .find((l) => l.msg === 'tunnel refused' && String(l.src).startsWith(rogue.ip)),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('plain bytes at :15008 are refused and logged; other connections are unaffected', async () => {
    const res = await peer(lab.pod('rogue'), ['probe', '--to', `${demo0}:15008`, '--timeout', '3000']);
    expect(res.outcome).not.toBe('echoed');
    await until('tls refusal', () =>
      lab
        .node('b')
        .ward?.lines()
        .find((l) => l.msg === 'tunnel refused' && l.reason === 'tls_error'),
    );
    expect(await peer(lab.pod('client1'), ['get', '--to', `${demo0}:80`])).toMatchObject({
      ok: true,
      status: 200,
    });
  });
});

describe('the tunnel under load', () => {
  it('64 MiB arrive byte-identical through a tunnel, both ways', async () => {
    const up = await peer(lab.pod('client1'), [
      'send',
      '--to',
      `${demo1}:8080`,
      '--bytes',
      String(64 * MiB),
      '--seed',
      'c0ffee',
    ]);
    expect(up).toMatchObject({
      ok: true,
      sentSha256: keystreamSha256('c0ffee', 64 * MiB),
      reply: keystreamSha256('c0ffee', 64 * MiB),
    });
    const down = await peer(lab.pod('client1'), [
      'fetch',
      '--to',
      `${demo1}:8080`,
      '--bytes',
      String(64 * MiB),
      '--seed',
      'beef',
    ]);
    expect(down).toMatchObject({ ok: true, received: 64 * MiB, sha256: keystreamSha256('beef', 64 * MiB) });
    expect(
      access('a')
        .filter((l) => l.dst === `${demo1}:8080`)
        .every((l) => l.mtls === true && l.reason === 'completed'),
    ).toBe(true);
  });

  it('200 concurrent connections over pooled tunnels, none lost', async () => {
    const res = await peer(lab.pod('client1'), [
      'many',
      '--to',
      `${demo0}:8080`,
      '--count',
      '200',
      '--bytes',
      '4096',
    ]);
    expect(res).toMatchObject({ ok: true, count: 200, intact: 200 });
  });

  it('bidirectional bulk on one pooled tunnel does not stall', async () => {
    // 24 streams at once on client1's tunnel to demo-1, each echoing 4 MiB: both directions loaded.
    const res = await peer(
      lab.pod('client1'),
      ['many', '--to', `${demo1}:8080`, '--count', '24', '--bytes', String(4 * MiB)],
      120_000,
    );
    expect(res).toMatchObject({ ok: true, intact: 24 });
  });

  it('one stream whose reader stops does not stop the others on its tunnel', async () => {
    // The stalled reader shares client1's tunnel to demo-1 and resumes only once the others are done:
    // if they waited on it, they would never finish.
    const gate = join(mkdtempSync(join(tmpdir(), 'ward-gate-')), 'go');
    const stalled = peer(
      lab.pod('client1'),
      ['fetch', '--to', `${demo1}:8080`, '--bytes', String(32 * MiB), '--seed', 'ab', '--pause-until', gate],
      120_000,
    );
    await new Promise((r) => setTimeout(r, 500));
    const others = await peer(
      lab.pod('client1'),
      ['many', '--to', `${demo1}:8080`, '--count', '8', '--bytes', String(2 * MiB)],
      60_000,
    );
    expect(others).toMatchObject({ ok: true, intact: 8 });
    writeFileSync(gate, '');
    expect(await stalled).toMatchObject({
      ok: true,
      received: 32 * MiB,
      sha256: keystreamSha256('ab', 32 * MiB),
    });
    rmSync(dirname(gate), { recursive: true, force: true });
  }, 180_000);
});

describe('changes while connected', () => {
  it('an open connection is closed when a policy change no longer allows it', async () => {
    const held = holdConnection(lab.pod('client1'), `${demo0}:8080`);
    try {
      await held.echoing;
      const { '30-lab-bulk.yaml': _bulk, ...rest } = { ...SEED_POLICIES, '30-lab-bulk.yaml': BULK_POLICY };
      lab.setPolicies(rest);
      const end = await held.ended;
      expect(end.outcome).toBe('reset');
      const line = await until('policy_changed line', () =>
        access('b').find((l) => l.reason === 'policy_changed'),
      );
      expect(line).toMatchObject({ dst: `${demo0}:8080` });
      // New connections are refused too, until the policy comes back.
      expect((await peer(lab.pod('client1'), ['probe', '--to', `${demo0}:8080`])).outcome).toBe('reset');
    } finally {
      held.kill();
      lab.setPolicies({ ...SEED_POLICIES, '30-lab-bulk.yaml': BULK_POLICY });
    }
    await until(
      'policy restored',
      () =>
        lab
          .node('b')
          .ward?.lines()
          .filter((l) => l.msg === 'closed connections no longer allowed').length ?? 0,
    );
  });
});
