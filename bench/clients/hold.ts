// Opens N echo connections (the lab protocol's ECHO) end to end and keeps them idle until stdin closes,
// so the proxies' memory can be read with N open connections.
//
//   node bench/clients/hold.ts --to IP:PORT --count N [--batch 200]
//
// A connection counts once a byte it sent has come back (both hops and the backend hold it). Prints
// {"ready":n,"failed":f,"ms":…} once all are up, and {"closed":n} after stdin ends.
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    to: { type: 'string' },
    count: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '200' },
    timeout: { type: 'string', default: '20000' },
  },
});
const m = /^(.+):(\d+)$/.exec(values.to ?? '');
if (m?.[1] === undefined || m[2] === undefined) throw new Error('--to IP:PORT is required');
const host = m[1];
const port = Number(m[2]);
const count = Number(values.count);
const batch = Number(values.batch);
const timeoutMs = Number(values.timeout);

const sockets: Socket[] = [];
let failed = 0;
const errors: string[] = [];

function one(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      failed++;
      errors.push('timeout');
      socket.destroy();
      resolve();
    }, timeoutMs);
    socket.once('connect', () => socket.write('ECHO\nx'));
    socket.once('data', () => {
      clearTimeout(timer);
      sockets.push(socket);
      resolve();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!sockets.includes(socket)) {
        failed++;
        errors.push(err.code ?? err.message);
        resolve();
      }
    });
  });
}

const started = Date.now();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(batch, count) }, async () => {
    while (next < count) {
      next++;
      await one();
    }
  }),
);
process.stdout.write(
  `${JSON.stringify({ ready: sockets.length, failed, errors: [...new Set(errors)].slice(0, 5), ms: Date.now() - started })}\n`,
);
process.stdin.resume();
process.stdin.once('end', () => {
  for (const s of sockets) s.destroy();
  process.stdout.write(`${JSON.stringify({ closed: sockets.length })}\n`);
  process.exit(0);
});
