// Soak: many concurrent end-to-end connections through the lab's mesh path (pod → ward a → HBONE/mTLS →
// ward b → pod), held open for a while with echo traffic on a share of them. Samples each ward's RSS and
// open file descriptors, and checks that every byte comes back, that nothing errors, and that the
// descriptors return to their baseline after the clients close.
//
//   node bench/soak.ts [--count 10000] [--active 1000] [--seconds 300] [--out FILE]   (root; builds a lab)
//   node bench/soak.ts client --to IP:PORT --count N --active K --seconds S        (runs inside the pod)
//
// The client opens `count` ECHO connections (at most 256 connecting at once), then every second writes a
// 1 KiB message on each of `active` connections (rotating through all of them) and checks the echo. It
// prints one JSON line every 5 s and a final one after closing everything.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const MSG = Buffer.alloc(1024, 0x61);

interface ClientReport {
  readonly event: 'progress' | 'open' | 'final';
  readonly open: number;
  readonly errors: number;
  readonly errorCodes: Record<string, number>;
  readonly echoed: number;
  readonly mismatches: number;
  readonly elapsedS: number;
}

async function runClient(to: string, count: number, active: number, seconds: number): Promise<void> {
  const [host, portText] = to.split(':');
  const port = Number(portText);
  const sockets: Socket[] = [];
  const pending = new Map<Socket, number>();
  let errors = 0;
  let echoed = 0;
  let mismatches = 0;
  const errorCodes: Record<string, number> = {};
  const started = Date.now();
  const report = (event: ClientReport['event']) => {
    const r: ClientReport = {
      event,
      open: sockets.filter((s) => !s.destroyed).length,
      errors,
      errorCodes,
      echoed,
      mismatches,
      elapsedS: Math.round((Date.now() - started) / 1000),
    };
    process.stdout.write(`${JSON.stringify(r)}\n`);
  };
  const openOne = () =>
    new Promise<void>((resolve) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      s.once('connect', () => {
        s.write('ECHO\n');
        resolve();
      });
      s.on('data', (d: Buffer) => {
        for (const b of d) if (b !== 0x61) mismatches++;
        const left = (pending.get(s) ?? 0) - d.length;
        echoed += d.length;
        pending.set(s, left);
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        errors++;
        const code = err.code ?? 'unknown';
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        resolve();
      });
      s.on('end', () => s.end());
      sockets.push(s);
    });
  for (let i = 0; i < count; i += 256) {
    await Promise.all(Array.from({ length: Math.min(256, count - i) }, openOne));
  }
  report('open');
  let cursor = 0;
  const tick = setInterval(() => {
    for (let i = 0; i < active; i++) {
      const s = sockets[cursor % sockets.length];
      cursor++;
      if (s === undefined || s.destroyed) continue;
      pending.set(s, (pending.get(s) ?? 0) + MSG.length);
      s.write(MSG);
    }
  }, 1000);
  const progress = setInterval(() => report('progress'), 5000);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  clearInterval(tick);
  clearInterval(progress);
  // Let the last echoes arrive, then close every connection cleanly.
  const deadline = Date.now() + 10_000;
  while ([...pending.values()].some((v) => v > 0) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const outstanding = [...pending.values()].reduce((a, v) => a + Math.max(0, v), 0);
  if (outstanding > 0) mismatches += outstanding;
  report('final');
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((r) => {
          if (s.destroyed) return r();
          s.once('close', () => r());
          s.end();
        }),
    ),
  );
  process.exit(0);
}

interface Sample {
  readonly t: number;
  readonly rssA: number;
  readonly rssB: number;
  readonly fdsA: number;
  readonly fdsB: number;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round((Number(m?.[1] ?? 0) / 1024) * 10) / 10;
}

function fds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Least-squares slope of y over t, per minute. */
function slopePerMin(points: { t: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, p) => a + p.t, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const num = points.reduce((a, p) => a + (p.t - mt) * (p.y - my), 0);
  const den = points.reduce((a, p) => a + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}

async function runSoak(
  count: number,
  active: number,
  seconds: number,
  out: string | undefined,
): Promise<void> {
  // The lab's own waits poll with timers that may all be idle at once; keep the loop alive until done.
  const keepAlive = setInterval(() => {}, 1000);
  const { Lab } = await import('../src/lab/lab.ts');
  const { servePeer } = await import('../test/netns/helpers.ts');
  const lab = await Lab.create({
    // Not ward-t…: the namespace suite's start-up sweep removes every ward-t* lab, also a running soak.
    name: `soak${randomBytes(3).toString('hex')}`,
    nodes: [
      { name: 'a', pods: ['client'] },
      { name: 'b', pods: ['server'] },
    ],
    mesh: {},
    // Idle tunnels close after 5 s, so the descriptors can be compared with the baseline soon after.
    wardConfig: { mesh: { tunnelIdleTimeout: '5s' } },
  });
  try {
    const server = await servePeer(lab.pod('server'), ['serve', '--port', '8080']);
    const pidA = lab.node('a').ward?.pid ?? -1;
    const pidB = lab.node('b').ward?.pid ?? -1;
    // Warm up the path (tunnel, SVIDs) before the baseline.
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = { fdsA: fds(pidA), fdsB: fds(pidB), rssA: rssMiB(pidA), rssB: rssMiB(pidB) };
    const child = lab
      .pod('client')
      .spawn([
        process.execPath,
        SELF,
        'client',
        '--to',
        `${lab.pod('server').ip}:8080`,
        '--count',
        String(count),
        '--active',
        String(active),
        '--seconds',
        String(seconds),
      ]);
    const reports: ClientReport[] = [];
    let buf = '';
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const r = JSON.parse(line) as ClientReport;
        reports.push(r);
        process.stderr.write(`client: ${line}\n`);
      }
    });
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    const samples: Sample[] = [];
    const started = Date.now();
    const sampler = setInterval(() => {
      if (lab.node('a').ward?.running !== true || lab.node('b').ward?.running !== true) {
        process.stderr.write('a ward exited during the soak\n');
        child.kill('SIGKILL');
        return;
      }
      const s = {
        t: (Date.now() - started) / 1000,
        rssA: rssMiB(pidA),
        rssB: rssMiB(pidB),
        fdsA: fds(pidA),
        fdsB: fds(pidB),
      };
      samples.push(s);
      process.stderr.write(`sample: ${JSON.stringify(s)}\n`);
    }, 5000);
    const exitCode = await new Promise<number | null>((r) => child.once('exit', r));
    clearInterval(sampler);
    // Give the wards time to close their sides and their idle tunnels, then the after-close figures.
    await new Promise((r) => setTimeout(r, 12_000));
    const after = { fdsA: fds(pidA), fdsB: fds(pidB), rssA: rssMiB(pidA), rssB: rssMiB(pidB) };
    server.stop();
    const opened = reports.find((r) => r.event === 'open');
    const final = reports.find((r) => r.event === 'final');
    const openAt = samples.find((s) => opened !== undefined && s.t >= opened.elapsedS)?.t ?? 0;
    // The trend after warm-up: from the first sample a minute after every connection was open (or, in a
    // short run, from the second half of the hold).
    const warm = Math.min(openAt + 60, openAt + seconds / 2);
    const held = samples.filter((s) => s.t >= warm && s.t <= openAt + seconds);
    const accessA = lab.node('a').ward?.accessLog() ?? [];
    const reasons: Record<string, number> = {};
    for (const l of accessA) reasons[String(l.reason)] = (reasons[String(l.reason)] ?? 0) + 1;
    const summary = {
      date: new Date().toISOString(),
      count,
      active,
      seconds,
      clientExit: exitCode,
      opened: opened?.open ?? 0,
      final,
      baseline,
      peak: {
        fdsA: Math.max(...samples.map((s) => s.fdsA)),
        fdsB: Math.max(...samples.map((s) => s.fdsB)),
        rssA: Math.max(...samples.map((s) => s.rssA)),
        rssB: Math.max(...samples.map((s) => s.rssB)),
      },
      after,
      rssSlopeMiBPerMin: {
        a: Math.round(slopePerMin(held.map((s) => ({ t: s.t, y: s.rssA }))) * 100) / 100,
        b: Math.round(slopePerMin(held.map((s) => ({ t: s.t, y: s.rssB }))) * 100) / 100,
      },
      heldSamples: held.length,
      accessReasonsA: reasons,
      ok:
        exitCode === 0 &&
        (opened?.open ?? 0) === count &&
        final !== undefined &&
        final.errors === 0 &&
        final.mismatches === 0 &&
        final.open === count &&
        after.fdsA <= baseline.fdsA + 4 &&
        after.fdsB <= baseline.fdsB + 4,
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    if (out !== undefined) writeFileSync(out, `${JSON.stringify({ summary, samples }, null, 2)}\n`);
    if (!summary.ok) process.exitCode = 1;
  } finally {
    await lab.destroy();
    clearInterval(keepAlive);
  }
}

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    to: { type: 'string' },
    count: { type: 'string', default: '10000' },
    active: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '300' },
    out: { type: 'string' },
  },
});
const count = Number(values.count);
const active = Number(values.active);
const seconds = Number(values.seconds);
if (positionals[0] === 'client') await runClient(values.to ?? '', count, active, seconds);
else await runSoak(count, active, seconds, values.out);
