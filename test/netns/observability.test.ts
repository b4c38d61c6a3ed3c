// Observability and operations, for real: Prometheus metrics scraped from :15020 and parsed, readiness
// and liveness on :15021, the admin API (/config_dump, /flows, /logging), `ward observe`, `ward status`,
// and SIGTERM during a transfer. Two labs: a mesh with long-lived SVIDs (exact counter deltas need no
// rotation in between), and a one-node lab whose CA issues 20-second SVIDs and is stopped and started.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode, type LabPod } from '../../src/lab/lab.ts';
import { WARD_MAIN as WARD } from '../../src/lab/ward-entry.ts';
import { type MetricFamily, parseExposition, sampleSum, sampleValue } from '../../src/observe/prom-text.ts';
import { labName, peer, servePeer, until } from './helpers.ts';

const POLICIES = {
  '00-deny.yaml': `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: server-default-deny, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress: [{}]
`,
  '10-allow-client1.yaml': `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: allow-client1-auth, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client1 } }]
      authentication: { mode: required }
      toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }]
`,
};

interface HttpResult {
  readonly status: number;
  readonly body: string;
}

/** curl inside a node's namespace; status 0 when nothing answered. */
function http(node: LabNode, method: string, url: string): HttpResult {
  const res = spawnSync(
    'ip',
    ['netns', 'exec', node.ns, 'curl', '-sS', '-m', '10', '-X', method, '-w', '\n%{http_code}', url],
    { encoding: 'utf8' },
  );
  const out = res.stdout ?? '';
  const nl = out.lastIndexOf('\n');
  return { status: Number(out.slice(nl + 1)) || 0, body: out.slice(0, Math.max(0, nl)).trimEnd() };
}

function scrape(node: LabNode): Map<string, MetricFamily> {
  const res = http(node, 'GET', 'http://127.0.0.1:15020/metrics');
  expect(res.status).toBe(200);
  return parseExposition(res.body);
}

function ready(node: LabNode): HttpResult {
  return http(node, 'GET', 'http://127.0.0.1:15021/healthz/ready');
}

/** Runs a ward CLI command inside a node's namespace. */
function wardCli(node: LabNode, args: string[]): { code: number; stdout: string; stderr: string } {
  const res = spawnSync(
    'ip',
    ['netns', 'exec', node.ns, process.execPath, '--disable-warning=ExperimentalWarning', WARD, ...args],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return { code: res.status ?? -1, stdout: res.stdout, stderr: res.stderr };
}

function wardRules(node: LabNode): string[] {
  return node
    .ruleset()
    .split('\n')
    .filter((l) => /WARD_|lookup 15001/.test(l));
}

/** The values the counter test moves, read from one scrape. */
function figures(m: Map<string, MetricFamily>, direction: 'outbound' | 'inbound') {
  return {
    opened: sampleValue(m, 'ward_tcp_connections_opened_total', { direction }) ?? 0,
    completed: sampleSum(m, 'ward_tcp_connections_closed_total', { direction, reason: 'completed' }),
    closed: sampleSum(m, 'ward_tcp_connections_closed_total', { direction }),
    received: sampleValue(m, 'ward_tcp_received_bytes_total', { direction }) ?? 0,
    sent: sampleValue(m, 'ward_tcp_sent_bytes_total', { direction }) ?? 0,
    forwarded: sampleSum(m, 'ward_policy_decisions_total', { verdict: 'FORWARDED' }),
    forwardedAuth: sampleSum(m, 'ward_policy_decisions_total', {
      verdict: 'FORWARDED',
      auth_required: 'true',
    }),
    dropped: sampleSum(m, 'ward_policy_decisions_total', { verdict: 'DROPPED' }),
    tunnelsOpened: sampleValue(m, 'ward_tunnels_opened_total') ?? 0,
    tunnelsAccepted: sampleValue(m, 'ward_tunnels_accepted_total') ?? 0,
    clientHandshakes: sampleValue(m, 'ward_tls_handshake_duration_seconds_count', { role: 'client' }) ?? 0,
    serverHandshakes: sampleValue(m, 'ward_tls_handshake_duration_seconds_count', { role: 'server' }) ?? 0,
    setups: sampleValue(m, 'ward_tunnel_setup_duration_seconds_count') ?? 0,
  };
}

type Figures = ReturnType<typeof figures>;

function delta(after: Figures, before: Figures): Figures {
  const out = { ...after };
  for (const k of Object.keys(after) as (keyof Figures)[]) out[k] = after[k] - before[k];
  return out;
}

/** Waits until the closes have been counted, then scrapes once more so nothing is still on its way. */
async function settled(
  node: LabNode,
  direction: 'outbound' | 'inbound',
  closedAtLeast: number,
): Promise<Figures> {
  await until(
    `${direction} closes counted on ${node.name}`,
    () => figures(scrape(node), direction).closed >= closedAtLeast,
    15_000,
  );
  await new Promise((r) => setTimeout(r, 300));
  return figures(scrape(node), direction);
}

describe('a mesh of two wards', () => {
  let lab: Lab;
  let server: { stop: () => void };
  let serverAddr: string;

  beforeAll(async () => {
    lab = await Lab.create({
      name: labName(),
      nodes: [
        { name: 'a', pods: ['client1', 'client2'] },
        { name: 'b', pods: ['server'] },
      ],
      mesh: { policies: POLICIES },
      // Few enough descriptors for any RLIMIT_NOFILE a test machine has; flow records in the ring only,
      // as ward's default has it (the lab's own default also logs them).
      wardConfig: { proxy: { maxConnections: 1000 }, log: { flows: false } },
    });
    server = await servePeer(lab.pod('server'), ['serve', '--port', '8080']);
    serverAddr = `${lab.pod('server').ip}:8080`;
  }, 120_000);

  afterAll(async () => {
    server?.stop();
    await lab?.destroy();
  });

  it('is ready and live on :15021 once serving, and says so in text', () => {
    for (const n of ['a', 'b']) {
      expect(ready(lab.node(n))).toEqual({ status: 200, body: 'ready' });
      expect(http(lab.node(n), 'GET', 'http://127.0.0.1:15021/healthz/live')).toEqual({
        status: 200,
        body: 'live',
      });
      const m = scrape(lab.node(n));
      expect(sampleValue(m, 'ward_ready')).toBe(1);
      expect(sampleValue(m, 'ward_source_up', { source: 'svid', kind: 'delegated' })).toBe(1);
      expect(sampleValue(m, 'ward_source_up', { source: 'policy', kind: 'files' })).toBe(1);
      expect(sampleValue(m, 'ward_svids')).toBe(3);
      expect(sampleValue(m, 'ward_local_workloads_without_svid')).toBe(0);
      expect(sampleValue(m, 'ward_policies', { state: 'accepted' })).toBe(2);
      expect(sampleValue(m, 'ward_workers', { state: 'ready' })).toBe(1);
    }
  });

  it('three authenticated connections move the counters on both wards by exactly what they did', async () => {
    const a = lab.node('a');
    const b = lab.node('b');
    const beforeA = figures(scrape(a), 'outbound');
    const beforeB = figures(scrape(b), 'inbound');
    for (let i = 0; i < 3; i++) {
      const res = await peer(lab.pod('client1'), ['send', '--to', serverAddr, '--bytes', '1000']);
      expect(res).toMatchObject({ ok: true });
      expect(res.reply).toBe(res.sentSha256);
    }
    const dA = delta(await settled(a, 'outbound', beforeA.closed + 3), beforeA);
    const dB = delta(await settled(b, 'inbound', beforeB.closed + 3), beforeB);
    // Each connection: "HASH\n" + 1000 bytes up, a 64-digit hash and a newline down.
    const expected = { opened: 3, completed: 3, closed: 3, received: 3 * 1005, sent: 3 * 65 };
    expect(dA).toMatchObject({
      ...expected,
      forwarded: 3, // egress at the source node; no egress rule, so no authentication asked there
      forwardedAuth: 0,
      dropped: 0,
      // The first connection of this identity pair opened the one pooled tunnel; the others reused it.
      tunnelsOpened: 1,
      clientHandshakes: 1,
      setups: 1,
      serverHandshakes: 0,
    });
    expect(dB).toMatchObject({
      ...expected,
      forwarded: 3,
      forwardedAuth: 3, // ingress at the destination: the rule requires authentication
      dropped: 0,
      tunnelsAccepted: 1,
      serverHandshakes: 1,
      clientHandshakes: 0,
    });
    const mA = scrape(a);
    expect(sampleValue(mA, 'ward_tunnels_pooled')).toBe(1);
    expect(sampleValue(mA, 'ward_tcp_connections_active')).toBe(0);
    // Histograms are well formed: cumulative buckets end at +Inf with the count.
    const buckets = mA
      .get('ward_tls_handshake_duration_seconds')
      ?.samples.filter((s) => s.name.endsWith('_bucket') && s.labels.role === 'client');
    expect(buckets?.at(-1)).toMatchObject({ labels: { le: '+Inf' }, value: beforeA.clientHandshakes + 1 });
    const values = buckets?.map((s) => s.value) ?? [];
    expect(values).toEqual([...values].sort((x, y) => x - y));
  });

  it('ward observe --from-label app=client2 --verdict DROPPED shows exactly the drops caused, both forms', async () => {
    const b = lab.node('b');
    const before = scrape(b);
    const droppedBefore = sampleSum(before, 'ward_tcp_connections_closed_total', {
      direction: 'inbound',
      reason: 'policy_denied',
      verdict: 'DROPPED',
    });
    // Debug logging in the workers too, from now on: the new tunnel of client2 logs its transitions.
    expect(
      JSON.parse(http(lab.node('a'), 'POST', 'http://127.0.0.1:15000/logging?level=debug').body),
    ).toEqual({
      level: 'debug',
      previous: 'info',
    });
    const client2 = lab.pod('client2');
    for (let i = 0; i < 2; i++) {
      expect((await peer(client2, ['probe', '--to', serverAddr])).outcome).toBe('reset');
    }
    // client1 is still forwarded, and is no drop.
    expect(await peer(lab.pod('client1'), ['send', '--to', serverAddr, '--bytes', '10'])).toMatchObject({
      ok: true,
    });
    await until('two client2 drops in ward b flows', () => {
      const r = wardCli(b, ['observe', '--from-label', 'app=client2', '--verdict', 'DROPPED', '-o', 'json']);
      return r.stdout.trim().split('\n').filter(Boolean).length >= 2;
    });
    const json = wardCli(b, ['observe', '--from-label', 'app=client2', '--verdict', 'DROPPED', '-o', 'json']);
    expect(json.code).toBe(0);
    const records = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    for (const r of records) {
      expect(r).toMatchObject({
        verdict: 'DROPPED',
        drop_reason_desc: 'POLICY_DENIED',
        traffic_direction: 'INGRESS',
        IP: { source: client2.ip, destination: lab.pod('server').ip },
        l4: { TCP: { destination_port: 8080 } },
        source: { namespace: 'default', pod_name: 'client2' },
        destination: { namespace: 'default', pod_name: 'server' },
        auth_type: 'SPIRE',
      });
    }
    // Served from the ring; not written to the log (log.flows is off), while the access lines are.
    expect(b.ward?.lines().filter((l) => l.component === 'flow')).toEqual([]);
    expect(b.ward?.accessLog().some((l) => l.reason === 'policy_denied')).toBe(true);
    const compact = wardCli(b, ['observe', '--from-label', 'app=client2', '--verdict', 'DROPPED']);
    expect(compact.code).toBe(0);
    const lines = compact.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatch(
        /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d\.\d{3}: default\/client2:\d+ \(ID:\d+\) <> default\/server:8080 \(ID:\d+\) Policy denied DROPPED \(TCP Flags: SYN; Auth: SPIRE\)$/,
      );
    }
    // The other filters narrow the same records; --last takes the newest.
    expect(
      wardCli(b, ['observe', '--from-pod', 'default/client2', '--to-pod', 'server', '--last', '1'])
        .stdout.trim()
        .split('\n'),
    ).toHaveLength(1);
    expect(wardCli(b, ['observe', '--from-label', 'app=client2', '--verdict', 'FORWARDED']).stdout).toBe('');
    expect(
      wardCli(b, ['observe', '--to-label', 'app=server', '--verdict', 'DROPPED', '-o', 'json'])
        .stdout.trim()
        .split('\n'),
    ).toHaveLength(2);
    expect(wardCli(b, ['observe', '--verdict', 'MAYBE']).code).toBe(2);
    // The same two drops in the metrics.
    const after = scrape(b);
    expect(
      sampleSum(after, 'ward_tcp_connections_closed_total', {
        direction: 'inbound',
        reason: 'policy_denied',
        verdict: 'DROPPED',
      }) - droppedBefore,
    ).toBe(2);
    // And the debug level reached ward a's worker (its new tunnel logged a state change).
    await until('a worker debug line', () =>
      lab
        .node('a')
        .ward?.lines()
        .find(
          (l) => l.level === 'debug' && typeof l.worker === 'number' && String(l.msg).startsWith('tunnel '),
        ),
    );
    expect(
      JSON.parse(http(lab.node('a'), 'POST', 'http://127.0.0.1:15000/logging?level=info').body),
    ).toMatchObject({
      level: 'info',
    });
    expect(http(lab.node('a'), 'POST', 'http://127.0.0.1:15000/logging?level=loud').status).toBe(400);
  });

  it('ward observe --follow streams new flows as they happen', async () => {
    const child: ChildProcess = spawn(
      'ip',
      [
        'netns',
        'exec',
        lab.node('b').ns,
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        WARD,
        'observe',
        '--follow',
        '--from-pod',
        'client2',
        '-o',
        'json',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect(out).toBe(''); // --follow without --last: nothing from before
      expect((await peer(lab.pod('client2'), ['probe', '--to', serverAddr])).outcome).toBe('reset');
      const line = await until('a followed flow', () => out.split('\n').find((l) => l.includes('"DROPPED"')));
      expect(JSON.parse(line)).toMatchObject({ verdict: 'DROPPED', source: { pod_name: 'client2' } });
    } finally {
      child.kill('SIGINT');
    }
  });

  it('/config_dump shows config, inventory, policies and identities, and no private-key material', () => {
    const a = lab.node('a');
    const res = http(a, 'GET', 'http://127.0.0.1:15000/config_dump');
    expect(res.status).toBe(200);
    const dump = JSON.parse(res.body) as {
      config: { node: { name: string }; observe: { metricsPort: number } };
      inventory: { name: string; local: boolean }[];
      policy: { policies: { key: string }[]; rejected: string[] };
      identities: { sourceState: string; svids: { spiffeId: string; serial: string; notAfter: string }[] };
    };
    expect(dump.config.node.name).toBe('a');
    expect(dump.config.observe.metricsPort).toBe(15020);
    expect(dump.inventory.filter((w) => w.local).map((w) => w.name)).toEqual(['client1', 'client2']);
    expect(dump.policy.policies.map((p) => p.key).sort()).toEqual([
      'CiliumNetworkPolicy/default/allow-client1-auth',
      'CiliumNetworkPolicy/default/server-default-deny',
    ]);
    expect(dump.identities.sourceState).toBe('Available');
    expect(dump.identities.svids.map((s) => s.spiffeId).sort()).toEqual(
      [...new Set(lab.spiffeIds().values())].sort(),
    );
    for (const s of dump.identities.svids) expect(s.serial).toMatch(/^[0-9A-F]+$/);
    // No key: neither PEM armour, nor base64 of a PKCS#8 key, nor the lab CA's own private key.
    expect(res.body).not.toMatch(/PRIVATE KEY/);
    expect(res.body).not.toMatch(/MIG[A-Za-z0-9+/]AgEAMBMGByqGSM49/);
    const caDir = join(lab.dir, 'ca');
    for (const f of readdirSync(caDir)) {
      const text = readFileSync(join(caDir, f), 'utf8');
      if (!text.includes('PRIVATE KEY')) continue;
      const body = text.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
      for (const line of body) expect(res.body.includes(line)).toBe(false);
    }
  });

  it('ward status sums the node up and exits 0 while healthy', () => {
    const r = wardCli(lab.node('a'), ['status', '--verbose']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Ward: +OK {3}node a/m);
    expect(r.stdout).toMatch(/^Capture rules: +OK {3}installed/m);
    expect(r.stdout).toMatch(/^SVID source: +OK {3}delegated: Available/m);
    expect(r.stdout).toMatch(/^Identities: +3 SVIDs held \(Available\), soonest expiry in \d+m/m);
    expect(r.stdout).toMatch(/^Policy: +files: revision \d+, 2 valid, 0 rejected/m);
    expect(r.stdout).toMatch(/^Local workloads: +2 on this node, 0 without a valid SVID/m);
    expect(r.stdout).not.toMatch(/Problems:/);
  });

  it('SIGTERM during a long transfer: unready at once, the transfer finishes, exit 0, no rules left', async () => {
    const a = lab.node('a');
    await a.ward?.stop('SIGTERM');
    const ward = await a.startWard({ shutdown: { drainTimeout: '30s' } });
    const slow = slowSend(lab.pod('client1'), serverAddr, lab.dir);
    await slow.started;
    const signalledAt = Date.now();
    const exit = ward.stop('SIGTERM', 60_000);
    await ward.waitForLine((l) => l.msg === 'draining', 5000, 'draining');
    const during = ready(a);
    expect(during.status).toBe(503);
    expect(during.body).toContain('draining: ward is shutting down');
    const result = await slow.done;
    expect(result.ok).toBe(true);
    expect(result.reply).toBe(result.sentSha256);
    expect(await exit).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(30_000);
    const line = ward.accessLog().find((l) => String(l.src).startsWith(lab.pod('client1').ip));
    expect(line).toMatchObject({ reason: 'completed', bytesUp: 5 + result.bytes });
    expect(ward.lines().find((l) => l.msg === 'stopped')).toMatchObject({ closedAtDeadline: 0 });
    expect(wardRules(a)).toEqual([]);
    expect(ready(a).status).toBe(0); // nothing listens any more
    await a.startWard();
  });
});

/**
 * A transfer that takes a few seconds on its own: "HASH\n", then 64 KiB every 50 ms, 40 times, then a
 * half-close; the lab server answers with the SHA-256 of what it got.
 */
function slowSend(
  pod: LabPod,
  to: string,
  dir: string,
): {
  started: Promise<void>;
  done: Promise<{ ok: boolean; sentSha256: string; reply: string; bytes: number }>;
} {
  const script = join(dir, 'slow-send.mjs');
  writeFileSync(
    script,
    `import { connect } from 'node:net';
import { createHash } from 'node:crypto';
const [host, port] = process.argv[2].split(':');
const h = createHash('sha256');
let reply = '';
let n = 0;
const s = connect({ host, port: Number(port), allowHalfOpen: true }, () => {
  s.write('HASH\\n');
  const t = setInterval(() => {
    const b = Buffer.alloc(65536, n % 251);
    h.update(b);
    s.write(b);
    if (n++ === 0) console.log(JSON.stringify({ event: 'started' }));
    if (n === 40) { clearInterval(t); s.end(); }
  }, 50);
});
s.on('data', (d) => { reply += d; });
s.on('end', () => console.log(JSON.stringify({ ok: true, sentSha256: h.digest('hex'), reply: reply.trim(), bytes: n * 65536 })));
s.on('error', (e) => console.log(JSON.stringify({ ok: false, code: e.code })));
`,
  );
  const child = pod.spawn([process.execPath, script, to]);
  let buf = '';
  let onStart: () => void = () => {};
  let onDone: (v: { ok: boolean; sentSha256: string; reply: string; bytes: number }) => void = () => {};
  const started = new Promise<void>((r) => {
    onStart = r;
  });
  const done = new Promise<{ ok: boolean; sentSha256: string; reply: string; bytes: number }>((r) => {
    onDone = r;
  });
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const v = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if (v.event === 'started') onStart();
      else onDone(v as { ok: boolean; sentSha256: string; reply: string; bytes: number });
    }
  });
  child.on('exit', () => onDone({ ok: false, sentSha256: '', reply: '', bytes: 0 }));
  return { started, done };
}

describe('readiness follows the SVID source', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({
      name: labName(),
      nodes: [{ name: 'a', pods: ['client'] }],
      mesh: { svidTtl: '20s' },
      wardConfig: { mesh: { svidStartTimeout: '1s' }, proxy: { maxConnections: 1000 } },
      startWards: false,
    });
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
  });

  it('is not ready until the CA is up, and unready again once the source is gone past expiry', async () => {
    const a = lab.node('a');
    await lab.stopCa();
    await a.startWard();
    // No SVID source: ward serves, but is not ready, and says why.
    const before = ready(a);
    expect(before.status).toBe(503);
    expect(before.body).toContain('svid: no valid SVID for default/client');
    expect(sampleValue(scrape(a), 'ward_ready')).toBe(0);
    const down = wardCli(a, ['status']);
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^SVID source: +STOPPED {3}delegated: (Unavailable|Initializing)/m);

    await lab.startCa();
    await until('ready once the CA serves', () => ready(a).status === 200, 30_000);
    expect(ready(a).body).toBe('ready');
    const up = wardCli(a, ['status']);
    expect(up.stdout).toMatch(/^SVID source: +OK {3}delegated: Available/m);
    expect(up.code).toBe(0);

    // The CA goes away: the source is down at once, the SVID stays valid (and ward ready) until it expires.
    await lab.stopCa();
    const stopped = await until(
      'ward status reporting the stopped source',
      () => {
        const r = wardCli(a, ['status']);
        return /SVID source: +STOPPED/.test(r.stdout) ? r : undefined;
      },
      15_000,
    );
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/^SVID source: +STOPPED {3}delegated: Unavailable/m);
    expect(stopped.stdout).toMatch(/^ {2}- svid source: delegated is Unavailable since /m);
    expect(sampleValue(scrape(a), 'ward_source_up', { source: 'svid', kind: 'delegated' })).toBe(0);

    await until('unready once the SVID expired', () => ready(a).status === 503, 40_000);
    expect(ready(a).body).toContain('svid: no valid SVID for default/client');
    const m = scrape(a);
    expect(sampleValue(m, 'ward_ready')).toBe(0);
    expect(sampleValue(m, 'ward_svids')).toBe(0);
    expect(sampleValue(m, 'ward_svid_expired_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(m, 'ward_local_workloads_without_svid')).toBe(1);
  });
  it('/healthz/live fails after the main event loop stalled, and recovers', async () => {
    const a = lab.node('a');
    await a.ward?.stop('SIGTERM');
    const ward = await a.startWard({ observe: { livenessMaxLag: '1s', livenessWindow: '4s' } });
    const live = () => http(a, 'GET', 'http://127.0.0.1:15021/healthz/live');
    expect(live()).toEqual({ status: 200, body: 'live' });
    // Freeze the whole process (every thread) for 3 s: to its lag timer, that is a 3 s stall.
    process.kill(ward.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 3000));
    process.kill(ward.pid, 'SIGCONT');
    const after = live();
    expect(after.status).toBe(503);
    expect(after.body).toMatch(/^not live: the main event loop stalled for \d+ ms \(limit 1000 ms\)/);
    await until('live again once the stall left the window', () => live().status === 200, 15_000);
  });
});
