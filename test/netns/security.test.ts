// Security properties of the mesh, each checked against a running lab: a rule that requires
// authentication is never satisfied by plaintext or by a source address (a pod spoofing another pod's
// IP, from a node with ward and from one without); a workload never presents another's SVID through
// ward; no private key appears in logs, flows, /config_dump, /stats or metrics; the admin port is
// reachable on loopback only; the CA's key files are 0600; the underlay never shows application bytes
// of an authenticated flow (and does show them for a plaintext one, so the capture is known to work).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.ts';
import { WARD_MAIN } from '../../src/lab/ward-entry.ts';
import { labName, servePeer, until } from './helpers.ts';

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-auth, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      authentication: { mode: required }
`;

// A client that can send from a chosen source address and reports what it saw: the lab protocol's ECHO.
const CLIENT = `
const net = require('node:net');
const [host, port, local, payload, timeoutMs] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
let echoed = '';
const done = (outcome, code) => { console.log(JSON.stringify({ outcome, code, echoed })); s.destroy(); process.exit(0); };
setTimeout(() => done(echoed.includes(payload) ? 'echoed' : 'timeout'), Number(timeoutMs));
s.on('connect', () => s.write('ECHO\\n' + payload));
s.on('data', (d) => { echoed += d.toString(); if (echoed.includes(payload)) done('echoed'); });
s.on('error', (e) => done('error', e.code));
s.on('end', () => done('closed'));
`;

let lab: Lab;
const servers: { stop: () => void }[] = [];

function client(pod: LabPod, to: string, opts: { from?: string; payload?: string; timeoutMs?: number } = {}) {
  const [host, port] = to.split(':');
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      pod.ns,
      process.execPath,
      '-e',
      CLIENT,
      host ?? '',
      port ?? '',
      opts.from ?? '',
      opts.payload ?? 'hello',
      String(opts.timeoutMs ?? 3000),
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { outcome: string; code?: string };
}

function curl(node: LabNode, url: string): string {
  return spawnSync('ip', ['netns', 'exec', node.ns, 'curl', '-sS', '-m', '5', url], { encoding: 'utf8' })
    .stdout;
}

function nstat(node: LabNode, counter: string): number {
  const out = node.exec(['nstat', '-az', counter]);
  return Number(/\s(\d+)\s/.exec(out.split('\n').find((l) => l.startsWith(counter)) ?? '')?.[1] ?? 0);
}

beforeAll(async () => {
  lab = await Lab.create({
    name: labName(),
    nodes: [
      { name: 'a', pods: ['client', 'client2', 'rogue'] },
      { name: 'b', pods: ['server'] },
      { name: 'c', pods: ['outsider', 'plainserver'], ward: false },
    ],
    mesh: { policies: { 'server.yaml': POLICY } },
  });
  servers.push(await servePeer(lab.pod('server'), ['serve', '--port', '8080']));
  servers.push(await servePeer(lab.pod('plainserver'), ['serve', '--port', '8080']));
  expect(client(lab.pod('client'), `${lab.pod('server').ip}:8080`).outcome).toBe('echoed');
}, 120_000);

afterAll(async () => {
  for (const s of servers) s.stop();
  await lab?.destroy();
});

describe('authentication is never satisfied by an address', () => {
  it('a pod on a ward node spoofing an allowed pod’s IP never gets through, and strict rp_filter drops it first', async () => {
    const rogue = lab.pod('rogue');
    const victim = lab.pod('client').ip;
    const to = `${lab.pod('server').ip}:8080`;
    rogue.exec(['ip', 'addr', 'add', `${victim}/32`, 'dev', 'eth0']);
    const a = lab.node('a');
    const b = lab.node('b');
    try {
      const bLines = b.ward?.accessLog().length ?? 0;
      // rp_filter=0 on the lxc (the lab's default): the SYN reaches ward, but its SYN-ACK goes to the real
      // owner of the address, so the handshake never completes and ward never acts for the victim.
      const loose = client(rogue, to, { from: victim, payload: 'spoofed-1' });
      expect(loose.outcome).not.toBe('echoed');
      // Strict rp_filter on the spoofer's lxc: the kernel drops the packet as a martian before ward.
      const before = nstat(a, 'TcpExtIPReversePathFilter');
      a.exec(['sysctl', '-qw', `net.ipv4.conf.${rogue.iface}.rp_filter=1`]);
      const strict = client(rogue, to, { from: victim, payload: 'spoofed-2' });
      expect(strict.outcome).not.toBe('echoed');
      expect(nstat(a, 'TcpExtIPReversePathFilter')).toBeGreaterThan(before);
      // Nothing reached the destination on the victim's behalf.
      expect(
        (b.ward?.accessLog().slice(bLines) ?? []).filter(
          (l) => String(l.src).startsWith(`${victim}:`) && l.reason === 'completed',
        ),
      ).toEqual([]);
    } finally {
      a.exec(['sysctl', '-qw', `net.ipv4.conf.${rogue.iface}.rp_filter=0`]);
      rogue.exec(['ip', 'addr', 'del', `${victim}/32`, 'dev', 'eth0']);
    }
    // The real client is unaffected.
    expect(client(lab.pod('client'), to).outcome).toBe('echoed');
  });

  it('a spoofer that controls the return path completes the handshake in plaintext and is refused: auth required', async () => {
    const spoofer = lab.pod('outsider');
    const victim = lab.pod('client').ip;
    const b = lab.node('b');
    spoofer.exec(['ip', 'addr', 'add', `${victim}/32`, 'dev', 'eth0']);
    // Node b sends replies for the victim's address to node c: the spoofer sees them.
    b.exec(['ip', 'route', 'add', `${victim}/32`, 'via', lab.node('c').underlayIp]);
    const c = lab.node('c');
    c.exec(['ip', 'route', 'add', `${victim}/32`, 'dev', spoofer.iface]);
    try {
      const before = b.ward?.accessLog().length ?? 0;
      const res = client(spoofer, `${lab.pod('server').ip}:8080`, { from: victim, payload: 'spoofed-3' });
      expect(res.outcome).not.toBe('echoed');
      const line = await until('refusal at b', () =>
        b.ward
          ?.accessLog()
          .slice(before)
          .find((l) => String(l.src).startsWith(`${victim}:`)),
      );
      expect(line.reason).toBe('auth_required');
      expect(line.mtls).not.toBe(true);
    } finally {
      b.exec(['ip', 'route', 'del', `${victim}/32`]);
      c.exec(['ip', 'route', 'del', `${victim}/32`, 'dev', spoofer.iface]);
      spoofer.exec(['ip', 'addr', 'del', `${victim}/32`, 'dev', 'eth0']);
    }
  });
});

describe('identities', () => {
  it('a workload is always represented by its own SVID: client2 is proven as client2 and refused', async () => {
    const ids = lab.spiffeIds();
    const b = lab.node('b');
    const before = b.ward?.accessLog().length ?? 0;
    expect(client(lab.pod('client2'), `${lab.pod('server').ip}:8080`).outcome).not.toBe('echoed');
    const line = await until('client2 at b', () =>
      b.ward
        ?.accessLog()
        .slice(before)
        .find((l) => String(l.src).startsWith(`${lab.pod('client2').ip}:`)),
    );
    expect(line).toMatchObject({ reason: 'policy_denied', peer: ids.get('client2'), tunnel: true });
    // And client, through the same ward and tunnel pool, is proven as client.
    const n = b.ward?.accessLog().length ?? 0;
    expect(client(lab.pod('client'), `${lab.pod('server').ip}:8080`).outcome).toBe('echoed');
    const ok = await until('client at b', () =>
      b.ward
        ?.accessLog()
        .slice(n)
        .find((l) => String(l.src).startsWith(`${lab.pod('client').ip}:`)),
    );
    expect(ok.peer).toBe(ids.get('client'));
  });
});

describe('secrets', () => {
  it('no private key appears in logs, flows, /config_dump, /stats or metrics', () => {
    const caDir = join(lab.dir, 'ca');
    const keyBodies = readdirSync(caDir)
      .filter((f) => /key/i.test(f))
      .map((f) => readFileSync(join(caDir, f), 'utf8').replace(/-----[^-]+-----|\s/g, ''))
      .filter((b) => b.length > 40)
      .map((b) => b.slice(0, 40));
    expect(keyBodies.length).toBeGreaterThan(0);
    const texts: [string, string][] = [];
    for (const name of ['a', 'b']) {
      const node = lab.node(name);
      const ward = node.ward;
      texts.push([`${name} log`, readFileSync(ward?.logPath ?? '', 'utf8') + ward?.stderr()]);
      for (const path of ['/flows?last=10000', '/config_dump', '/stats', '/status']) {
        texts.push([`${name} ${path}`, curl(node, `http://127.0.0.1:15000${path}`)]);
      }
      texts.push([`${name} metrics`, curl(node, 'http://127.0.0.1:15020/metrics')]);
    }
    texts.push(['ca log', readFileSync(join(lab.dir, 'ca.log'), 'utf8')]);
    // PEM armour, and the base64 openings of PKCS#8 EC (P-256), Ed25519 and RSA keys.
    const patterns = [/PRIVATE KEY/, /MIGHAgEAMBMG/, /MC4CAQAwBQYDK2Vw/, /MIIE[v-w][A-Za-z]IBADAN/];
    for (const [what, text] of texts) {
      expect(text.length, `${what} is empty`).toBeGreaterThan(0);
      for (const p of patterns) expect(p.test(text), `${what} matches ${p}`).toBe(false);
      for (const body of keyBodies) expect(text.includes(body), `${what} holds the CA key`).toBe(false);
    }
    // The scan can fail: the flows and the config dump were really fetched.
    expect(texts.find(([w]) => w === 'b /flows?last=10000')?.[1]).toContain('FORWARDED');
  });

  it('the CA writes its key files with mode 0600', () => {
    const caDir = join(lab.dir, 'ca');
    const keys = readdirSync(caDir).filter((f) => /key/i.test(f));
    expect(keys.length).toBeGreaterThan(0);
    for (const f of keys) expect((statSync(join(caDir, f)).mode & 0o777).toString(8), f).toBe('600');
    const out = join(lab.dir, 'issued');
    spawnSync(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        WARD_MAIN,
        'ca',
        'issue',
        '--dir',
        caDir,
        '--id',
        lab.spiffeIds().get('client') ?? '',
        '--out',
        out,
        '--name',
        'x',
      ],
      { encoding: 'utf8' },
    );
    const issued = readdirSync(out).filter((f) => /key/i.test(f));
    expect(issued.length).toBeGreaterThan(0);
    for (const f of issued) expect((statSync(join(out, f)).mode & 0o777).toString(8), f).toBe('600');
    rmSync(out, { recursive: true, force: true });
  });

  it('the admin port listens on loopback only and is unreachable from pods and other nodes', () => {
    for (const name of ['a', 'b']) {
      const node = lab.node(name);
      const listening = node
        .exec(['ss', '-ltnH'])
        .split('\n')
        .filter((l) => /:15000\s/.test(l));
      expect(listening.length).toBeGreaterThan(0);
      for (const l of listening) expect(l).toMatch(/\s(127\.0\.0\.1|\[::1\]):15000\s/);
    }
    expect(curl(lab.node('b'), `http://${lab.node('a').underlayIp}:15000/stats`)).toBe('');
    const fromPod = spawnSync(
      'ip',
      ['netns', 'exec', lab.pod('client').ns, 'curl', '-sS', '-m', '3', 'http://169.254.1.1:15000/stats'],
      { encoding: 'utf8' },
    );
    expect(fromPod.stdout).toBe('');
  });
});

describe('the wire', () => {
  it('a capture between the nodes never shows the bytes of an authenticated flow, but does show plaintext', async () => {
    const a = lab.node('a');
    const pcap = join(lab.dir, 'underlay.pcap');
    const dump: ChildProcess = spawn(
      'ip',
      [
        'netns',
        'exec',
        a.ns,
        'tcpdump',
        '-Z',
        'root',
        '--immediate-mode',
        '-U',
        '-i',
        'eth0',
        '-s',
        '0',
        '-w',
        pcap,
        'tcp',
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 1500));
    const secret = `SECRET-${randomBytes(12).toString('hex')}`;
    const plain = `PLAIN-${randomBytes(12).toString('hex')}`;
    try {
      expect(client(lab.pod('client'), `${lab.pod('server').ip}:8080`, { payload: secret }).outcome).toBe(
        'echoed',
      );
      expect(client(lab.pod('client'), `${lab.pod('plainserver').ip}:8080`, { payload: plain }).outcome).toBe(
        'echoed',
      );
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      dump.kill('SIGINT');
      await new Promise((r) => dump.once('exit', r));
    }
    const bytes = readFileSync(pcap);
    expect(bytes.includes(Buffer.from(plain))).toBe(true);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
  });
});
