// An open-loop HTTP/1.1 load at a fixed rate over a few keep-alive connections, for latency at a
// given load (wrk and autocannon measure latency at saturation, or at millisecond resolution).
//
//   node bench/clients/fixed-rate.ts --to IP:PORT [--rate 1000] [--seconds 5] [--conns 10] [--warmup 0.5]
//
// Each request is due at start + i/rate; its latency runs from when it fell due (so waiting for a free
// connection counts) to the last byte of the response. Prints one JSON line.
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    to: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    conns: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0.5' },
  },
});
const m = /^(.+):(\d+)$/.exec(values.to ?? '');
if (m?.[1] === undefined || m[2] === undefined) throw new Error('--to IP:PORT is required');
const host = m[1];
const port = Number(m[2]);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const warmupMs = Number(values.warmup) * 1000;
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
const HEADER_END = Buffer.from('\r\n\r\n');

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

interface Conn {
  socket: Socket;
  busy: boolean;
  dueAt: number;
  buf: Buffer;
  need: number;
}

const latencies: number[] = [];
const queue: number[] = [];
let completed = 0;
let errors = 0;
let t0 = 0;
const idle: Conn[] = [];

function dispatch(conn: Conn, dueAt: number): void {
  conn.busy = true;
  conn.dueAt = dueAt;
  conn.need = -1;
  conn.socket.write(REQUEST);
}

function release(conn: Conn): void {
  conn.busy = false;
  const next = queue.shift();
  if (next !== undefined) dispatch(conn, next);
  else idle.push(conn);
}

function onData(conn: Conn, chunk: Buffer): void {
  conn.buf = conn.buf.length === 0 ? chunk : Buffer.concat([conn.buf, chunk]);
  for (;;) {
    if (conn.need < 0) {
      const end = conn.buf.indexOf(HEADER_END);
      if (end < 0) return;
      const head = conn.buf.subarray(0, end).toString('latin1');
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      conn.need = end + 4 + Number(cl?.[1] ?? 0);
    }
    if (conn.buf.length < conn.need) return;
    conn.buf = conn.buf.subarray(conn.need);
    const done = nowMs();
    if (conn.dueAt - t0 >= warmupMs) latencies.push(done - conn.dueAt);
    completed++;
    release(conn);
    if (conn.buf.length === 0) return;
  }
}

async function open(): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    const conn: Conn = { socket, busy: false, dueAt: 0, buf: Buffer.alloc(0), need: -1 };
    socket.once('connect', () => resolve(conn));
    socket.once('error', reject);
    socket.on('data', (d: Buffer) => onData(conn, d));
  });
}

const conns = await Promise.all(Array.from({ length: Number(values.conns) }, open));
for (const c of conns) {
  c.socket.on('error', () => {
    errors++;
  });
  idle.push(c);
}
const total = Math.round(rate * seconds);
const interval = 1000 / rate;
t0 = nowMs();
let i = 0;
await new Promise<void>((resolve) => {
  const tick = (): void => {
    const now = nowMs();
    while (i < total && t0 + i * interval <= now) {
      const due = t0 + i * interval;
      i++;
      const c = idle.pop();
      if (c !== undefined) dispatch(c, due);
      else queue.push(due);
    }
    if (i >= total) resolve();
    else setTimeout(tick, 0);
  };
  tick();
});
const deadline = Date.now() + 5000;
while (completed < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
for (const c of conns) c.socket.destroy();
const sorted = Float64Array.from(latencies).sort();
const pct = (p: number): number =>
  sorted.length === 0
    ? Number.NaN
    : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN);
const elapsed = (nowMs() - t0) / 1000;
process.stdout.write(
  `${JSON.stringify({
    sent: i,
    completed,
    errors,
    achievedRate: completed / elapsed,
    samples: sorted.length,
    p50_ms: pct(50),
    p90_ms: pct(90),
    p99_ms: pct(99),
    p999_ms: pct(99.9),
    max_ms: sorted[sorted.length - 1] ?? Number.NaN,
  })}\n`,
);
