// `ward svid`: check certificates and look at SVID sources.
//   ward svid verify --bundle TD=FILE [--bundle …] [--at RFC3339] [-o json] CHAIN.pem
//       exit 0 valid, 1 rejected, 2 usage; JSON {"valid","spiffeId","error":{"code","message"}|null}
//   ward svid list --socket PATH [--delegated|--workload] [--selector T:V]… [--timeout 5s] [-o json]
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { type BundleSet, bundleFromText, type TrustBundle } from '../svid/bundle.ts';
import { DelegatedIdentitySource } from '../svid/delegated-identity-client.ts';
import { isSvidError } from '../svid/errors.ts';
import type { SvidSnapshot, SvidSource } from '../svid/source.ts';
import { parseTrustDomain } from '../svid/spiffe-id.ts';
import { verifyPeerChainBytes } from '../svid/verify.ts';
import { WorkloadApiSource } from '../svid/workload-api-client.ts';
import { parseDuration } from './ca-command.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = `usage:
  ward svid verify --bundle TRUST_DOMAIN=BUNDLE_FILE [--bundle ...] [--at RFC3339_TIME] [-o json] CHAIN.pem
  ward svid list --socket PATH [--delegated|--workload] [--selector TYPE:VALUE]... [--timeout 5s] [-o json]`;

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

function output(values: { output?: string }): 'text' | 'json' {
  if (values.output === undefined || values.output === 'text') return 'text';
  if (values.output === 'json') return 'json';
  throw new UsageError(`-o takes json or text (got ${JSON.stringify(values.output)})`);
}

async function verify(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    options: {
      bundle: { type: 'string', multiple: true, default: [] },
      at: { type: 'string' },
      output: { type: 'string', short: 'o' },
    },
    allowPositionals: true,
    strict: true,
  });
  const format = output(values);
  if (positionals.length !== 1) throw new UsageError(`expected exactly one CHAIN.pem\n${USAGE}`);
  if (values.bundle.length === 0)
    throw new UsageError(`at least one --bundle TRUST_DOMAIN=FILE is needed\n${USAGE}`);
  const bundles = new Map<string, TrustBundle>();
  for (const spec of values.bundle) {
    const eq = spec.indexOf('=');
    if (eq <= 0) throw new UsageError(`--bundle takes TRUST_DOMAIN=FILE (got ${JSON.stringify(spec)})`);
    let td: string;
    let bundle: TrustBundle;
    try {
      td = parseTrustDomain(spec.slice(0, eq));
      bundle = bundleFromText(td, readInput(spec.slice(eq + 1), 'bundle').toString('utf8'));
    } catch (err) {
      if (isSvidError(err)) throw new UsageError(`--bundle ${spec}: ${err.code}: ${err.message}`);
      throw err;
    }
    if (bundles.has(td)) throw new UsageError(`--bundle given twice for trust domain ${td}`);
    bundles.set(td, bundle);
  }
  let at: number | undefined;
  if (values.at !== undefined) {
    at = Date.parse(values.at);
    if (!RFC3339.test(values.at) || Number.isNaN(at)) {
      throw new UsageError(
        `--at must be an RFC 3339 time like 2025-01-02T03:04:05Z (got ${JSON.stringify(values.at)})`,
      );
    }
  }
  const chain = readInput(positionals[0] as string, 'chain');
  return report(format, () => verifyPeerChainBytes(chain, bundles as BundleSet, { at }).spiffeId);
}

function report(format: 'text' | 'json', run: () => string): number {
  let result: { valid: boolean; spiffeId: string | null; error: { code: string; message: string } | null };
  try {
    result = { valid: true, spiffeId: run(), error: null };
  } catch (err) {
    if (!isSvidError(err)) throw err;
    result = { valid: false, spiffeId: null, error: { code: err.code, message: err.message } };
  }
  if (format === 'json') process.stdout.write(`${JSON.stringify(result)}\n`);
  else if (result.valid) process.stdout.write(`${result.spiffeId}\n`);
  else process.stdout.write(`${result.error?.code}: ${result.error?.message}\n`);
  return result.valid ? 0 : 1;
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: {
      socket: { type: 'string' },
      delegated: { type: 'boolean', default: false },
      workload: { type: 'boolean', default: false },
      selector: { type: 'string', multiple: true, default: [] },
      timeout: { type: 'string', default: '5s' },
      output: { type: 'string', short: 'o' },
    },
    strict: true,
  });
  const format = output(values);
  if (values.socket === undefined) throw new UsageError(`--socket is required\n${USAGE}`);
  if (values.delegated && values.workload)
    throw new UsageError('--delegated and --workload exclude each other');
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  const failures: string[] = [];
  const log = pino(
    { level: 'warn' },
    {
      write(line: string) {
        const l = JSON.parse(line) as { msg?: string };
        if (l.msg !== undefined) failures.push(l.msg);
      },
    },
  );
  let source: SvidSource;
  try {
    source = values.workload
      ? new WorkloadApiSource({ socket: values.socket, log })
      : new DelegatedIdentitySource({
          socket: values.socket,
          selectors: values.selector.length > 0 ? values.selector : undefined,
          log,
        });
  } catch (err) {
    if (isSvidError(err) || err instanceof TypeError) throw new UsageError((err as Error).message);
    throw err;
  }
  const snapshot = await new Promise<SvidSnapshot | null | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(source.current()), timeoutMs);
    source.subscribe((s) => {
      clearTimeout(timer);
      resolve(s);
    });
    source.onStateChange((state) => {
      if (state === 'Unavailable' && failures.length > 0 && source.current() === undefined) {
        clearTimeout(timer);
        resolve(undefined);
      }
    });
    source.start();
  });
  await source.close();
  if (snapshot === undefined || snapshot === null) {
    const why =
      failures[0] ??
      (snapshot === null ? 'the source withdrew all SVIDs' : `no answer within ${values.timeout}`);
    if (format === 'json') process.stdout.write(`${JSON.stringify({ ok: false, error: why })}\n`);
    else process.stderr.write(`ward svid list: ${why}\n`);
    return 1;
  }
  const rows = snapshot.svids.map((s) => ({
    spiffeId: s.spiffeId,
    serial: s.serial,
    notAfter: new Date(s.notAfter).toISOString(),
    hint: s.hint,
  }));
  const bundles = [...snapshot.bundles.values()].map((b) => ({
    trustDomain: b.trustDomain,
    authorities: b.authorities.map((a) => ({
      serial: a.serial,
      notAfter: new Date(a.notAfter).toISOString(),
    })),
  }));
  if (format === 'json') {
    process.stdout.write(
      `${JSON.stringify({ ok: true, svids: rows, bundles, federatesWith: snapshot.federatesWith })}\n`,
    );
    return 0;
  }
  const w = Math.max(10, ...rows.map((r) => r.spiffeId.length));
  process.stdout.write(`${'SPIFFE ID'.padEnd(w)}  ${'SERIAL'.padEnd(32)}  EXPIRES\n`);
  for (const r of rows)
    process.stdout.write(`${r.spiffeId.padEnd(w)}  ${r.serial.padEnd(32)}  ${r.notAfter}\n`);
  for (const b of bundles) {
    process.stdout.write(
      `bundle ${b.trustDomain}: ${b.authorities.map((a) => `${a.serial} (expires ${a.notAfter})`).join(', ')}\n`,
    );
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'verify':
      return verify(rest);
    case 'list':
      return list(rest);
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return sub === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown subcommand '${sub}'\n${USAGE}`);
  }
}
