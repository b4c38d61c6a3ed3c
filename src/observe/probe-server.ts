// The two unauthenticated ports ztunnel has too: Prometheus metrics (:15020 /metrics, /stats/prometheus)
// and probes (:15021 /healthz/ready, /healthz/live). Plain text bodies: what is missing, one per line.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type AdminServer, listen } from './admin.ts';
import type { WardMetrics } from './metrics.ts';
import type { Liveness, Readiness } from './node-status.ts';

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export interface MetricsServerOptions {
  readonly address: string;
  readonly port: number;
  readonly metrics: WardMetrics;
  /** Asks the workers for fresh counters; the scrape waits a moment for their answers. */
  readonly refresh: () => void;
  readonly log: Logger;
}

export function startMetricsServer(opts: MetricsServerOptions): Promise<AdminServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method !== 'GET' || (path !== '/metrics' && path !== '/stats/prometheus')) {
      text(res, 404, 'not found: GET /metrics\n');
      return;
    }
    opts.refresh();
    setTimeout(() => {
      opts.metrics.render().then(
        (body) => text(res, 200, body, opts.metrics.contentType),
        (err: unknown) => {
          opts.log.error({ err: (err as Error).message }, 'metrics scrape failed');
          text(res, 500, `scrape failed: ${(err as Error).message}\n`);
        },
      );
    }, 50);
  });
  return listen(server, opts.address, opts.port, opts.log, 'metrics listening');
}

export interface ProbeServerOptions {
  readonly address: string;
  readonly port: number;
  readonly readiness: () => Readiness;
  readonly liveness: () => Liveness;
  readonly log: Logger;
}

export function startProbeServer(opts: ProbeServerOptions): Promise<AdminServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://probe').pathname;
    if (req.method !== 'GET') {
      text(res, 405, 'GET only\n');
      return;
    }
    switch (path) {
      case '/healthz/ready': {
        const r = opts.readiness();
        text(
          res,
          r.ready ? 200 : 503,
          r.ready ? 'ready\n' : `not ready:\n${r.missing.map((m) => `  ${m}\n`).join('')}`,
        );
        return;
      }
      case '/healthz/live': {
        const l = opts.liveness();
        text(
          res,
          l.live ? 200 : 503,
          l.live
            ? 'live\n'
            : `not live: the main event loop stalled for ${l.maxLagMs} ms (limit ${l.thresholdMs} ms) at ${l.lastStallAt ?? 'now'}\n`,
        );
        return;
      }
      default:
        text(res, 404, 'not found: GET /healthz/ready or /healthz/live\n');
    }
  });
  return listen(server, opts.address, opts.port, opts.log, 'probes listening');
}
