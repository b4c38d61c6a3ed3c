// ward rules show|clean: what ward would install, what is installed, and removal of leftovers.
import { ConfigError, loadConfigFile } from '../config/load.ts';
import {
  cleanAll,
  detectBackend,
  familiesOf,
  renderChains,
  renderRouteCommands,
  showMangle,
} from '../proxy/capture-rules.ts';
import { captureSpecOf } from '../runtime.ts';
import { parseCli, UsageError } from './usage.ts';

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, installed: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const [verb] = positionals;
  if (verb !== 'show' && verb !== 'clean') throw new UsageError('usage: ward rules show|clean --config FILE');
  if (values.config === undefined) throw new UsageError('--config FILE is required');
  let spec: ReturnType<typeof captureSpecOf>;
  try {
    spec = captureSpecOf(loadConfigFile(values.config));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ward: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (verb === 'clean') {
    const removed = cleanAll(spec);
    process.stdout.write(
      removed.length === 0 ? 'no ward rules found\n' : `removed:\n  ${removed.join('\n  ')}\n`,
    );
    return 0;
  }
  if (values.installed === true) {
    for (const family of familiesOf(spec)) process.stdout.write(showMangle(detectBackend(), family));
    return 0;
  }
  for (const family of familiesOf(spec)) {
    process.stdout.write(`# iptables-restore --noflush (IPv${family})\n${renderChains(spec, family)}`);
    process.stdout.write(
      `# then: ${family === 4 ? 'iptables' : 'ip6tables'} -t mangle -I PREROUTING 1 -j ${spec.chainPrefix}_PREROUTING\n`,
    );
    for (const argv of renderRouteCommands(spec, family))
      process.stdout.write(`# then: ip ${argv.join(' ')}\n`);
  }
  return 0;
}
