import { type ParseArgsConfig, parseArgs } from 'node:util';
import { WardError } from '../errors.ts';

/** A usage mistake on the command line: ward prints it and exits 2. */
export class UsageError extends WardError {
  constructor(message: string) {
    super('CLI_USAGE', message);
  }
}

/** node:util parseArgs, with its errors turned into UsageError. */
export function parseCli<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
