import { ConfigError, loadConfigFile } from '../config/load.ts';
import { runUntilSignalled } from '../runtime.ts';
import { parseCli, UsageError } from './usage.ts';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: { config: { type: 'string', short: 'c' } },
    strict: true,
  });
  if (values.config === undefined) throw new UsageError('--config FILE is required');
  let config: ReturnType<typeof loadConfigFile>;
  try {
    config = loadConfigFile(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ward: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  return runUntilSignalled(config);
}
