// Throughput through the lab path: pod on node a → (ward a → ward b, plaintext) → pod on node b, against
// the same path with no ward, measured with iperf3 in the same run, interleaved, median of N runs.
//
//   node bench/throughput.ts [--seconds 5] [--runs 3] [--workers 1] [--smoke] [--out bench/results/throughput.json]
//
// Needs root (it builds network namespaces) and iperf3 (Debian package iperf3).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab } from '../src/lab/lab.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    workers: { type: 'string', default: '1' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const seconds = values.smoke ? 1 : Number(values.seconds);
const runs = values.smoke ? 1 : Number(values.runs);
const workers = Number(values.workers);
const streamsList = [1, 8];

type Path = 'no-proxy' | 'ward-plaintext';

function iperf(lab: Lab, streams: number): number {
  const server = lab.pod('server');
  const res = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      lab.pod('client').ns,
      'iperf3',
      '-c',
      server.ip,
      '-t',
      String(seconds),
      '-P',
      String(streams),
      '-J',
    ],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000 },
  );
  if (res.status !== 0) throw new Error(`iperf3 failed: ${res.stderr || res.stdout.slice(0, 500)}`);
  const j = JSON.parse(res.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e9;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] ?? Number.NaN) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const lab = await Lab.create({
    name: `bench${process.pid % 10000}`,
    startWards: false,
    wardConfig: { proxy: { workers }, log: { accessLog: true } },
  });
  const iperfServer = lab.pod('server').spawn(['iperf3', '-s'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const samples: Record<Path, Record<number, number[]>> = { 'no-proxy': {}, 'ward-plaintext': {} };
  try {
    for (let run = 0; run < runs; run++) {
      for (const path of ['no-proxy', 'ward-plaintext'] as const) {
        if (path === 'ward-plaintext') await Promise.all(lab.nodes.map((n) => n.startWard()));
        for (const streams of streamsList) {
          const gbps = iperf(lab, streams);
          const list = samples[path][streams] ?? [];
          list.push(gbps);
          samples[path][streams] = list;
          process.stderr.write(
            `run ${run + 1}/${runs} ${path} ${streams} stream(s): ${gbps.toFixed(2)} Gbit/s\n`,
          );
        }
        if (path === 'ward-plaintext') await Promise.all(lab.nodes.map((n) => n.ward?.stop('SIGTERM')));
      }
    }
  } finally {
    iperfServer.kill('SIGKILL');
    await lab.destroy();
  }
  const rows = streamsList.map((streams) => {
    const plain = median(samples['no-proxy'][streams] ?? []);
    const ward = median(samples['ward-plaintext'][streams] ?? []);
    return { streams, noProxyGbps: plain, wardGbps: ward, ratio: ward / plain };
  });
  const table = [
    `| streams | no proxy (Gbit/s) | ward a → ward b, plaintext (Gbit/s) | ward / no proxy |`,
    `|---|---|---|---|`,
    ...rows.map(
      (r) =>
        `| ${r.streams} | ${r.noProxyGbps.toFixed(2)} | ${r.wardGbps.toFixed(2)} | ${r.ratio.toFixed(2)} |`,
    ),
  ].join('\n');
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: release(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    seconds,
    runs,
    workersPerWard: workers,
  };
  process.stdout.write(`${table}\n\n${JSON.stringify(meta)}\n`);
  if (values.out !== undefined) {
    mkdirSync(dirname(values.out), { recursive: true });
    writeFileSync(values.out, `${JSON.stringify({ meta, rows, samples }, null, 2)}\n`);
  }
}

await main();
