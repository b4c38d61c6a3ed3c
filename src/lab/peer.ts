// The lab's workload program: what pods run in tests, benchmarks and the demo.
//
//   node src/lab/peer.ts serve --port P           a server speaking the lab protocol (below)
//   node src/lab/peer.ts http --port P [--body N] an HTTP/1.1 server answering every request with N bytes
//   node src/lab/peer.ts send --to IP:PORT --bytes N [--seed HEX]
//        sends N bytes, half-closes, prints the server's SHA-256 of what it received
//   node src/lab/peer.ts fetch --to IP:PORT --bytes N [--seed HEX] [--pause-until FILE]
//        asks the server for N bytes, prints their SHA-256; with --pause-until it reads nothing until
//        FILE exists (a reader that stops)
//   node src/lab/peer.ts probe --to IP:PORT      connects, writes a line, reports what happened
//   node src/lab/peer.ts many --to IP:PORT --count N --bytes B
//        N echo connections at once, each sending B bytes and reading them back; all stay open until
//        every one is done; prints how many came back intact
//   node src/lab/peer.ts get --to IP:PORT [--path /]  one HTTP/1.1 GET, prints status and body size
//   node src/lab/peer.ts hbone --to IP:15008 --authority IP:PORT --cert F --key F
//        an HBONE client of its own (TLS 1.3 with the given SVID, HTTP/2 CONNECT, then ECHO): prints the
//        status the peer answered, or how the handshake failed — a stand-in for a foreign or rogue peer
//   node src/lab/peer.ts hold --to IP:PORT       keeps an echo connection busy (a tick every 100 ms),
//        prints {"event":"echoing"} once echoes flow and {"event":"end",…} when the connection ends
//
// Lab protocol: the client's first line is a command.
//   HASH\n <bytes…> FIN     → the server replies "<sha256 hex>\n" and closes
//   SOURCE <n> <seed>\n     → the server sends n bytes of the seed's keystream and closes
//   ECHO\n <bytes…>         → the server echoes every byte, half-closing when the client does
// Every command prints one JSON line on stdout.
import { createCipheriv, createHash } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const CHUNK = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

/** A deterministic byte stream (AES-128-CTR of zeros): both ends can produce and check it cheaply. */
export class Keystream {
  readonly #cipher;
  #left: number;

  constructor(seedHex: string, bytes: number) {
    const key = Buffer.alloc(16);
    Buffer.from(seedHex.padStart(32, '0').slice(-32), 'hex').copy(key);
    this.#cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
    this.#left = bytes;
  }

  next(): Buffer | null {
    if (this.#left <= 0) return null;
    const n = Math.min(CHUNK, this.#left);
    this.#left -= n;
    return this.#cipher.update(n === CHUNK ? ZEROS : ZEROS.subarray(0, n));
  }
}

export function keystreamSha256(seedHex: string, bytes: number): string {
  const ks = new Keystream(seedHex, bytes);
  const h = createHash('sha256');
  for (let b = ks.next(); b !== null; b = ks.next()) h.update(b);
  return h.digest('hex');
}

function pump(socket: Socket, ks: Keystream, done: () => void): void {
  for (;;) {
    const b = ks.next();
    if (b === null) {
      done();
      return;
    }
    if (!socket.write(b)) {
      socket.once('drain', () => pump(socket, ks, done));
      return;
    }
  }
}

/** The lab protocol's server side, for one connection (also used by tests in-process). */
export function serveLab(socket: Socket): void {
  let head = Buffer.alloc(0);
  const onHead = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > 1024) socket.destroy();
      return;
    }
    socket.off('data', onHead);
    const [cmd, a, b] = head.subarray(0, nl).toString().trim().split(' ');
    const rest = head.subarray(nl + 1);
    if (cmd === 'HASH') {
      const h = createHash('sha256');
      h.update(rest);
      socket.on('data', (c: Buffer) => h.update(c));
      socket.once('end', () => socket.end(`${h.digest('hex')}\n`));
    } else if (cmd === 'SOURCE') {
      socket.on('data', () => {});
      pump(socket, new Keystream(b ?? '0', Number(a)), () => socket.end());
    } else if (cmd === 'ECHO') {
      if (rest.length > 0) socket.write(rest);
      socket.pipe(socket);
    } else {
      socket.end(`unknown command ${cmd}\n`);
    }
  };
  socket.on('data', onHead);
  socket.on('error', () => {});
}

function parseTo(to: string | undefined): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(to ?? '');
  if (m?.[1] === undefined || m[2] === undefined) throw new Error('--to IP:PORT is required');
  return { host: m[1], port: Number(m[2]) };
}

function print(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      to: { type: 'string' },
      bytes: { type: 'string', default: '0' },
      seed: { type: 'string', default: '5eed' },
      body: { type: 'string', default: '615' },
      timeout: { type: 'string', default: '10000' },
      count: { type: 'string', default: '1' },
      path: { type: 'string', default: '/' },
      authority: { type: 'string' },
      'pause-until': { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
    },
  });
  const [cmd] = positionals;
  const bytes = Number(values.bytes);
  const timeoutMs = Number(values.timeout);
  switch (cmd) {
    case 'serve': {
      const server = createServer({ allowHalfOpen: true }, serveLab);
      server.listen(Number(values.port), () => print({ listening: Number(values.port) }));
      return;
    }
    case 'http': {
      const body = Buffer.alloc(Number(values.body), 'x');
      const server = createHttpServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
      });
      server.listen(Number(values.port), () => print({ listening: Number(values.port) }));
      return;
    }
    case 'send': {
      const started = Date.now();
      const socket = connect({ ...parseTo(values.to), allowHalfOpen: true });
      const sent = createHash('sha256');
      let reply = '';
      socket.once('connect', () => {
        socket.write('HASH\n');
        const ks = new Keystream(values.seed, bytes);
        const tee = {
          next: () => {
            const b = ks.next();
            if (b !== null) sent.update(b);
            return b;
          },
        } as Keystream;
        pump(socket, tee, () => socket.end());
      });
      socket.on('data', (d: Buffer) => {
        reply += d.toString();
      });
      socket.on('end', () =>
        print({ ok: true, sentSha256: sent.digest('hex'), reply: reply.trim(), ms: Date.now() - started }),
      );
      socket.on('error', (err: NodeJS.ErrnoException) =>
        print({ ok: false, code: err.code, message: err.message }),
      );
      return;
    }
    case 'fetch': {
      const started = Date.now();
      const socket = connect(parseTo(values.to));
      const h = createHash('sha256');
      let received = 0;
      socket.once('connect', () => socket.write(`SOURCE ${bytes} ${values.seed}\n`));
      socket.on('data', (d: Buffer) => {
        received += d.length;
        h.update(d);
      });
      const gate = values['pause-until'];
      if (gate !== undefined) {
        const { existsSync } = await import('node:fs');
        socket.pause();
        const poll = setInterval(() => {
          if (existsSync(gate)) {
            clearInterval(poll);
            socket.resume();
          }
        }, 20);
      }
      socket.on('end', () =>
        print({ ok: true, received, sha256: h.digest('hex'), ms: Date.now() - started }),
      );
      socket.on('error', (err: NodeJS.ErrnoException) =>
        print({ ok: false, code: err.code, message: err.message }),
      );
      return;
    }
    case 'probe': {
      const socket = connect(parseTo(values.to));
      let connected = false;
      let data = '';
      const timer = setTimeout(() => {
        print({ outcome: 'timeout', connected });
        socket.destroy();
      }, timeoutMs);
      socket.once('connect', () => {
        connected = true;
        socket.write('ECHO\nping\n');
      });
      socket.on('data', (d: Buffer) => {
        data += d.toString();
        if (data.includes('ping\n')) {
          clearTimeout(timer);
          print({ outcome: 'echoed', connected });
          socket.destroy();
        }
      });
      socket.on('end', () => {
        clearTimeout(timer);
        print({ outcome: 'closed', connected });
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        print({
          outcome: err.code === 'ECONNREFUSED' ? 'refused' : err.code === 'ECONNRESET' ? 'reset' : 'error',
          code: err.code,
          connected,
        });
      });
      return;
    }
    case 'many': {
      const count = Number(values.count);
      const target = parseTo(values.to);
      const started = Date.now();
      const results = await Promise.all(
        Array.from(
          { length: count },
          (_, i) =>
            new Promise<{ ok: boolean; socket: Socket | null; error?: string }>((resolve) => {
              const socket = connect(target);
              const want = createHash('sha256');
              const got = createHash('sha256');
              let received = 0;
              socket.once('connect', () => {
                socket.write('ECHO\n');
                const ks = new Keystream(`${values.seed}${i.toString(16)}`, bytes);
                const tee = {
                  next: () => {
                    const b = ks.next();
                    if (b !== null) want.update(b);
                    return b;
                  },
                } as Keystream;
                pump(socket, tee, () => {});
              });
              socket.on('data', (d: Buffer) => {
                received += d.length;
                got.update(d);
                if (received >= bytes)
                  resolve({ ok: received === bytes && got.digest('hex') === want.digest('hex'), socket });
              });
              socket.on('error', (err) => resolve({ ok: false, socket: null, error: err.message }));
              if (bytes === 0) socket.once('connect', () => resolve({ ok: true, socket }));
            }),
        ),
      );
      for (const r of results) r.socket?.destroy();
      const errors = results.flatMap((r) => (r.error === undefined ? [] : [r.error]));
      print({
        ok: results.every((r) => r.ok),
        count,
        intact: results.filter((r) => r.ok).length,
        errors: errors.slice(0, 5),
        ms: Date.now() - started,
      });
      return;
    }
    case 'get': {
      const target = parseTo(values.to);
      const { request } = await import('node:http');
      const req = request(
        { host: target.host, port: target.port, path: values.path, agent: false, timeout: timeoutMs },
        (res) => {
          let n = 0;
          res.on('data', (d: Buffer) => {
            n += d.length;
          });
          res.on('end', () => print({ ok: true, status: res.statusCode, bytes: n }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err: NodeJS.ErrnoException) => print({ ok: false, code: err.code ?? err.message }));
      req.end();
      return;
    }
    case 'hbone': {
      const target = parseTo(values.to);
      const { readFileSync } = await import('node:fs');
      const { connect: tlsConnect } = await import('node:tls');
      const { connect: h2connect } = await import('node:http2');
      const done = (v: Record<string, unknown>) => {
        print(v);
        process.exit(0);
      };
      const socket = tlsConnect({
        host: target.host,
        port: target.port,
        ...(values.cert === undefined
          ? {}
          : { cert: readFileSync(values.cert), key: readFileSync(values.key ?? '') }),
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        servername: '',
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.3',
      });
      socket.on('error', (err: NodeJS.ErrnoException) =>
        done({ outcome: 'tls_error', code: err.code ?? err.message }),
      );
      socket.on('close', () => done({ outcome: 'closed' }));
      socket.once('secureConnect', () => {
        const session = h2connect(`https://${target.host}`, { createConnection: () => socket });
        session.on('error', (err) => done({ outcome: 'h2_error', message: err.message }));
        const st = session.request({ ':method': 'CONNECT', ':authority': values.authority ?? '' });
        st.on('response', (h) => {
          const status = Number(h[':status']);
          if (status !== 200) done({ outcome: 'status', status });
          st.write('ECHO\nping\n');
          st.on('data', (d: Buffer) => {
            if (d.toString().includes('ping')) done({ outcome: 'echoed', status });
          });
        });
        st.on('error', (err) => done({ outcome: 'stream_error', message: err.message }));
      });
      setTimeout(() => done({ outcome: 'timeout' }), timeoutMs).unref();
      return;
    }
    case 'hold': {
      const socket = connect(parseTo(values.to));
      let echoed = 0;
      let announced = false;
      let ticker: NodeJS.Timeout | undefined;
      socket.once('connect', () => {
        socket.write('ECHO\n');
        ticker = setInterval(() => socket.write('tick\n'), 100);
      });
      socket.on('data', (d: Buffer) => {
        echoed += d.length;
        if (!announced) {
          announced = true;
          print({ event: 'echoing' });
        }
      });
      const end = (outcome: string, code?: string) => {
        clearInterval(ticker);
        print({ event: 'end', outcome, code, echoed });
        socket.destroy();
      };
      socket.on('end', () => end('closed'));
      socket.on('error', (err: NodeJS.ErrnoException) =>
        end(err.code === 'ECONNRESET' ? 'reset' : 'error', err.code),
      );
      return;
    }
    default:
      process.stderr.write('usage: peer.ts serve|http|send|fetch|probe|many|get|hold …\n');
      process.exitCode = 2;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
