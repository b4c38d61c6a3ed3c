// `ward status`: a running ward's node summary, like `cilium status`, from the admin API's /status.
//   ward status [--verbose] [-o text|json] [--server URL]
// Exit 0 when healthy (ready, live, no problem), 1 when not, or when ward cannot be reached.
import type { NodeStatus, Readiness } from '../observe/node-status.ts';
import { DEFAULT_SERVER } from './observe-command.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = 'usage: ward status [--verbose] [-o text|json] [--server URL (default http://127.0.0.1:15000)]';

export type StatusReport = NodeStatus & {
  readonly readiness: Readiness;
  readonly problems: readonly string[];
  readonly healthy: boolean;
};

function isReport(v: unknown): v is StatusReport {
  return (
    typeof v === 'object' &&
    v !== null &&
    'node' in v &&
    'rules' in v &&
    'workers' in v &&
    'readiness' in v &&
    'problems' in v
  );
}

function ago(iso: string, now: number): string {
  return duration((now - Date.parse(iso)) / 1000);
}

export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86_400)}d`;
}

/** The text `ward status` prints (exported for tests). */
export function formatStatus(r: StatusReport, verbose: boolean, now = Date.now()): string {
  const rows: [string, string][] = [];
  const ok = (good: boolean) => (good ? 'OK' : 'FAILING');
  rows.push([
    'Ward',
    `${ok(r.healthy)}   node ${r.node}, ward ${r.version}, pid ${r.pid}, ${r.phase} for ${ago(r.startedAt, now)}`,
  ]);
  rows.push(['Readiness', r.readiness.ready ? 'Ready' : `Not ready (${r.readiness.missing.length} unmet)`]);
  rows.push([
    'Capture rules',
    !r.rules.managed
      ? 'not managed by ward (capture.install: false)'
      : `${ok(r.rules.installed)}   ${r.rules.installed ? 'installed' : 'NOT installed'} (${r.rules.backend ?? 'no backend'}, chain ${r.rules.chain})`,
  ]);
  rows.push([
    'Listeners',
    `${ok(r.listeners.bound)}   outbound ${r.listeners.outbound}, inbound ${r.listeners.inboundPlaintext}, HBONE ${r.listeners.inboundTunnel}`,
  ]);
  const ready = r.workers.filter((w) => w.state === 'ready').length;
  rows.push(['Workers', `${ready}/${r.workers.length} ready, ${r.workerRestarts} restarts`]);
  if (r.svid === null) {
    rows.push(['SVID source', 'none configured (authentication: required can never be met)']);
  } else {
    const s = r.svid;
    rows.push([
      'SVID source',
      `${s.sourceState === 'Available' ? 'OK' : 'STOPPED'}   ${s.kind}: ${s.sourceState} for ${ago(s.sourceSince, now)}${
        s.sourceReason === undefined || s.sourceState === 'Available' ? '' : ` (${s.sourceReason})`
      }`,
    ]);
    const soonest = [...s.identities].sort((a, b) => a.expiresInSeconds - b.expiresInSeconds)[0];
    rows.push([
      'Identities',
      `${s.identities.length} SVIDs held (${s.storeState})${
        soonest === undefined
          ? ''
          : `, soonest expiry in ${duration(soonest.expiresInSeconds)} (${soonest.spiffeId})`
      }; ${s.stats.rotations} loaded/rotated, ${s.stats.expired} expired unreplaced`,
    ]);
    const missing = r.localWorkloads.filter((w) => w.svid === 'missing').length;
    rows.push([
      'Local workloads',
      `${r.localWorkloads.length} on this node, ${missing} without a valid SVID`,
    ]);
  }
  if (r.control === null) {
    rows.push(['Policy', 'none configured (nothing enforced)']);
  } else {
    const c = r.control;
    rows.push([
      'Policy',
      `${c.policySource}: ${c.loaded ? `revision ${c.revision}, ${c.policies} valid, ${c.rejected} rejected, ${c.warnings} warnings` : 'not loaded'}`,
    ]);
    rows.push([
      'Inventory',
      `${c.inventorySource}: ${c.workloads} workloads, last change ${ago(c.lastChange, now)} ago`,
    ]);
  }
  rows.push([
    'Connections',
    `${r.connections.active} active; opened ${r.connections.opened.outbound} outbound, ${r.connections.opened.inbound} inbound; ${r.connections.tunnels} tunnels, ${r.connections.streams} streams`,
  ]);
  rows.push([
    'Liveness',
    r.liveness.live
      ? `OK   max loop lag ${r.liveness.maxLagMs} ms`
      : `FAILING   loop stalled ${r.liveness.maxLagMs} ms`,
  ]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const out = rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`);
  if (verbose) {
    out.push('', 'Endpoints:');
    out.push(
      `  admin ${r.endpoints.admin ?? 'off'}, metrics ${r.endpoints.metrics ?? 'off'}, readiness ${r.endpoints.readiness ?? 'off'}`,
    );
    out.push('Workers:');
    for (const w of r.workers) {
      out.push(
        `  ${w.index}: ${w.state}, thread ${w.threadId ?? '-'}, ${w.activeConnections} connections, ${w.restarts} restarts`,
      );
    }
    if (r.svid !== null) {
      out.push('SVIDs:');
      for (const i of r.svid.identities) {
        out.push(
          `  ${i.spiffeId}  serial ${i.serial}  expires ${i.notAfter} (in ${duration(i.expiresInSeconds)})`,
        );
      }
    }
    if (r.localWorkloads.length > 0) {
      out.push('Local workloads:');
      for (const w of r.localWorkloads) out.push(`  ${w.namespace}/${w.name}  ${w.spiffeId}  ${w.svid}`);
    }
  }
  if (r.problems.length > 0) {
    out.push('', 'Problems:');
    for (const p of r.problems) out.push(`  - ${p}`);
  }
  return `${out.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    allowPositionals: true,
    options: {
      verbose: { type: 'boolean', short: 'v' },
      output: { type: 'string', short: 'o', default: 'text' },
      server: { type: 'string', default: DEFAULT_SERVER },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n${USAGE}`);
  if (values.output !== 'text' && values.output !== 'json') throw new UsageError('-o must be text or json');
  let url: URL;
  try {
    url = new URL('/status', values.server);
  } catch {
    throw new UsageError(`--server is not a URL: ${values.server}`);
  }
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) {
      process.stderr.write(`ward status: ${res.status} ${(await res.text()).trim()}\n`);
      return 1;
    }
    body = await res.json();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    process.stderr.write(
      `ward status: cannot reach ward's admin API at ${values.server} (${cause?.code ?? (err as Error).message}): is ward running?\n`,
    );
    return 1;
  }
  if (!isReport(body)) {
    process.stderr.write('ward status: the admin API answered something that is not a status\n');
    return 1;
  }
  process.stdout.write(
    values.output === 'json'
      ? `${JSON.stringify(body, null, 2)}\n`
      : formatStatus(body, values.verbose === true),
  );
  return body.healthy ? 0 : 1;
}
