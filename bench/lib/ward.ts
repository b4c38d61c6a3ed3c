// Starting ward in a lab node the way the lab does (`ip netns exec <ns> node … src/cli/main.ts run`), but
// with the bench's own config (mesh or plain passthrough), a raised open-files limit and optional node
// flags (--cpu-prof for the profile). The process is registered as node.ward, so Lab.destroy stops it.

import { spawnSync } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { type Lab, type LabNode, WardProcess } from '../../src/lab/lab.ts';
import { WARD_MAIN } from '../../src/lab/ward-entry.ts';
import { hardNofile, sleep, startIn, waitFor } from './exec.ts';

const _ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export type WardMode = 'mtls' | 'plain';

export interface WardOptions {
  readonly mode: WardMode;
  readonly workers: number;
  readonly nodeFlags?: readonly string[];
  /** Distinguishes config and log files of successive starts. */
  readonly tag: string;
}

/**
 * proxy.maxConnections that ward can back with descriptors here: ward refuses to start unless it can
 * raise RLIMIT_NOFILE to 2 per connection + 4,096 (src/proxy/rlimit.ts); the default is 100,000.
 */
export function wardMaxConns(): number {
  return Math.min(100_000, Math.floor((hardNofile() - 4096) / 2));
}

/** The node's config: the lab's mesh config for `mtls`; without identities, inventory, policy for `plain`. */
export function benchWardConfig(node: LabNode, mode: WardMode, workers: number): Record<string, unknown> {
  // Logging as ward's defaults have it (the lab also writes flow records to the log, for its tests):
  // an access line per connection, flow records in the ring only.
  const cfg = node.wardConfig({ proxy: { workers, maxConnections: wardMaxConns() }, log: { flows: false } });
  if (mode === 'plain') {
    delete cfg.svid;
    delete cfg.inventory;
    delete cfg.policy;
    delete cfg.mesh;
  }
  return cfg;
}

/** ward's listening ports (admin, metrics, readiness, the three captures): free before a start. */
const WARD_PORTS = [15000, 15001, 15006, 15008, 15020, 15021];

function portsInUse(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hltn'], { encoding: 'utf8' });
  const used = new Set(
    r.stdout
      .split('\n')
      .map((l) => {
        const local = l.trim().split(/\s+/)[3] ?? '';
        return Number(local.slice(local.lastIndexOf(':') + 1));
      })
      .filter((n) => Number.isInteger(n)),
  );
  return WARD_PORTS.filter((p) => used.has(p));
}

/** Starts ward, after its ports are free; one retry (a loaded machine can slow start-up past the timeout). */
export async function startBenchWard(node: LabNode, opts: WardOptions): Promise<WardProcess> {
  try {
    return await startOnce(node, opts, '');
  } catch (first) {
    await node.ward?.stop('SIGKILL', 5000);
    node.ward = null;
    const ss = spawnSync('ip', ['netns', 'exec', node.ns, 'ss', '-Htanp'], { encoding: 'utf8' }).stdout;
    const held = ss.split('\n').filter((l) => WARD_PORTS.some((p) => l.includes(`:${p} `)));
    process.stderr.write(
      `ward ${node.name} did not start (${(first as Error).message.split('\n').slice(0, 2).join(' ')}); sockets on ward ports: ${held.length} ${held.slice(0, 3).join(' | ')}; retrying\n`,
    );
    await sleep(5000);
    return startOnce(node, opts, '-retry');
  }
}

async function startOnce(node: LabNode, opts: WardOptions, suffix: string): Promise<WardProcess> {
  await waitFor(
    `ward ports free in ${node.ns} (${portsInUse(node.ns).join(', ')})`,
    () => portsInUse(node.ns).length === 0,
    90_000,
  );
  const lab: Lab = node.lab;
  opts = { ...opts, tag: `${opts.tag}${suffix}` };
  const configPath = join(lab.dir, `${node.name}-${opts.tag}.yaml`);
  writeFileSync(configPath, YAML.stringify(benchWardConfig(node, opts.mode, opts.workers)));
  const logPath = join(lab.dir, `${node.name}-${opts.tag}.log`);
  const errPath = join(lab.dir, `${node.name}-${opts.tag}.err`);
  const out = openSync(logPath, 'w');
  const err = openSync(errPath, 'w');
  const child = startIn(
    node.ns,
    [
      process.execPath,
      ...(opts.nodeFlags ?? []),
      '--disable-warning=ExperimentalWarning',
      WARD_MAIN,
      'run',
      '--config',
      configPath,
    ],
    ['ignore', out, err],
  );
  closeSync(out);
  closeSync(err);
  const ward = new WardProcess(node, child, logPath, errPath);
  configOf.set(ward, configPath);
  node.ward = ward;
  await ward.waitReady(120_000);
  return ward;
}

export async function startWards(lab: Lab, opts: WardOptions): Promise<WardProcess[]> {
  return Promise.all(lab.nodes.map((n) => startBenchWard(n, opts)));
}

/** Config file of each running bench ward, for cleaning up after one that had to be killed. */
const configOf = new WeakMap<WardProcess, string>();

/**
 * Stops the wards. A ward that does not exit within 15 s of SIGTERM is killed, and a killed ward leaves
 * its capture rules by design (docs/reliability.md), which would divert the next path's traffic to a
 * dead listener; so its rules are removed with `ward rules clean`, and the stall is reported on stderr.
 * (Seen intermittently after the smoke run's loads: the worker thread spins after the drain message;
 * not yet explained — see bench/README.md.)
 */
export async function stopWards(lab: Lab): Promise<void> {
  await Promise.all(
    lab.nodes.map(async (n) => {
      const w = n.ward;
      if (w === null) return;
      const code = await w.stop('SIGTERM', 15_000);
      if (code === 0) return;
      const cfg = configOf.get(w);
      process.stderr.write(
        `ward ${n.name} did not exit within 15 s of SIGTERM (exit ${code}); removing its rules\n`,
      );
      if (cfg !== undefined) {
        spawnSync(
          'ip',
          ['netns', 'exec', n.ns, process.execPath, WARD_MAIN, 'rules', 'clean', '--config', cfg],
          {
            stdio: 'ignore',
          },
        );
      }
    }),
  );
  for (const n of lab.nodes) n.ward = null;
}
