// `ward policy validate PATH…` and `ward policy trace …`: offline, no cluster needed.
import { z } from 'zod';
import { assignIdentities } from '../inventory/identity.ts';
import { worldPeer } from '../inventory/inventory.ts';
import { familyOf, normaliseIp } from '../net/address.ts';
import { formatIssue, PolicyError } from '../policy/errors.ts';
import {
  compileSnapshot,
  decide,
  loadManifests,
  type PolicyPeer,
  podIdentityLabels,
  traceJson,
  traceText,
} from '../policy/index.ts';
import { parseCli, UsageError } from './usage.ts';

const USAGE = `usage:
  ward policy validate PATH…
  ward policy trace --policy PATH… [--namespace NAME=k1=v1,k2=v2 …] --from WORKLOAD --to WORKLOAD
                    --dport N [--protocol TCP|UDP] [--cluster NAME] [-o json]

  WORKLOAD is JSON: {"namespace": "default", "labels": {"app": "x"}, "serviceAccount": "default", "ip": "10.0.0.1"};
  an object with only "ip" is outside the cluster.`;

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'validate') return validate(rest);
  if (sub === 'trace') return trace(rest);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return sub === undefined ? 2 : 0;
  }
  throw new UsageError(`unknown subcommand '${sub}'\n${USAGE}`);
}

async function validate(argv: string[]): Promise<number> {
  const { positionals } = parseCli({ args: argv, allowPositionals: true, options: {} });
  if (positionals.length === 0) throw new UsageError(`validate needs at least one PATH\n${USAGE}`);
  let parsed: Awaited<ReturnType<typeof loadManifests>>;
  try {
    parsed = await loadManifests(positionals);
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`ward policy: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  for (const i of parsed.issues) process.stdout.write(`${formatIssue(i)}\n`);
  const errors = parsed.issues.filter((i) => i.severity === 'error').length;
  process.stdout.write(
    `${parsed.policies.length} valid ${parsed.policies.length === 1 ? 'policy' : 'policies'}, ${errors} ${errors === 1 ? 'error' : 'errors'}\n`,
  );
  return errors > 0 ? 1 : 0;
}

const workloadSchema = z.strictObject({
  namespace: z.string().min(1).optional(),
  labels: z.record(z.string(), z.string()).optional(),
  serviceAccount: z.string().min(1).optional(),
  ip: z
    .string()
    .refine((v) => familyOf(v) !== undefined, { message: 'must be an IPv4 or IPv6 address' })
    .optional(),
});
type WorkloadArg = z.infer<typeof workloadSchema>;

function parseWorkload(flag: string, text: string): WorkloadArg {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag}: not JSON: ${(err as Error).message}`);
  }
  const r = workloadSchema.safeParse(raw);
  if (!r.success) {
    throw new UsageError(
      `${flag}: ${r.error.issues.map((i) => `${i.path.join('.') || 'WORKLOAD'}: ${i.message}`).join('; ')}`,
    );
  }
  const w = r.data;
  if (
    w.namespace === undefined &&
    w.labels === undefined &&
    w.serviceAccount === undefined &&
    w.ip === undefined
  ) {
    throw new UsageError(`${flag}: a workload needs a namespace and labels, or an ip`);
  }
  return w;
}

function isExternal(w: WorkloadArg): boolean {
  return (
    w.ip !== undefined &&
    w.namespace === undefined &&
    w.labels === undefined &&
    w.serviceAccount === undefined
  );
}

function parseNamespaceFlag(v: string): [string, Record<string, string>] {
  const eq = v.indexOf('=');
  const name = eq < 0 ? v : v.slice(0, eq);
  if (name === '') throw new UsageError(`--namespace ${v}: expected NAME=k1=v1,k2=v2`);
  const labels: Record<string, string> = {};
  if (eq >= 0 && v.slice(eq + 1) !== '') {
    for (const pair of v.slice(eq + 1).split(',')) {
      const i = pair.indexOf('=');
      if (i <= 0) throw new UsageError(`--namespace ${v}: label "${pair}" is not k=v`);
      labels[pair.slice(0, i)] = pair.slice(i + 1);
    }
  }
  return [name, labels];
}

async function trace(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli({
    args: argv,
    allowPositionals: true,
    options: {
      policy: { type: 'string', multiple: true },
      namespace: { type: 'string', multiple: true },
      from: { type: 'string' },
      to: { type: 'string' },
      dport: { type: 'string' },
      protocol: { type: 'string', default: 'TCP' },
      cluster: { type: 'string', default: 'default' },
      output: { type: 'string', short: 'o', default: 'text' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'\n${USAGE}`);
  const policyPaths = values.policy ?? [];
  if (policyPaths.length === 0) throw new UsageError(`trace needs --policy PATH\n${USAGE}`);
  if (values.from === undefined || values.to === undefined)
    throw new UsageError(`trace needs --from and --to\n${USAGE}`);
  if (
    values.dport === undefined ||
    !/^\d+$/.test(values.dport) ||
    Number(values.dport) < 1 ||
    Number(values.dport) > 65535
  ) {
    throw new UsageError('--dport must be a port number 1-65535');
  }
  const protocol = values.protocol.toUpperCase();
  if (protocol !== 'TCP' && protocol !== 'UDP')
    throw new UsageError(`--protocol must be TCP or UDP (got ${values.protocol})`);
  if (values.output !== 'json' && values.output !== 'text')
    throw new UsageError(`-o must be json or text (got ${values.output})`);
  const namespaces = new Map<string, Record<string, string>>();
  for (const n of values.namespace ?? []) {
    const [name, labels] = parseNamespaceFlag(n);
    namespaces.set(name, labels);
  }
  const from = parseWorkload('--from', values.from);
  const to = parseWorkload('--to', values.to);
  let parsed: Awaited<ReturnType<typeof loadManifests>>;
  try {
    parsed = await loadManifests(policyPaths, { clusterName: values.cluster });
  } catch (err) {
    if (err instanceof PolicyError) {
      process.stderr.write(`ward policy: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  for (const i of parsed.issues) process.stderr.write(`${formatIssue(i)}\n`);
  const snapshot = compileSnapshot(parsed.policies, { clusterName: values.cluster, issues: parsed.issues });
  const toPeer = (w: WorkloadArg): PolicyPeer => {
    if (isExternal(w)) return worldPeer(normaliseIp(w.ip!));
    const namespace = w.namespace ?? 'default';
    const labels = podIdentityLabels({
      namespace,
      labels: w.labels ?? {},
      serviceAccount: w.serviceAccount,
      namespaceLabels: namespaces.get(namespace),
      cluster: values.cluster,
    });
    const identity = assignIdentities([labels], 0).get(labels.canonical)!;
    return { kind: 'pod', identity, labels, ip: w.ip };
  };
  const src = toPeer(from);
  const dst = toPeer(to);
  const verdict = decide({ src, dst, dport: Number(values.dport), protocol }, snapshot);
  if (values.output === 'json') process.stdout.write(`${JSON.stringify(traceJson(verdict))}\n`);
  else {
    const describe = (p: PolicyPeer): string =>
      p.kind === 'world'
        ? `${p.ip} (reserved:world)`
        : p.labels.labels.map((l) => `${l.source}:${l.key}=${l.value}`).join(', ');
    process.stdout.write(
      traceText(verdict, { from: describe(src), to: describe(dst), port: `${values.dport}/${protocol}` }),
    );
  }
  return 0;
}
