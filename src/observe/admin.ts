// The admin API, on loopback only (it can stop ward). ztunnel's shape (:15000), plus ward's own drills.
//   GET  /                       this list
//   GET  /stats                  counters summed across workers, and each worker's state (JSON)
//   GET  /status                 the node summary `ward status` prints (JSON), with readiness and problems
//   GET  /config_dump            effective config, inventory, policy summary, identities (no private keys)
//   GET  /flows                  flow records as NDJSON: ?last=N, ?follow=true, and filters (flow-filter.ts)
//   GET  /logging                the log level; POST /logging?level=L changes it (main thread and workers)
//   POST /workers/kill?index=N   terminate worker N abruptly, as a crash would; the supervisor replaces it
//   POST /quitquitquit           drain and exit, as SIGTERM does
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { LogLevel } from '../log.ts';
import type { Supervisor } from '../proxy/supervisor.ts';
import { assertNoKeyMaterial } from './config-dump.ts';
import type { FlowRecord, FlowRing } from './flow.ts';
import { FlowFilterError, flowMatches, parseFlowFilter } from './flow-filter.ts';
import { healthyOf, type NodeStatus, problemsOf, readinessOf } from './node-status.ts';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DEFAULT_LAST = 1000;

export interface AdminOptions {
  readonly address: string;
  readonly port: number;
  readonly supervisor: Supervisor;
  readonly flows: FlowRing;
  readonly log: Logger;
  readonly quit: () => void;
  readonly status: () => NodeStatus;
  readonly configDump: () => Record<string, unknown>;
  readonly logLevel: () => string;
  readonly setLogLevel: (level: LogLevel) => void;
}

export interface AdminServer {
  close(): Promise<void>;
}

const ENDPOINTS = [
  'GET  /stats',
  'GET  /status',
  'GET  /config_dump',
  'GET  /flows?last=N&follow=true&from_label=k=v&to_label=k=v&from_pod=ns/name&to_pod=ns/name&verdict=DROPPED',
  'GET  /logging',
  'POST /logging?level=fatal|error|warn|info|debug|trace|silent',
  'POST /workers/kill?index=N',
  'POST /quitquitquit',
];

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function isLevel(v: string | null): v is LogLevel {
  return v !== null && (LOG_LEVELS as readonly string[]).includes(v);
}

/** GET /flows: the ring's matching records (the last N), then, with follow, every new match as it comes. */
function serveFlows(req: IncomingMessage, res: ServerResponse, url: URL, ring: FlowRing): void {
  let filter: ReturnType<typeof parseFlowFilter>;
  try {
    filter = parseFlowFilter(url.searchParams);
  } catch (err) {
    if (err instanceof FlowFilterError) {
      json(res, 400, { error: err.message });
      return;
    }
    throw err;
  }
  const follow = ['true', '1', ''].includes(url.searchParams.get('follow') ?? 'no');
  const lastText = url.searchParams.get('last');
  const last = lastText === null ? (follow ? 0 : DEFAULT_LAST) : Number(lastText);
  if (!Number.isInteger(last) || last < 0) {
    json(res, 400, { error: 'last must be a non-negative integer' });
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  const matching = last === 0 ? [] : ring.recent().filter((f) => flowMatches(filter, f));
  const head = matching.slice(Math.max(0, matching.length - last));
  if (head.length > 0) res.write(`${head.map((f) => JSON.stringify(f)).join('\n')}\n`);
  if (!follow) {
    res.end();
    return;
  }
  res.flushHeaders();
  const off = ring.subscribe((f: FlowRecord) => {
    if (flowMatches(filter, f)) res.write(`${JSON.stringify(f)}\n`);
  });
  req.once('close', off);
  res.once('close', off);
}

export function startAdminServer(opts: AdminOptions): Promise<AdminServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    switch (route) {
      case 'GET /':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`ward admin API\n\n${ENDPOINTS.join('\n')}\n`);
        return;
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
      case 'GET /status':
        opts.supervisor.refreshCounters();
        setTimeout(() => {
          const status = opts.status();
          json(res, 200, {
            ...status,
            readiness: readinessOf(status),
            problems: problemsOf(status),
            healthy: healthyOf(status),
          });
        }, 50);
        return;
      case 'GET /config_dump': {
        const text = `${JSON.stringify(opts.configDump(), null, 2)}\n`;
        try {
          assertNoKeyMaterial(text);
        } catch (err) {
          opts.log.error({ err: (err as Error).message }, 'config_dump withheld');
          json(res, 500, { error: 'the dump would have held key material; withheld' });
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'GET /flows':
        serveFlows(req, res, url, opts.flows);
        return;
      case 'GET /logging':
        json(res, 200, { level: opts.logLevel() });
        return;
      case 'POST /logging':
      case 'PUT /logging': {
        const level = url.searchParams.get('level');
        if (!isLevel(level)) {
          json(res, 400, { error: `level must be one of ${LOG_LEVELS.join(', ')}` });
          return;
        }
        const from = opts.logLevel();
        opts.setLogLevel(level);
        opts.log.warn({ from, to: level }, 'log level changed');
        json(res, 200, { level, previous: from });
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
  return listen(server, opts.address, opts.port, opts.log, 'admin API listening');
}

/** Listens and resolves with a closer that also drops open (e.g. following) connections. */
export function listen(
  server: ReturnType<typeof createServer>,
  address: string,
  port: number,
  log: Logger,
  msg: string,
): Promise<AdminServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port }, () => {
      server.off('error', reject);
      log.info({ address: `${address}:${port}` }, msg);
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
