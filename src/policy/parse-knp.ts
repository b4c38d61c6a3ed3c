// networking.k8s.io/v1 NetworkPolicy → rules. The schema mirrors K:staging/src/k8s.io/api/networking/v1/types.go
// with the API server's checks (K:pkg/apis/networking/validation/validation.go); the translation follows
// C:pkg/k8s/network_policy.go ParseNetworkPolicy (reference §2.5, §9).
import { z } from 'zod';
import { type Cidr, parseCidr } from '../net/address.ts';
import { portNameError, validateLabelSelector, validateMetadata } from './k8s-validation.ts';
import {
  POD_NAMESPACE_LABEL,
  POD_NAMESPACE_META_LABELS,
  POLICY_LABEL_CLUSTER,
  SOURCE_K8S,
} from './labels.ts';
import type { CidrMatch, Element, L3, Origin, Policy, PolicyRef, PortMatch, Rule, Section } from './model.ts';
import { policyKey } from './model.ts';
import { joinPath, type SchemaIssue } from './openapi-validate.ts';
import type { ParseResult } from './parse-cilium.ts';
import { compileLabelSelector, makeSelector, type RawLabelSelector, type Requirement } from './selector.ts';

const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).nullish(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string(),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string()).nullish(),
      }),
    )
    .nullish(),
});

const ipBlock = z.strictObject({ cidr: z.string(), except: z.array(z.string()).nullish() });

const peer = z.strictObject({
  podSelector: labelSelector.nullish(),
  namespaceSelector: labelSelector.nullish(),
  ipBlock: ipBlock.nullish(),
});

const port = z.strictObject({
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
  port: z.union([z.number().int(), z.string()]).nullish(),
  endPort: z.number().int().nullish(),
});

const ingressRule = z.strictObject({ from: z.array(peer).nullish(), ports: z.array(port).nullish() });
const egressRule = z.strictObject({ to: z.array(peer).nullish(), ports: z.array(port).nullish() });

const networkPolicy = z.strictObject({
  apiVersion: z.literal('networking.k8s.io/v1'),
  kind: z.literal('NetworkPolicy'),
  metadata: z.record(z.string(), z.unknown()),
  spec: z.strictObject({
    podSelector: labelSelector,
    policyTypes: z.array(z.enum(['Ingress', 'Egress'])).nullish(),
    ingress: z.array(ingressRule).nullish(),
    egress: z.array(egressRule).nullish(),
  }),
  status: z.unknown().optional(),
});

type KnpPeer = z.infer<typeof peer>;
type KnpPort = z.infer<typeof port>;

function zodPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out = joinPath(out, typeof p === 'number' ? p : String(p));
  return out;
}

export interface KnpContext {
  readonly clusterName: string;
}

export function parseNetworkPolicy(
  doc: unknown,
  origin: Origin,
  defaultNamespace: string,
  opts: KnpContext,
): ParseResult {
  const errors: SchemaIssue[] = [];
  const warnings: SchemaIssue[] = [];
  const parsed = networkPolicy.safeParse(doc);
  const meta = (doc as { metadata?: unknown }).metadata;
  validateMetadata(meta, true, errors);
  if (!parsed.success) {
    for (const i of parsed.error.issues) errors.push({ path: zodPath(i.path), message: i.message });
    return { policy: undefined, errors, warnings };
  }
  const np = parsed.data;
  const m = np.metadata as { name?: unknown; namespace?: unknown };
  const name = typeof m.name === 'string' ? m.name : '';
  const namespace = typeof m.namespace === 'string' && m.namespace !== '' ? m.namespace : defaultNamespace;
  const ref: PolicyRef = Object.freeze({
    ...origin,
    kind: 'NetworkPolicy',
    namespace,
    name,
    key: policyKey('NetworkPolicy', namespace, name),
  });
  const spec = np.spec;
  validateLabelSelector(spec.podSelector as never, 'spec.podSelector', errors, false);
  const types = spec.policyTypes ?? [];
  if (new Set(types).size !== types.length)
    errors.push({ path: 'spec.policyTypes', message: 'duplicate value' });
  const ingress = spec.ingress ?? [];
  const egress = spec.egress ?? [];
  const elements: Record<'ingress' | 'egress', Element[]> = { ingress: [], egress: [] };
  const ctx = { namespace, errors, clusterName: opts.clusterName };
  ingress.forEach((r, i) => {
    elements.ingress.push(element(ctx, ref, 'ingress', `spec.ingress[${i}]`, r.from, 'from', r.ports));
  });
  egress.forEach((r, i) => {
    elements.egress.push(element(ctx, ref, 'egress', `spec.egress[${i}]`, r.to, 'to', r.ports));
  });
  if (errors.length > 0) return { policy: undefined, errors, warnings };
  // §9.2 as Cilium translates it: ingress is isolated when it has rules or when Ingress ∈ policyTypes
  // or Egress ∉ policyTypes (policyTypes omitted ⇒ Ingress); egress when Egress ∈ policyTypes or it has rules.
  // Rules are translated whatever policyTypes says (§9.2 "Ambiguity", §12.5).
  const defaultDeny = Object.freeze({
    ingress: ingress.length > 0 || types.includes('Ingress') || !types.includes('Egress'),
    egress: egress.length > 0 || types.includes('Egress'),
  });
  // §2.5: the subject is podSelector plus the policy namespace.
  const subject = makeSelector([
    ...compileLabelSelector(spec.podSelector as RawLabelSelector, SOURCE_K8S),
    { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'In', values: [namespace] },
  ]);
  const rule: Rule = Object.freeze({
    policy: ref,
    path: 'spec',
    subject,
    defaultDeny,
    ingress: Object.freeze(elements.ingress),
    egress: Object.freeze(elements.egress),
  });
  return { policy: Object.freeze({ ref, rules: Object.freeze([rule]) }) as Policy, errors, warnings };
}

interface Ctx {
  readonly namespace: string;
  readonly errors: SchemaIssue[];
  readonly clusterName: string;
}

function element(
  ctx: Ctx,
  ref: PolicyRef,
  section: Section,
  path: string,
  peers: readonly KnpPeer[] | null | undefined,
  peerKey: 'from' | 'to',
  ports: readonly KnpPort[] | null | undefined,
): Element {
  let l3: L3;
  // §9.3: a rule with no from/to (or an empty list) matches all sources, world included (WildcardSelector).
  if (peers === null || peers === undefined || peers.length === 0) l3 = { kind: 'wildcard' };
  else {
    const endpoints = [];
    const cidrs: CidrMatch[] = [];
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i]!;
      const pp = `${path}.${peerKey}[${i}]`;
      const hasSel = p.podSelector != null || p.namespaceSelector != null;
      if (p.ipBlock != null) {
        if (hasSel) {
          ctx.errors.push({ path: pp, message: 'may not specify both ipBlock and another peer' });
          continue;
        }
        const c = ipBlockMatch(ctx, `${pp}.ipBlock`, p.ipBlock.cidr, p.ipBlock.except ?? []);
        if (c !== undefined) cidrs.push(c);
        continue;
      }
      if (!hasSel) {
        ctx.errors.push({
          path: pp,
          message: 'must specify a peer (podSelector, namespaceSelector or ipBlock)',
        });
        continue;
      }
      if (p.podSelector != null)
        validateLabelSelector(p.podSelector as never, `${pp}.podSelector`, ctx.errors, false);
      if (p.namespaceSelector != null) {
        validateLabelSelector(p.namespaceSelector as never, `${pp}.namespaceSelector`, ctx.errors, false);
      }
      endpoints.push(makeSelector(peerRequirements(ctx, p)));
    }
    l3 = Object.freeze({
      kind: 'peers',
      endpoints: Object.freeze(endpoints),
      entities: [],
      cidrs: Object.freeze(cidrs),
      unsupported: [],
    });
  }
  let l4: PortMatch[] | null = null;
  if (ports != null && ports.length > 0) {
    l4 = [];
    ports.forEach((pt, j) => {
      const m = knpPort(ctx, `${path}.ports[${j}]`, pt);
      if (m !== undefined) l4!.push(m);
    });
  }
  return Object.freeze({
    ref: Object.freeze({ policy: ref, path, section }),
    deny: false,
    l3,
    l4: l4 === null ? null : Object.freeze(l4),
    auth: undefined,
  });
}

/**
 * §2.5 / §9.4: podSelector alone → that selector in the policy namespace; with a namespaceSelector →
 * each namespace label becomes `io.cilium.k8s.namespace.labels.<k>`, ANDed with the podSelector; an
 * empty namespaceSelector → `io.kubernetes.pod.namespace Exists`. Current main adds the local cluster.
 */
function peerRequirements(ctx: Ctx, p: KnpPeer): Requirement[] {
  const reqs =
    p.podSelector == null ? [] : compileLabelSelector(p.podSelector as RawLabelSelector, SOURCE_K8S);
  if (p.namespaceSelector == null) {
    reqs.push({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'In', values: [ctx.namespace] });
  } else {
    const ns = compileLabelSelector(p.namespaceSelector as RawLabelSelector, SOURCE_K8S).map((r) => ({
      ...r,
      key: `${POD_NAMESPACE_META_LABELS}.${r.key}`,
    }));
    if (ns.length === 0)
      reqs.push({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'Exists', values: [] });
    else reqs.push(...ns);
  }
  reqs.push({ source: SOURCE_K8S, key: POLICY_LABEL_CLUSTER, op: 'In', values: [ctx.clusterName] });
  return reqs;
}

function ipBlockMatch(
  ctx: Ctx,
  path: string,
  cidr: string,
  except: readonly string[],
): CidrMatch | undefined {
  let c: Cidr;
  try {
    if (!cidr.includes('/')) throw new TypeError('no prefix');
    c = parseCidr(cidr);
  } catch {
    ctx.errors.push({
      path: `${path}.cidr`,
      message: `must be a valid CIDR like 10.0.0.0/16 (got "${cidr}")`,
    });
    return undefined;
  }
  const ex: Cidr[] = [];
  except.forEach((x, i) => {
    const p = `${path}.except[${i}]`;
    try {
      if (!x.includes('/')) throw new TypeError('no prefix');
      const e = parseCidr(x);
      const width = c.family === 4 ? 32 : 128;
      const shift = BigInt(width - c.prefix);
      // K: validation.go ValidateIPBlock: "must be a strict subset of `cidr`".
      if (e.family !== c.family || e.prefix <= c.prefix || e.bits >> shift !== c.bits >> shift) {
        ctx.errors.push({ path: p, message: `must be a strict subset of cidr ${cidr} (got "${x}")` });
        return;
      }
      ex.push(e);
    } catch {
      ctx.errors.push({ path: p, message: `must be a valid CIDR (got "${x}")` });
    }
  });
  return Object.freeze({
    cidr: c,
    except: Object.freeze(ex),
    text: ex.length === 0 ? cidr : `${cidr} except ${except.join(',')}`,
  });
}

/** §7 / §9.6: protocol defaults to TCP; a missing port means all ports; endPort is inclusive, needs a numeric port. */
function knpPort(ctx: Ctx, path: string, pt: KnpPort): PortMatch | undefined {
  const protocols = [pt.protocol ?? 'TCP'] as const;
  const endPort = pt.endPort ?? undefined;
  if (pt.port == null) {
    if (endPort !== undefined) {
      ctx.errors.push({
        path: `${path}.endPort`,
        message: 'may not be specified when port is not specified',
      });
      return undefined;
    }
    return { port: 0, endPort: 0, protocols };
  }
  if (typeof pt.port === 'string') {
    const e = portNameError(pt.port);
    if (e !== undefined) {
      ctx.errors.push({ path: `${path}.port`, message: e });
      return undefined;
    }
    if (endPort !== undefined) {
      ctx.errors.push({ path: `${path}.endPort`, message: 'may not be specified when port is a named port' });
      return undefined;
    }
    return { port: 0, endPort: 0, name: pt.port, protocols };
  }
  if (pt.port < 1 || pt.port > 65535) {
    ctx.errors.push({
      path: `${path}.port`,
      message: `must be between 1 and 65535, inclusive (got ${pt.port})`,
    });
    return undefined;
  }
  if (endPort !== undefined) {
    if (endPort < pt.port || endPort > 65535) {
      ctx.errors.push({
        path: `${path}.endPort`,
        message: `must be greater than or equal to port ${pt.port} and at most 65535 (got ${endPort})`,
      });
      return undefined;
    }
    return { port: pt.port, endPort, protocols };
  }
  return { port: pt.port, endPort: pt.port, protocols };
}
