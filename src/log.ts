// One pino root per thread; modules take `log.child({ component })`. Each line is a single write(2) of a
// whole line (sync destination), so lines from several worker threads sharing stdout never interleave.
import pino, { type LevelWithSilent, type Logger } from 'pino';

let root: Logger | undefined;

export type LogLevel = LevelWithSilent;

export function initLogger(level: LogLevel, bindings: Record<string, string | number> = {}): Logger {
  root = pino(
    {
      level,
      base: bindings,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 1, sync: true }),
  );
  return root;
}

export function rootLogger(): Logger {
  root ??= initLogger((process.env.WARD_LOG_LEVEL as LogLevel | undefined) ?? 'info');
  return root;
}

export function componentLogger(component: string): Logger {
  return rootLogger().child({ component });
}

export type { Logger };
