// A stand-in for a worker's data plane in tests: owns connections, collects their access-log lines.
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Connection, ConnectionOwner } from '../../src/proxy/connection.ts';
import { emptyCounters } from '../../src/proxy/stats.ts';
import { Sweeper } from '../../src/proxy/sweeper.ts';

export class TestOwner implements ConnectionOwner {
  readonly sweeper = new Sweeper(60_000, 5_000);
  readonly counters = emptyCounters();
  /** Parsed access-log lines, in order. */
  readonly lines: Record<string, unknown>[] = [];
  readonly accessLog = pino(
    {},
    new Writable({
      write: (chunk: Buffer, _e, cb) => {
        for (const l of chunk.toString().split('\n'))
          if (l !== '') this.lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  );
  readonly live = new Set<Connection>();

  register(conn: Connection): void {
    this.live.add(conn);
    this.sweeper.add(conn);
  }

  connectionClosed(conn: Connection): void {
    this.live.delete(conn);
    this.sweeper.delete(conn);
  }
}
