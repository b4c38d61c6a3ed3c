// The DaemonSet's init container: finds this node's pod CIDRs in the Kubernetes API and writes them as
// `WARD_CAPTURE_POD_CIDRS=…` for the ward container to source. Kubernetes' downward API cannot expose
// them. Cilium's cluster-pool IPAM keeps them in the CiliumNode (spec.ipam.podCIDRs); with
// `ipam.mode=kubernetes` (and other CNIs) they are the Node's spec.podCIDRs. Tried in that order, again
// every --interval until --timeout (a new node may get its CIDRs a little after the pod starts).
//
//   node src/init/pod-cidrs.ts --node NAME --out FILE [--api URL] [--token-file F] [--ca-file F]
//                              [--timeout 120s] [--interval 2s]
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent, fetch } from 'undici';
import { parseCidr } from '../net/address.ts';

const SA = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface PodCidrLookup {
  readonly api: string;
  readonly node: string;
  readonly token?: string;
  readonly ca?: string;
}

async function getJson(
  l: PodCidrLookup,
  path: string,
  dispatcher: Agent,
): Promise<Record<string, unknown> | null> {
  const res = await fetch(`${l.api.replace(/\/$/, '')}${path}`, {
    headers: { accept: 'application/json', ...(l.token ? { authorization: `Bearer ${l.token}` } : {}) },
    dispatcher,
  });
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as Record<string, unknown>;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
}

/** The node's pod CIDRs and where they came from; an empty list when neither object has any yet. */
export async function lookupPodCidrs(l: PodCidrLookup): Promise<{ cidrs: string[]; from: string }> {
  const dispatcher = new Agent({ connect: l.ca !== undefined ? { ca: l.ca } : {} });
  try {
    const name = encodeURIComponent(l.node);
    const cn = await getJson(l, `/apis/cilium.io/v2/ciliumnodes/${name}`, dispatcher);
    const ipam = (cn?.spec as { ipam?: { podCIDRs?: unknown } } | undefined)?.ipam;
    const fromCilium = strings(ipam?.podCIDRs);
    if (fromCilium.length > 0) return { cidrs: fromCilium, from: `CiliumNode ${l.node}` };
    const node = await getJson(l, `/api/v1/nodes/${name}`, dispatcher);
    if (node === null) throw new Error(`node ${l.node} not found`);
    const spec = node.spec as { podCIDRs?: unknown; podCIDR?: unknown } | undefined;
    const fromNode = strings(spec?.podCIDRs);
    if (fromNode.length === 0 && typeof spec?.podCIDR === 'string') fromNode.push(spec.podCIDR);
    return { cidrs: fromNode, from: `Node ${l.node}` };
  } finally {
    await dispatcher.close();
  }
}

function ms(text: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(text);
  if (m === null) throw new Error(`not a duration: ${text}`);
  return Number(m[1]) * ({ ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[m[2] ?? 's']!;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      node: { type: 'string' },
      out: { type: 'string' },
      api: { type: 'string' },
      'token-file': { type: 'string', default: `${SA}/token` },
      'ca-file': { type: 'string', default: `${SA}/ca.crt` },
      timeout: { type: 'string', default: '120s' },
      interval: { type: 'string', default: '2s' },
    },
    strict: true,
  });
  if (values.node === undefined || values.out === undefined) {
    process.stderr.write('usage: pod-cidrs.ts --node NAME --out FILE [--api URL]\n');
    return 2;
  }
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const api =
    values.api ??
    (host !== undefined
      ? `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`
      : undefined);
  if (api === undefined) {
    process.stderr.write('pod-cidrs: no --api and no KUBERNETES_SERVICE_HOST\n');
    return 2;
  }
  const readOpt = (f: string): string | undefined => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const lookup: PodCidrLookup = {
    api,
    node: values.node,
    token: readOpt(values['token-file']),
    ca: api.startsWith('https:') ? readOpt(values['ca-file']) : undefined,
  };
  const deadline = Date.now() + ms(values.timeout);
  for (;;) {
    let why: string;
    try {
      const { cidrs, from } = await lookupPodCidrs(lookup);
      for (const c of cidrs) parseCidr(c);
      if (cidrs.length > 0) {
        const tmp = `${values.out}.tmp`;
        writeFileSync(tmp, `WARD_CAPTURE_POD_CIDRS=${cidrs.join(',')}\n`);
        renameSync(tmp, values.out);
        process.stderr.write(`pod-cidrs: ${cidrs.join(',')} (from ${from})\n`);
        return 0;
      }
      why = `neither CiliumNode nor Node ${values.node} lists pod CIDRs yet`;
    } catch (err) {
      why = (err as Error).message;
    }
    if (Date.now() >= deadline) {
      process.stderr.write(`pod-cidrs: giving up: ${why}\n`);
      return 1;
    }
    process.stderr.write(`pod-cidrs: ${why}; retrying\n`);
    await new Promise((r) => setTimeout(r, ms(values.interval)));
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`pod-cidrs: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
