// `ward observe`: flow records from a running ward's admin API (/flows), as `hubble observe` prints them.
//   ward observe [--from-label k=v]... [--to-label k=v]... [--from-pod [ns/]pod] [--to-pod [ns/]pod]
//                [--verdict FORWARDED|DROPPED] [--follow] [--last N] [-o compact|json] [--server URL]

import { type FlowRecord, formatCompact } from '../observe/flow.ts';
import {
  checkFlowFilter,
  type FlowFilter,
  FlowFilterError,
  flowFilterQuery,
} from '../observe/flow-filter.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = `usage: ward observe [--from-label K=V]... [--to-label K=V]... [--from-pod [NS/]POD] [--to-pod [NS/]POD]
                    [--verdict FORWARDED|DROPPED] [--follow] [--last N] [-o compact|json]
                    [--server URL (default http://127.0.0.1:15000)]`;

export const DEFAULT_SERVER = 'http://127.0.0.1:15000';
/** Without --last: the last 20 flows (as hubble observe), or none before the new ones with --follow. */
const DEFAULT_LAST = 20;

function isFlow(v: unknown): v is FlowRecord {
  return typeof v === 'object' && v !== null && 'verdict' in v && 'IP' in v && 'l4' in v && 'source' in v;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    allowPositionals: true,
    options: {
      'from-label': { type: 'string', multiple: true },
      'to-label': { type: 'string', multiple: true },
      'from-pod': { type: 'string' },
      'to-pod': { type: 'string' },
      verdict: { type: 'string' },
      follow: { type: 'boolean', short: 'f' },
      last: { type: 'string' },
      output: { type: 'string', short: 'o', default: 'compact' },
      server: { type: 'string', default: DEFAULT_SERVER },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n${USAGE}`);
  const output = values.output;
  if (output !== 'compact' && output !== 'json')
    throw new UsageError(`-o must be compact or json (got ${output})`);
  const follow = values.follow === true;
  let last = follow ? 0 : DEFAULT_LAST;
  if (values.last !== undefined) {
    last = Number(values.last);
    if (!Number.isInteger(last) || last < 0) throw new UsageError(`--last must be a non-negative integer`);
  }
  let filter: FlowFilter;
  try {
    filter = checkFlowFilter({
      fromLabels: values['from-label'] ?? [],
      toLabels: values['to-label'] ?? [],
      fromPod: values['from-pod'],
      toPod: values['to-pod'],
      verdict: values.verdict as FlowFilter['verdict'],
    });
  } catch (err) {
    if (err instanceof FlowFilterError) throw new UsageError(err.message.replaceAll('_', '-'));
    throw err;
  }
  const query = flowFilterQuery(filter);
  query.set('last', String(last));
  if (follow) query.set('follow', 'true');
  let url: URL;
  try {
    url = new URL(`/flows?${query}`, values.server);
  } catch {
    throw new UsageError(`--server is not a URL: ${values.server}`);
  }

  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return 0;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      process.stderr.write(
        `ward observe: cannot reach the admin API at ${values.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}\n`,
      );
      return 1;
    }
    if (!res.ok) {
      process.stderr.write(`ward observe: ${res.status} ${(await res.text()).trim()}\n`);
      return res.status === 400 ? 2 : 1;
    }
    if (res.body === null) return 0;
    const decoder = new TextDecoder();
    let buf = '';
    const emit = (line: string) => {
      if (line.trim() === '') return;
      const v: unknown = JSON.parse(line);
      if (!isFlow(v)) return;
      process.stdout.write(`${output === 'json' ? JSON.stringify(v) : formatCompact(v)}\n`);
    };
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk, { stream: true });
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          emit(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
    emit(buf);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
