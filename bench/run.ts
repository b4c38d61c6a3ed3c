// The benchmark harness (issues 5 and 8): the two-hop mTLS path through ward against the same two hops
// built from HAProxy, nginx stream and stunnel, ward's plaintext passthrough and the path with no proxy,
// in one lab, interleaved path by path, repeated; medians, spreads, ratios to HAProxy and to no proxy.
//
//   npm run bench                                    # = node bench/run.ts (needs root)
//   node bench/run.ts [--runs 3] [--seconds 4] [--paths a,b,…] [--idle 1000,10000] [--no-profile]
//                     [--out bench/results] [--smoke]
//
// --smoke: the same code path, one run, 1 s per figure, paths no-proxy, ward-mtls, haproxy, 100 idle
// connections, no profile, results under $TMPDIR (CI runs it only to keep the harness working).
import { spawnSync } from 'node:child_process';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Lab } from '../src/lab/lab.ts';
import { hardNofile, runIn, sleep, startIn } from './lib/exec.ts';
import { fixedRate, hold, iperf, type Target, wrk } from './lib/load.ts';
import { openLoadLab } from './lib/load-lab.ts';
import {
  BACKEND,
  type Certs,
  type HopPair,
  issueCerts,
  maxConns,
  PEERS,
  type PeerName,
  peerAvailable,
  peerVersion,
  type Service,
  startPeer,
} from './lib/peers.ts';
import { cpuDuring, totalRss } from './lib/procstat.ts';
import { profileWard } from './lib/profile-run.ts';
import { type PathName, writeReport } from './lib/report.ts';
import { startWards, stopWards, wardMaxConns } from './lib/ward.ts';

const PEER_PROGRAM = fileURLToPath(new URL('../src/lab/peer.ts', import.meta.url));

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    paths: { type: 'string' },
    idle: { type: 'string' },
    'no-profile': { type: 'boolean', default: false },
    out: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
});
const smoke = values.smoke === true;
const runs = smoke ? 1 : Number(values.runs);
const seconds = smoke ? 1 : Number(values.seconds);
const notes: string[] = [];
/** 1,000 and 10,000 idle connections, unless a hop cannot hold 10,000 within the open-files limit. */
function defaultIdle(): number[] {
  const fits = Math.min(maxConns(), wardMaxConns()) - 100;
  if (fits >= 10_000) return [1000, 10_000];
  const n = Math.floor(fits / 1000) * 1000;
  notes.push(
    `10,000 idle connections do not fit: the hard open-files limit here is ${hardNofile()} (no CAP_SYS_RESOURCE to raise it); a peer hop needs two descriptors per connection and ward reserves 2 per connection + 4,096 (proxy.maxConnections set to ${wardMaxConns()}), so the larger count is ${n.toLocaleString('en-US')}.`,
  );
  return [1000, n];
}
const idleCounts = smoke
  ? [100]
  : values.idle === undefined
    ? defaultIdle()
    : values.idle.split(',').map(Number);
const outDir =
  values.out ??
  (smoke ? join(tmpdir(), 'ward-bench-smoke') : fileURLToPath(new URL('results/', import.meta.url)));
const ALL_PATHS: PathName[] = [
  'no-proxy',
  'ward-mtls',
  'ward-mtls-2w',
  'ward-plain',
  'haproxy',
  'nginx',
  'stunnel',
];
const wanted =
  (values.paths?.split(',') as PathName[] | undefined) ??
  (smoke ? ['no-proxy', 'ward-mtls', 'haproxy'] : ALL_PATHS);
const paths = wanted.filter((p) => {
  if ((PEERS as readonly string[]).includes(p) && !peerAvailable(p as PeerName)) {
    notes.push(
      `${p}: skipped, its package is not installed (Debian: ${p === 'nginx' ? 'nginx-light libnginx-mod-stream' : p === 'stunnel' ? 'stunnel4' : p}).`,
    );
    return false;
  }
  return true;
});
/** The worker-count variant measures bulk and keep-alive only (issue 8, Build 3). */
const REDUCED: ReadonlySet<PathName> = new Set(['ward-mtls-2w']);

interface Active {
  /** The proxy processes whose CPU and memory count, one per hop/node. */
  readonly pids: readonly number[];
  target(s: Service): Target;
  stop(): Promise<void>;
}

let tagSeq = 0;

async function activate(lab: Lab, path: PathName, certs: Certs, dir: string): Promise<Active> {
  const server = lab.pod('server');
  const direct = (s: Service): Target => ({ host: server.ip, port: BACKEND[s] });
  if (path === 'no-proxy') return { pids: [], target: direct, stop: async () => {} };
  if (path === 'ward-mtls' || path === 'ward-mtls-2w' || path === 'ward-plain') {
    const wards = await startWards(lab, {
      mode: path === 'ward-plain' ? 'plain' : 'mtls',
      workers: path === 'ward-mtls-2w' ? 2 : 1,
      tag: `bench-${++tagSeq}`,
    });
    return { pids: wards.map((w) => w.pid), target: direct, stop: () => stopWards(lab) };
  }
  const pair: HopPair = await startPeer(path as PeerName, lab, certs, dir);
  return { pids: pair.pids, target: (s) => pair.target(s), stop: () => pair.stop() };
}

/** One request through the path before measuring; for ward-mtls, proof that it went over mTLS. */
async function warmUp(lab: Lab, path: PathName, a: Active): Promise<void> {
  const t = a.target('http');
  // A peer's processes may still be coming up: up to three tries, a second apart.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const res = await runIn(
      lab.pod('client').ns,
      [process.execPath, PEER_PROGRAM, 'get', '--to', `${t.host}:${t.port}`, '--timeout', '5000'],
      30_000,
    );
    const j = JSON.parse(res.stdout.trim().split('\n').pop() ?? '{}') as { ok?: boolean; bytes?: number };
    if (j.ok === true && j.bytes === 615) break;
    if (attempt === 3) throw new Error(`${path}: warm-up request failed: ${res.stdout} ${res.stderr}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (path.startsWith('ward-mtls')) {
    const ward = lab.node('a').ward;
    await ward?.waitForLine(
      (l) => l.component === 'access' && l.mtls === true,
      10_000,
      'an mTLS access line',
    );
  }
}

/** Listeners, connection counts, rules and routes of both nodes, for a path that stopped answering. */
function nodeState(lab: Lab): string {
  return lab.nodes
    .map((n) => {
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          n.ns,
          'sh',
          '-c',
          'ss -Hltnp; echo "tcp sockets: $(ss -Htan | wc -l)"; iptables-save -t mangle | grep -v "^#"; ip rule',
        ],
        { encoding: 'utf8' },
      );
      return `node ${n.name}:\n${r.stdout}${r.stderr}`;
    })
    .join('\n');
}

type Sample = Record<string, number>;

async function measure(lab: Lab, path: PathName, a: Active): Promise<Sample> {
  const ns = lab.pod('client').ns;
  const s: Sample = {};
  const pids = a.pids;
  const hasProc = pids.length > 0;
  await sleep(500);
  if (hasProc) {
    s.rss_idle_mib = totalRss(pids) / 1024;
    s.rss_idle_node_mib = s.rss_idle_mib / pids.length;
  }
  const b1 = await cpuDuring(pids, () => iperf(ns, a.target('iperf'), seconds, 1));
  s.bulk_1_gbps = b1.value.gbps;
  const b8 = await cpuDuring(pids, () => iperf(ns, a.target('iperf'), seconds, 8));
  s.bulk_8_gbps = b8.value.gbps;
  if (hasProc) s.cpu_s_per_gb = (b1.cpu + b8.cpu) / ((b1.value.bytes + b8.value.bytes) / 1e9);
  const ka = await cpuDuring(pids, () => wrk(ns, a.target('http'), seconds, 50, false));
  s.keepalive_rps = ka.value.rps;
  s.keepalive_p50_ms = ka.value.p50Ms;
  s.keepalive_p99_ms = ka.value.p99Ms;
  s.keepalive_errors = ka.value.errors;
  if (hasProc) s.cpu_us_per_request = (ka.cpu / ka.value.requests) * 1e6;
  if (REDUCED.has(path)) return s;
  const fr = await fixedRate(ns, a.target('http'), seconds, 1000);
  s.fixed1k_p50_ms = fr.p50_ms;
  s.fixed1k_p99_ms = fr.p99_ms;
  s.fixed1k_achieved_rps = fr.achievedRate;
  const nc = await cpuDuring(pids, () => wrk(ns, a.target('http'), seconds, 50, true));
  s.newconn_per_s = nc.value.rps;
  s.newconn_errors = nc.value.errors;
  if (hasProc) s.cpu_us_per_newconn = (nc.cpu / nc.value.requests) * 1e6;
  for (const n of idleCounts) {
    // Let TIME_WAIT and the previous figure's buffers settle before the baseline.
    await sleep(1500);
    const before = totalRss(pids);
    try {
      const h = await hold(ns, a.target('echo'), n);
      await sleep(1000);
      const after = totalRss(pids);
      await h.release();
      if (h.failed > 0)
        notes.push(`${path}: ${h.failed} of ${n} idle connections failed (${h.errors.join(', ')}).`);
      s[`idle_${n}_ready`] = h.ready;
      if (hasProc && h.ready > 0) {
        s[`rss_${n}_mib`] = after / 1024;
        s[`kib_per_conn_${n}`] = (after - before) / h.ready;
      }
    } catch (e) {
      notes.push(`${path}: ${n} idle connections: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return s;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { lab, close } = await openLoadLab(`bench${process.pid % 10000}`);
  const dir = join(lab.dir, 'peers');
  const samples: Record<string, Sample[]> = {};
  let profile: Awaited<ReturnType<typeof profileWard>> | undefined;
  try {
    const certs = issueCerts(lab, dir);
    const server = lab.pod('server');
    for (const argv of [
      ['iperf3', '-s', '-p', String(BACKEND.iperf)],
      [process.execPath, PEER_PROGRAM, 'http', '--port', String(BACKEND.http), '--body', '615'],
      [process.execPath, PEER_PROGRAM, 'serve', '--port', String(BACKEND.echo)],
    ]) {
      startIn(server.ns, argv, ['ignore', 'ignore', 'ignore']);
    }
    await sleep(1000);
    for (let run = 0; run < runs; run++) {
      for (const path of paths) {
        const t0 = Date.now();
        let active: Active;
        try {
          active = await activate(lab, path, certs, dir);
        } catch (e) {
          notes.push(
            `run ${run + 1} ${path}: could not start: ${(e as Error).message.split('\n').slice(0, 4).join(' ')}`,
          );
          process.stderr.write(`run ${run + 1}/${runs} ${path} could not start: ${(e as Error).message}\n`);
          await stopWards(lab);
          continue;
        }
        try {
          try {
            await warmUp(lab, path, active);
          } catch (e) {
            // Seen a few times, intermittently, for a peer started right after ward's path: every
            // warm-up request timed out. What the nodes looked like goes to stderr; the path is then
            // restarted once, and counts as failed only if that does not help either.
            process.stderr.write(
              `${(e as Error).message}; the nodes now:\n${nodeState(lab)}\nrestarting ${path}\n`,
            );
            notes.push(`run ${run + 1} ${path}: the warm-up failed and the path was restarted once.`);
            await active.stop();
            await sleep(2000);
            active = await activate(lab, path, certs, dir);
            await warmUp(lab, path, active);
          }
          const s = await measure(lab, path, active);
          const list = samples[path] ?? [];
          list.push(s);
          samples[path] = list;
          process.stderr.write(
            `run ${run + 1}/${runs} ${path} (${((Date.now() - t0) / 1000).toFixed(0)} s): ${Object.entries(s)
              .map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(3)}`)
              .join(' ')}\n`,
          );
        } catch (e) {
          notes.push(`run ${run + 1} ${path}: ${(e as Error).message.split('\n')[0]}`);
          process.stderr.write(`run ${run + 1}/${runs} ${path} failed: ${(e as Error).message}\n`);
        } finally {
          await active.stop();
        }
      }
    }
    if (!smoke && values['no-profile'] !== true) {
      profile = await profileWard(lab, certs, dir, seconds, outDir);
    }
  } finally {
    await close();
  }
  const versions: Record<string, string> = { node: process.version };
  for (const p of PEERS) if (peerAvailable(p)) versions[p] = peerVersion(p);
  const meta = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      loadavgAtEnd: (await import('node:os')).loadavg().map((x) => Number(x.toFixed(2))),
    },
    versions,
    runs,
    secondsPerFigure: seconds,
    idleCounts,
    smoke,
    wallSeconds: Math.round((Date.now() - started) / 1000),
  };
  writeReport(outDir, { meta, samples, notes, profile });
  process.stderr.write(`results written to ${outDir}\n`);
  // CI's smoke run exists to keep the harness working: a path that could not be measured fails it.
  const missing = paths.filter((p) => (samples[p] ?? []).length === 0);
  if (smoke && missing.length > 0) {
    process.stderr.write(`smoke: no figures for ${missing.join(', ')}\n`);
    process.exitCode = 1;
  }
}

await main();
