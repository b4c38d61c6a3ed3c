// `ward init --mode kubernetes|vm|lab [--out FILE] [--force] [--node-name NAME] [--pod-cidr CIDR]…
//            [--trust-domain TD]`: writes a commented starting config, validated before it is written.
import { existsSync, writeFileSync } from 'node:fs';
import { ConfigError, parseConfigText } from '../config/load.ts';
import { configTemplate, INIT_MODES, type InitMode } from '../init/templates.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE =
  'usage: ward init --mode kubernetes|vm|lab [--out FILE] [--force] [--node-name NAME] [--pod-cidr CIDR]... [--trust-domain TD]';

export async function main(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: {
      mode: { type: 'string' },
      out: { type: 'string', short: 'o' },
      force: { type: 'boolean', default: false },
      'node-name': { type: 'string' },
      'pod-cidr': { type: 'string', multiple: true, default: [] },
      'trust-domain': { type: 'string' },
    },
    strict: true,
  });
  const mode = values.mode as InitMode | undefined;
  if (mode === undefined || !INIT_MODES.includes(mode)) {
    throw new UsageError(`--mode must be one of ${INIT_MODES.join(', ')}\n${USAGE}`);
  }
  const text = configTemplate(mode, {
    nodeName: values['node-name'],
    podCidrs: values['pod-cidr'].length > 0 ? values['pod-cidr'] : undefined,
    trustDomain: values['trust-domain'],
  });
  // Kubernetes configs get their pod CIDRs from the DaemonSet's environment; check with a stand-in.
  const env = mode === 'kubernetes' ? { WARD_CAPTURE_POD_CIDRS: '10.0.0.0/24' } : {};
  try {
    parseConfigText(text, `ward init --mode ${mode}`, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ward: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (values.out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  if (existsSync(values.out) && !values.force) {
    process.stderr.write(`ward init: ${values.out} exists; pass --force to overwrite it\n`);
    return 1;
  }
  writeFileSync(values.out, text, { mode: 0o644 });
  process.stderr.write(`wrote a ${mode} config to ${values.out}\n`);
  return 0;
}
