// ward's command line. Each command lives in its own module under src/cli/ and exports
// `main(argv): Promise<number>`, the process exit code: 0 success, 1 a negative result the command
// reports (a rejected certificate, an invalid policy), 2 a usage or input error.
import { readFileSync } from 'node:fs';
import { UsageError } from './usage.ts';

type Command = { summary: string; load: () => Promise<{ main: (argv: string[]) => Promise<number> }> };

const commands: Record<string, Command> = {
  run: { summary: 'run the node proxy: ward run --config FILE', load: () => import('./run-command.ts') },
  rules: {
    summary: 'capture rules: ward rules clean|show --config FILE',
    load: () => import('./rules-command.ts'),
  },
  lab: { summary: 'the namespace lab: ward lab up|down|exec|status', load: () => import('./lab-command.ts') },
  svid: { summary: 'SVIDs: ward svid verify|list', load: () => import('./svid-command.ts') },
  ca: { summary: 'development CA: ward ca init|serve|issue', load: () => import('./ca-command.ts') },
  policy: { summary: 'policy offline: validate|trace', load: () => import('./policy-command.ts') },
  demo: {
    summary: 'play the seed scenario in the lab (root): ward demo [--json]',
    load: () => import('./demo-command.ts'),
  },
  init: { summary: 'config: ward init --mode kubernetes|vm|lab', load: () => import('./init-command.ts') },
  observe: { summary: 'flows, like hubble observe [-f]', load: () => import('./observe-command.ts') },
  status: { summary: 'node summary: ward status [--verbose]', load: () => import('./status-command.ts') },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `ward ${pkg.version} (node ${process.version})`;
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: ward <command> [options]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    '  --version    print the ward and Node.js versions',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`ward: unknown command '${name}'\n${usage()}\n`);
    return 2;
  }
  try {
    return await (await command.load()).main(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`ward ${name}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { code?: unknown; message?: unknown };
    process.stderr.write(
      `ward: ${typeof e.code === 'string' ? `${e.code}: ` : ''}${String(e.message ?? err)}\n`,
    );
    process.exitCode = 2;
  },
);
