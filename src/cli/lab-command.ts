// ward lab up|down|exec|status: the namespace VM pair from the command line (needs root).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_NODES, LAB_PREFIX, Lab, type LabState } from '../lab/lab.ts';
import { listNamespaces } from '../lab/netns.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = `usage:
  ward lab up [--name NAME] [--no-ward]      build nodes a and b with pods client (a) and server (b), start a ward in each
  ward lab down [--name NAME] [--all]        stop the wards and delete the namespaces (also a crashed run's leftovers)
  ward lab status [--name NAME]              namespaces, addresses, wards and their logs
  ward lab exec [--name NAME] NODE|POD -- COMMAND…   run a command inside a node or pod namespace`;

function readState(name: string): LabState | undefined {
  const path = join(tmpdir(), `ward-lab-${name}`, 'state.json');
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LabState) : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const command = dash < 0 ? [] : argv.slice(dash + 1);
  const { values, positionals } = parseCli({
    args: own,
    options: {
      name: { type: 'string', default: 'lab' },
      'no-ward': { type: 'boolean', default: false },
      all: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [verb, target] = positionals;
  const name = values.name;
  switch (verb) {
    case 'up': {
      const lab = await Lab.create({ name, detached: true, startWards: !values['no-ward'] });
      process.stdout.write(`lab ${name} is up (state and logs in ${lab.dir})\n`);
      for (const node of lab.nodes) {
        process.stdout.write(
          `  node ${node.name}: netns ${node.ns}, underlay ${node.underlayIp}, pod CIDR ${node.podCidr}\n`,
        );
        if (node.ward !== null)
          process.stdout.write(`    ward pid ${node.ward.pid}, log ${node.ward.logPath}\n`);
        for (const pod of node.pods)
          process.stdout.write(`    pod ${pod.name}: netns ${pod.ns}, ip ${pod.ip}\n`);
      }
      return 0;
    }
    case 'down': {
      const gone = values.all
        ? Lab.destroyAll()
        : Lab.destroyByName(name, join(tmpdir(), `ward-lab-${name}`));
      process.stdout.write(gone.length === 0 ? 'nothing to remove\n' : `removed ${gone.join(', ')}\n`);
      return 0;
    }
    case 'status': {
      const state = readState(name);
      const present = listNamespaces().filter((ns) => ns.startsWith(`${LAB_PREFIX}${name}-`));
      if (state === undefined && present.length === 0) {
        process.stdout.write(`lab ${name} is not up\n`);
        return 1;
      }
      process.stdout.write(`namespaces: ${present.join(', ') || '(none)'}\n`);
      for (const w of state?.wards ?? []) {
        let alive = true;
        try {
          process.kill(w.pid, 0);
        } catch {
          alive = false;
        }
        process.stdout.write(`ward on ${w.node}: pid ${w.pid} ${alive ? 'running' : 'not running'}\n`);
      }
      return 0;
    }
    case 'exec': {
      if (target === undefined || command.length === 0)
        throw new UsageError(`exec needs a node or pod and a command\n${USAGE}`);
      const nodes = DEFAULT_NODES.map((n) => n.name);
      const pods = DEFAULT_NODES.flatMap((n) => n.pods.map((p) => ({ node: n.name, pod: p })));
      const pod = pods.find((p) => p.pod === target);
      const ns = nodes.includes(target)
        ? `${LAB_PREFIX}${name}-${target}`
        : pod !== undefined
          ? `${LAB_PREFIX}${name}-${pod.node}-${pod.pod}`
          : undefined;
      if (ns === undefined)
        throw new UsageError(
          `no node or pod named ${target} (nodes: ${nodes.join(', ')}; pods: ${pods.map((p) => p.pod).join(', ')})`,
        );
      const res = spawnSync('ip', ['netns', 'exec', ns, ...command], { stdio: 'inherit' });
      return res.status ?? 1;
    }
    default:
      throw new UsageError(USAGE);
  }
}
