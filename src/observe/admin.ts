// The admin API, on loopback only (it can stop ward).
//   GET  /stats                  counters summed across workers, and each worker's state (JSON)
//   POST /workers/kill?index=N   terminate worker N abruptly, as a crash would; the supervisor replaces it
//   GET  /flows?last=N           the most recent flow records, one JSON object per line
//   POST /quitquitquit           drain and exit, as SIGTERM does
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Supervisor } from '../proxy/supervisor.ts';
import type { FlowRing } from './flow.ts';

export interface AdminOptions {
  readonly address: string;
  readonly port: number;
  readonly supervisor: Supervisor;
  readonly flows: FlowRing;
  readonly log: Logger;
  readonly quit: () => void;
}

export interface AdminServer {
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function startAdminServer(opts: AdminOptions): Promise<AdminServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    switch (route) {
      case 'GET /stats':
        opts.supervisor.refreshCounters();
        // Give workers a turn to answer, so the figures include what just happened.
        setTimeout(() => {
          json(res, 200, {
            counters: opts.supervisor.counters(),
            workers: opts.supervisor.workers(),
            tunnels: opts.supervisor.tunnels(),
            workerRestarts: opts.supervisor.restarts,
          });
        }, 50);
        return;
      case 'GET /flows': {
        const last = Number(url.searchParams.get('last') ?? '1000');
        const body = opts.flows
          .recent(Number.isInteger(last) && last > 0 ? last : 1000)
          .map((f) => JSON.stringify(f))
          .join('\n');
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.end(body === '' ? '' : `${body}\n`);
        return;
      }
      case 'POST /workers/kill': {
        const index = Number(url.searchParams.get('index'));
        if (!Number.isInteger(index)) {
          json(res, 400, { error: 'index must be a worker number' });
          return;
        }
        const killed = opts.supervisor.killWorker(index);
        json(res, killed ? 200 : 409, { killed, index });
        return;
      }
      case 'POST /quitquitquit':
        json(res, 200, { quitting: true });
        opts.quit();
        return;
      default:
        json(res, 404, { error: `no such endpoint: ${route}` });
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.address, port: opts.port }, () => {
      server.off('error', reject);
      opts.log.info({ address: `${opts.address}:${opts.port}` }, 'admin API listening');
      resolve({
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
