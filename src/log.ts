// One pino root per thread; modules take `log.child({ component })`. Each line is a single write(2) of a
// whole line (sync destination), so lines from several worker threads sharing stdout never interleave.
// The access log, a line per connection, is written a turn at a time instead (TurnBatchedDestination).
import pino, { type DestinationStream, type LevelWithSilent, type Logger } from 'pino';

let root: Logger | undefined;

export type LogLevel = LevelWithSilent;

/** Writes to a pipe of at most this many bytes are atomic (POSIX PIPE_BUF; Linux: 4096). */
export const PIPE_BUF = 4096;

function createLogger(level: LogLevel, bindings: Record<string, string | number>, to: DestinationStream) {
  return pino(
    {
      level,
      base: bindings,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    to,
  );
}

export function initLogger(level: LogLevel, bindings: Record<string, string | number> = {}): Logger {
  root = createLogger(level, bindings, pino.destination({ fd: 1, sync: true }));
  return root;
}

/**
 * A destination that gathers the lines of one event-loop turn and writes them with one write(2), in
 * batches of whole lines of at most PIPE_BUF bytes (a longer line goes alone, as it would unbatched): so
 * lines of several threads sharing stdout still never interleave, at one syscall per turn instead of one
 * per line. A line waits at most until the end of its turn; flush() writes what waits at once (drain).
 */
export class TurnBatchedDestination implements DestinationStream {
  readonly #out: DestinationStream;
  #pending: string[] = [];
  #bytes = 0;
  #scheduled = false;
  readonly #onTurn = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  constructor(out: DestinationStream = pino.destination({ fd: 1, sync: true })) {
    this.#out = out;
  }

  write(line: string): void {
    const n = Buffer.byteLength(line);
    if (this.#bytes + n > PIPE_BUF) this.flush();
    this.#pending.push(line);
    this.#bytes += n;
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#onTurn);
    }
  }

  flush(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending.length === 1 ? (this.#pending[0] as string) : this.#pending.join('');
    this.#pending = [];
    this.#bytes = 0;
    this.#out.write(batch);
  }
}

/** A logger of its own for the access log, written a turn at a time; flush its destination on drain. */
export function createAccessLogger(
  level: LogLevel,
  bindings: Record<string, string | number>,
  to: TurnBatchedDestination,
): Logger {
  return createLogger(level, bindings, to);
}

export function rootLogger(): Logger {
  root ??= initLogger((process.env.WARD_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  return root;
}

export function componentLogger(component: string): Logger {
  return rootLogger().child({ component });
}

export type { Logger };
