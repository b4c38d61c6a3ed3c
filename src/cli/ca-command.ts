// `ward ca`: the development CA.
//   ward ca init  --dir DIR --trust-domain TD [--ttl 87600h] [--force]
//   ward ca serve --dir DIR --socket PATH [--ttl 1h] [--id ID]… [--workload-id ID]… [--selector T:V]…
//                 [--identities FILE] [--federate TD=FILE]… [--delegate authorized|unauthorized|no-identity]
//   ward ca issue --dir DIR --id ID --out DIR [--name NAME] [--ttl 1h]
import { chmodSync, mkdirSync, readFileSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { initLogger, type LogLevel } from '../log.ts';
import { bundleFromText, type TrustBundle } from '../svid/bundle.ts';
import { type CaEntry, type CaRegistry, type DelegateMode, DevCaServer } from '../svid/ca-server.ts';
import { derToPem } from '../svid/certificate.ts';
import { CA_BUNDLE_FILE, CA_CERT_FILE, DEFAULT_SVID_TTL_MS, initCaDir, loadCaDir } from '../svid/dev-ca.ts';
import { isSvidError } from '../svid/errors.ts';
import { parseSpiffeId, parseTrustDomain } from '../svid/spiffe-id.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = `usage:
  ward ca init  --dir DIR --trust-domain TD [--ttl 87600h] [--force]
  ward ca serve --dir DIR --socket PATH [--ttl 1h] [--id SPIFFE_ID]... [--workload-id SPIFFE_ID]...
                [--selector TYPE:VALUE]... [--identities FILE] [--federate TD=FILE]...
                [--delegate authorized|unauthorized|no-identity]
  ward ca issue --dir DIR --id SPIFFE_ID --out DIR [--name NAME] [--ttl 1h]`;

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string, flag: string): number {
  const m = DURATION.exec(text);
  if (m?.[1] === undefined || m[2] === undefined || Number(m[1]) <= 0) {
    throw new UsageError(`${flag} must be a duration like 90s, 10m or 1h (got ${JSON.stringify(text)})`);
  }
  return Number(m[1]) * (UNIT[m[2]] ?? 1);
}

function required(v: string | undefined, flag: string): string {
  if (v === undefined || v === '') throw new UsageError(`${flag} is required\n${USAGE}`);
  return v;
}

const DEFAULT_SELECTOR = 'cilium:mutual-auth';

/** The --identities file: who the CA issues for, the delegate mode, and federated bundle files. */
const identitiesFileSchema = z.strictObject({
  delegate: z.enum(['authorized', 'unauthorized', 'no-identity']).default('authorized'),
  identities: z
    .array(
      z.strictObject({
        id: z.string(),
        selectors: z
          .array(z.string().regex(/^[^:]+:.+$/, 'selectors are TYPE:VALUE'))
          .default([DEFAULT_SELECTOR]),
        workload: z.boolean().default(false),
      }),
    )
    .default([]),
  federation: z.record(z.string(), z.string()).default({}),
});

interface Flags {
  ids: string[];
  workloadIds: string[];
  selectors: string[];
  federate: string[];
  delegate: DelegateMode;
  identitiesFile: string | undefined;
}

function loadFederated(spec: Record<string, string>): Map<string, TrustBundle> {
  const out = new Map<string, TrustBundle>();
  for (const [tdText, path] of Object.entries(spec)) {
    const td = parseTrustDomain(tdText);
    const bundle = bundleFromText(td, readFileSync(path, 'utf8'));
    if (bundle.authorities.length === 0)
      throw new UsageError(`federated bundle ${path} holds no CA certificate`);
    out.set(td, bundle);
  }
  return out;
}

/** Flags plus the identities file (re-read on change) → the registry the server issues for. */
function buildRegistry(flags: Flags): CaRegistry {
  const selectors = flags.selectors.length > 0 ? flags.selectors : [DEFAULT_SELECTOR];
  const entries: CaEntry[] = [
    ...flags.ids.map((id) => ({ spiffeId: id, selectors, workload: false })),
    ...flags.workloadIds.map((id) => ({ spiffeId: id, selectors, workload: true })),
  ];
  const federation: Record<string, string> = {};
  for (const f of flags.federate) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`--federate takes TRUST_DOMAIN=FILE (got ${JSON.stringify(f)})`);
    federation[f.slice(0, eq)] = f.slice(eq + 1);
  }
  let delegate = flags.delegate;
  if (flags.identitiesFile !== undefined) {
    const doc = identitiesFileSchema.safeParse(YAML.parse(readFileSync(flags.identitiesFile, 'utf8')) ?? {});
    if (!doc.success) {
      throw new UsageError(
        `${flags.identitiesFile}: ${doc.error.issues.map((i) => `${i.path.join('.') || '(document)'}: ${i.message}`).join('; ')}`,
      );
    }
    for (const e of doc.data.identities)
      entries.push({ spiffeId: e.id, selectors: e.selectors, workload: e.workload });
    Object.assign(federation, doc.data.federation);
    delegate = doc.data.delegate;
  }
  for (const e of entries) parseSpiffeId(e.spiffeId);
  return { entries, delegate, federated: loadFederated(federation) };
}

async function init(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: {
      dir: { type: 'string' },
      'trust-domain': { type: 'string' },
      ttl: { type: 'string' },
      force: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const dir = required(values.dir, '--dir');
  const td = parseTrustDomain(required(values['trust-domain'], '--trust-domain'));
  const ca = await initCaDir(dir, td, {
    ttlMs: values.ttl === undefined ? undefined : parseDuration(values.ttl, '--ttl'),
    force: values.force,
  });
  process.stdout.write(
    `created the CA of ${ca.trustDomain} in ${dir}: ${CA_CERT_FILE}, ca.key.pem (0600), ${CA_BUNDLE_FILE}\n` +
      `serial ${ca.certificate.serial}, expires ${new Date(ca.certificate.notAfter).toISOString()}\n`,
  );
  return 0;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: {
      dir: { type: 'string' },
      socket: { type: 'string' },
      ttl: { type: 'string' },
      id: { type: 'string', multiple: true, default: [] },
      'workload-id': { type: 'string', multiple: true, default: [] },
      selector: { type: 'string', multiple: true, default: [] },
      identities: { type: 'string' },
      federate: { type: 'string', multiple: true, default: [] },
      delegate: { type: 'string', default: 'authorized' },
    },
    strict: true,
  });
  const dir = required(values.dir, '--dir');
  const socketPath = required(values.socket, '--socket');
  const ttlMs = values.ttl === undefined ? DEFAULT_SVID_TTL_MS : parseDuration(values.ttl, '--ttl');
  if (!['authorized', 'unauthorized', 'no-identity'].includes(values.delegate)) {
    throw new UsageError('--delegate is authorized, unauthorized or no-identity');
  }
  const flags: Flags = {
    ids: values.id,
    workloadIds: values['workload-id'],
    selectors: values.selector,
    federate: values.federate,
    delegate: values.delegate as DelegateMode,
    identitiesFile: values.identities,
  };
  const log = initLogger((process.env.WARD_LOG_LEVEL as LogLevel | undefined) ?? 'info').child({
    component: 'ca',
  });
  const ca = loadCaDir(dir);
  const server = new DevCaServer({ ca, socketPath, ttlMs, registry: buildRegistry(flags), log });
  await server.start();
  const watched = [flags.identitiesFile, ...flags.federate.map((f) => f.slice(f.indexOf('=') + 1))].filter(
    (f): f is string => f !== undefined,
  );
  const reload = (): void => {
    try {
      server.update(buildRegistry(flags)).then(
        () => log.info('registry reloaded'),
        (err: unknown) => log.warn(`keeping the previous registry: ${(err as Error).message}`),
      );
    } catch (err) {
      log.warn(
        { code: isSvidError(err) ? err.code : 'CLI_USAGE' },
        `keeping the previous registry: ${(err as Error).message}`,
      );
    }
  };
  for (const f of watched) watchFile(f, { interval: 500 }, reload);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  for (const f of watched) unwatchFile(f);
  await server.close();
  log.info('stopped');
  return 0;
}

async function issue(argv: string[]): Promise<number> {
  const { values } = parseCli({
    args: argv,
    options: {
      dir: { type: 'string' },
      id: { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      ttl: { type: 'string' },
    },
    strict: true,
  });
  const ca = loadCaDir(required(values.dir, '--dir'));
  const id = parseSpiffeId(required(values.id, '--id')).id;
  const out = required(values.out, '--out');
  const name = values.name ?? id.slice(id.lastIndexOf('/') + 1);
  if (!/^[A-Za-z0-9._-]+$/.test(name))
    throw new UsageError(`--name must be a plain file name (got ${JSON.stringify(name)})`);
  const ttlMs = values.ttl === undefined ? DEFAULT_SVID_TTL_MS : parseDuration(values.ttl, '--ttl');
  const svid = await ca.issue(id, ttlMs);
  mkdirSync(out, { recursive: true });
  const certPath = join(out, `${name}.svid.pem`);
  const keyPath = join(out, `${name}.key.pem`);
  writeFileSync(certPath, svid.chain.map((d) => derToPem(d)).join(''));
  writeFileSync(keyPath, derToPem(svid.key, 'PRIVATE KEY'), { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(join(out, `${ca.trustDomain}.bundle.pem`), ca.bundlePem());
  process.stdout.write(
    `${id} serial ${svid.serial} expires ${new Date(svid.notAfter).toISOString()}\n  ${certPath}\n  ${keyPath}\n`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    switch (sub) {
      case 'init':
        return await init(rest);
      case 'serve':
        return await serve(rest);
      case 'issue':
        return await issue(rest);
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown subcommand '${sub}'\n${USAGE}`);
    }
  } catch (err) {
    if (isSvidError(err)) {
      process.stderr.write(`ward ca ${sub}: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
