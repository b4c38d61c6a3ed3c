// CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy → rules. Validation first (the CRD schema, then
// Cilium's own checks in C:pkg/policy/api/rule_validation.go), then namespace scoping (reference §2).
import { type Cidr, parseCidr } from '../net/address.ts';
import schemas from './crd/schemas.json' with { type: 'json' };
import { validateLabelSelector, validateMetadata } from './k8s-validation.ts';
import { POD_NAMESPACE_LABEL, POD_NAMESPACE_META_LABELS, SOURCE_K8S } from './labels.ts';
import type {
  AuthMode,
  CidrMatch,
  Element,
  Entity,
  L3,
  Origin,
  Policy,
  PolicyKind,
  PolicyRef,
  PortMatch,
  Rule,
  RuleProtocol,
  Section,
} from './model.ts';
import { policyKey } from './model.ts';
import {
  assertSupportedSchema,
  joinPath,
  type OpenApiSchema,
  type SchemaIssue,
  validateSchema,
} from './openapi-validate.ts';
import { parsePortString } from './ports.ts';
import {
  compileLabelSelector,
  hasKey,
  hasKeyPrefix,
  makeSelector,
  type RawLabelSelector,
  type Requirement,
} from './selector.ts';

export interface ParseResult {
  readonly policy: Policy | undefined;
  readonly errors: SchemaIssue[];
  readonly warnings: SchemaIssue[];
}

type Crds = Record<string, { schema: OpenApiSchema }>;
const CRDS = schemas as unknown as Crds;
const CNP_SCHEMA = CRDS.CiliumNetworkPolicy!.schema;
const CCNP_SCHEMA = CRDS.CiliumClusterwideNetworkPolicy!.schema;
assertSupportedSchema(CNP_SCHEMA);
assertSupportedSchema(CCNP_SCHEMA);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const present = (o: Obj, k: string): boolean => o[k] !== undefined && o[k] !== null;

const SECTIONS: readonly Section[] = ['ingress', 'ingressDeny', 'egress', 'egressDeny'];
const PEER_PREFIX: Record<Section, 'from' | 'to'> = {
  ingress: 'from',
  ingressDeny: 'from',
  egress: 'to',
  egressDeny: 'to',
};
/** L3 fields ward does not evaluate (reference §3.2: "out of scope"). */
const UNSUPPORTED_L3 = ['Services', 'FQDNs', 'Nodes', 'Groups'];

interface Ctx {
  readonly kind: PolicyKind;
  /** '' for a CCNP. */
  readonly namespace: string;
  readonly errors: SchemaIssue[];
  readonly warnings: SchemaIssue[];
}

export function parseCiliumPolicy(doc: Obj, origin: Origin, defaultNamespace: string): ParseResult {
  const kind = doc.kind as PolicyKind;
  const clusterwide = kind === 'CiliumClusterwideNetworkPolicy';
  const errors: SchemaIssue[] = [];
  const warnings: SchemaIssue[] = [];
  validateSchema(clusterwide ? CCNP_SCHEMA : CNP_SCHEMA, doc, '', errors);
  validateMetadata(doc.metadata, !clusterwide, errors);
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === 'string' ? meta.name : '';
  let namespace = '';
  if (clusterwide) {
    if (typeof meta.namespace === 'string' && meta.namespace !== '') {
      warnings.push({ path: 'metadata.namespace', message: 'is ignored: the policy is cluster-wide' });
    }
  } else {
    namespace =
      typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : defaultNamespace;
  }
  // C:pkg/k8s/apis/cilium.io/v2/cnp_types.go Parse: "empty policy" when neither spec nor specs.
  const specs: [string, Obj][] = [];
  if (isObj(doc.spec)) specs.push(['spec', doc.spec]);
  arr(doc.specs).forEach((s, i) => {
    if (isObj(s)) specs.push([`specs[${i}]`, s]);
  });
  if (!present(doc, 'spec') && !present(doc, 'specs')) {
    errors.push({ path: 'spec', message: 'the policy has neither spec nor specs (empty policy)' });
  }
  const ctx: Ctx = { kind, namespace, errors, warnings };
  const ref: PolicyRef = Object.freeze({
    ...origin,
    kind,
    namespace,
    name,
    key: policyKey(kind, namespace, name),
  });
  const rules: Rule[] = [];
  for (const [path, spec] of specs) {
    const rule = parseRule(ctx, ref, path, spec);
    if (rule !== undefined) rules.push(rule);
  }
  checkAuthConflicts(rules, errors);
  if (errors.length > 0) return { policy: undefined, errors, warnings };
  return { policy: Object.freeze({ ref, rules: Object.freeze(rules) }), errors, warnings };
}

function parseRule(ctx: Ctx, ref: PolicyRef, path: string, spec: Obj): Rule | undefined {
  // C:pkg/policy/api/rule_validation.go Validate: "rule must have at least one of Ingress, IngressDeny,
  // Egress, EgressDeny" (§4.2: an all-empty rule is invalid and enforces nothing).
  const lengths = Object.fromEntries(SECTIONS.map((s) => [s, arr(spec[s]).length])) as Record<
    Section,
    number
  >;
  if (SECTIONS.every((s) => lengths[s] === 0)) {
    ctx.errors.push({
      path,
      message: 'rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny',
    });
  }
  if (present(spec, 'nodeSelector')) {
    ctx.warnings.push({
      path: joinPath(path, 'nodeSelector'),
      message: 'host policies (nodeSelector) select nodes, not pods: ward does not enforce this rule',
    });
    return undefined;
  }
  if (!isObj(spec.endpointSelector)) return undefined;
  validateLabelSelector(spec.endpointSelector, joinPath(path, 'endpointSelector'), ctx.errors, true);
  const subject = subjectSelector(
    ctx,
    spec.endpointSelector as RawLabelSelector,
    joinPath(path, 'endpointSelector'),
  );
  const elements: Record<'ingress' | 'egress', Element[]> = { ingress: [], egress: [] };
  for (const section of SECTIONS) {
    arr(spec[section]).forEach((e, i) => {
      if (!isObj(e)) return;
      const el = parseElement(ctx, ref, section, joinPath(joinPath(path, section), i), e);
      elements[section.startsWith('ingress') ? 'ingress' : 'egress'].push(el);
    });
  }
  // §4.2: the default of enableDefaultDeny.<dir> is len(<dir>) + len(<dir>Deny) > 0.
  const edd = isObj(spec.enableDefaultDeny) ? spec.enableDefaultDeny : {};
  const defaultDeny = Object.freeze({
    ingress: typeof edd.ingress === 'boolean' ? edd.ingress : lengths.ingress + lengths.ingressDeny > 0,
    egress: typeof edd.egress === 'boolean' ? edd.egress : lengths.egress + lengths.egressDeny > 0,
  });
  return Object.freeze({
    policy: ref,
    path,
    subject,
    defaultDeny,
    ingress: Object.freeze(elements.ingress),
    egress: Object.freeze(elements.egress),
  });
}

/**
 * §2.1: a CNP's endpointSelector gets `k8s:io.kubernetes.pod.namespace=<policy ns>`, added and
 * overwriting what the user wrote under that exact key; an unprefixed namespace key stays and ANDs.
 * §2.3: a CCNP's endpointSelector is used as written.
 */
function subjectSelector(ctx: Ctx, sel: RawLabelSelector, path: string) {
  const reqs = compileLabelSelector(sel);
  if (ctx.namespace === '') return makeSelector(reqs);
  const kept: Requirement[] = [];
  const forcedKey = `${SOURCE_K8S}:${POD_NAMESPACE_LABEL}`;
  for (const [raw, value] of Object.entries(sel.matchLabels ?? {})) {
    if (raw === forcedKey && value !== ctx.namespace) {
      ctx.warnings.push({
        path: joinPath(joinPath(path, 'matchLabels'), raw),
        message: `namespace "${value}" is replaced by the policy's namespace "${ctx.namespace}"`,
      });
    }
  }
  const labelCount = Object.keys(sel.matchLabels ?? {}).length;
  reqs.forEach((r, i) => {
    const fromMatchLabels = i < labelCount;
    if (fromMatchLabels && r.source === SOURCE_K8S && r.key === POD_NAMESPACE_LABEL) return;
    kept.push(r);
  });
  kept.push({ source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'In', values: [ctx.namespace] });
  return makeSelector(kept);
}

/**
 * §2.2 (CNP): a peer selector without an `io.kubernetes.pod.namespace` key or an
 * `io.cilium.k8s.namespace.labels.*` key (k8s or any source) is restricted to the policy's namespace.
 * §2.3 (CCNP): such a selector gets `k8s:io.kubernetes.pod.namespace Exists` (all pods, never world).
 */
function peerSelector(ctx: Ctx, sel: RawLabelSelector) {
  const reqs = compileLabelSelector(sel);
  const crossNs = hasKey(reqs, POD_NAMESPACE_LABEL) || hasKeyPrefix(reqs, `${POD_NAMESPACE_META_LABELS}.`);
  if (!crossNs) {
    reqs.push(
      ctx.namespace === ''
        ? { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'Exists', values: [] }
        : { source: SOURCE_K8S, key: POD_NAMESPACE_LABEL, op: 'In', values: [ctx.namespace] },
    );
  }
  return makeSelector(reqs);
}

function parseElement(ctx: Ctx, ref: PolicyRef, section: Section, path: string, e: Obj): Element {
  const deny = section.endsWith('Deny');
  const p = PEER_PREFIX[section];
  const l3Keys = [`${p}Endpoints`, `${p}Entities`, `${p}CIDR`, `${p}CIDRSet`];
  const unsupportedKeys = UNSUPPORTED_L3.map((k) => `${p}${k}`).filter((k) => present(e, k));
  for (const k of unsupportedKeys) {
    ctx.warnings.push({
      path: joinPath(path, k),
      message: deny
        ? `${k} is not evaluated by ward: this deny rule denies every peer on its ports (fails closed)`
        : `${k} is not evaluated by ward: this allow rule allows no peer through it`,
    });
  }
  if (present(e, `${p}Requires`)) {
    // Deprecated in 1.17, removed in 1.19 (reference §12.7); ANDs into every peer selector: not modelled.
    ctx.errors.push({
      path: joinPath(path, `${p}Requires`),
      message: `${p}Requires is not supported (deprecated in Cilium 1.17, removed in 1.19): use ${p}Endpoints`,
    });
  }
  const hasL3 = l3Keys.some((k) => present(e, k)) || unsupportedKeys.length > 0;
  const toPorts = arr(e.toPorts);
  const icmps = arr(e.icmps);
  const hasL4 = toPorts.length > 0 || icmps.length > 0;
  let l3: L3;
  if (!hasL3) {
    // §3.3: no L3 but toPorts → any peer; no L3 and no L4 ({}) → nothing.
    l3 = hasL4
      ? { kind: 'wildcard' }
      : { kind: 'peers', endpoints: [], entities: [], cidrs: [], unsupported: [] };
  } else {
    const endpoints = arr(e[`${p}Endpoints`]).map((s, i) => {
      if (isObj(s)) validateLabelSelector(s, joinPath(joinPath(path, `${p}Endpoints`), i), ctx.errors, true);
      return peerSelector(ctx, (isObj(s) ? s : {}) as RawLabelSelector);
    });
    const entities = arr(e[`${p}Entities`]).filter((x): x is Entity => typeof x === 'string');
    const cidrs: CidrMatch[] = [];
    arr(e[`${p}CIDR`]).forEach((c, i) => {
      const m = cidrMatch(ctx, joinPath(joinPath(path, `${p}CIDR`), i), c, []);
      if (m !== undefined) cidrs.push(m);
    });
    const unsupported = [...unsupportedKeys];
    arr(e[`${p}CIDRSet`]).forEach((c, i) => {
      const cp = joinPath(joinPath(path, `${p}CIDRSet`), i);
      if (!isObj(c)) return;
      if (!present(c, 'cidr')) {
        const which = present(c, 'cidrGroupRef') ? 'cidrGroupRef' : 'cidrGroupSelector';
        unsupported.push(`${p}CIDRSet.${which}`);
        ctx.warnings.push({
          path: joinPath(cp, which),
          message: deny
            ? `CiliumCIDRGroup references are not evaluated by ward: this deny rule denies every peer on its ports`
            : `CiliumCIDRGroup references are not evaluated by ward: this entry allows nothing`,
        });
        return;
      }
      const m = cidrMatch(ctx, cp, c.cidr, arr(c.except));
      if (m !== undefined) cidrs.push(m);
    });
    l3 = Object.freeze({
      kind: 'peers',
      endpoints: Object.freeze(endpoints),
      entities: Object.freeze(entities),
      cidrs: Object.freeze(cidrs),
      unsupported: Object.freeze(unsupported),
    });
  }
  let l4: PortMatch[] | null = null;
  if (toPorts.length > 0) {
    l4 = [];
    toPorts.forEach((pr, i) => {
      if (!isObj(pr)) return;
      const pp = joinPath(joinPath(path, 'toPorts'), i);
      for (const k of ['rules', 'listener', 'originatingTLS', 'terminatingTLS', 'serverNames']) {
        if (present(pr, k)) {
          ctx.warnings.push({
            path: joinPath(pp, k),
            message: `L7 field ${k} is not enforced by ward (L4 only)`,
          });
        }
      }
      const ports = arr(pr.ports);
      if (ports.length === 0) {
        // A port rule without ports covers every port and protocol (port 0, ANY).
        l4!.push({ port: 0, endPort: 0, protocols: ['TCP', 'UDP', 'SCTP'] });
      }
      ports.forEach((pt, j) => {
        if (!isObj(pt)) return;
        const m = portMatch(ctx, joinPath(joinPath(pp, 'ports'), j), pt);
        if (m !== undefined) l4!.push(m);
      });
    });
  } else if (icmps.length > 0) {
    l4 = []; // ICMP only: never a TCP/UDP/SCTP connection.
  }
  const auth =
    isObj(e.authentication) && typeof e.authentication.mode === 'string'
      ? (e.authentication.mode as AuthMode)
      : undefined;
  return Object.freeze({
    ref: Object.freeze({ policy: ref, path, section }),
    deny,
    l3,
    l4: l4 === null ? null : Object.freeze(l4),
    auth,
  });
}

function cidrMatch(ctx: Ctx, path: string, cidr: unknown, except: unknown[]): CidrMatch | undefined {
  if (typeof cidr !== 'string') return undefined;
  let c: Cidr;
  try {
    c = parseCidr(cidr);
  } catch {
    return undefined; // the schema's format check reports it
  }
  const ex: Cidr[] = [];
  except.forEach((x, i) => {
    if (typeof x !== 'string') return;
    try {
      const e = parseCidr(x);
      // C:pkg/policy/api/cidr.go sanitize: the allowed prefix must contain each excluded prefix.
      if (e.family !== c.family || e.prefix < c.prefix || !containsNetwork(c, e)) {
        ctx.errors.push({
          path: joinPath(joinPath(path, 'except'), i),
          message: `allow CIDR prefix ${cidr} does not contain exclude CIDR prefix ${x}`,
        });
        return;
      }
      ex.push(e);
    } catch {
      // reported by the schema's format check
    }
  });
  const text = ex.length === 0 ? cidr : `${cidr} except ${except.join(',')}`;
  return Object.freeze({ cidr: c, except: Object.freeze(ex), text });
}

function containsNetwork(outer: Cidr, inner: Cidr): boolean {
  const width = outer.family === 4 ? 32 : 128;
  const shift = BigInt(width - outer.prefix);
  return inner.bits >> shift === outer.bits >> shift;
}

const ALL_PROTOCOLS: readonly RuleProtocol[] = ['TCP', 'UDP', 'SCTP'];

function portMatch(ctx: Ctx, path: string, pt: Obj): PortMatch | undefined {
  const protocol = typeof pt.protocol === 'string' ? pt.protocol : 'ANY';
  // §7: omitted or ANY means TCP, UDP and SCTP.
  const protocols: readonly RuleProtocol[] = protocol === 'ANY' ? ALL_PROTOCOLS : [protocol as RuleProtocol];
  if (!present(pt, 'port')) {
    if (protocol === 'VRRP' || protocol === 'IGMP') return { port: 0, endPort: 0, protocols };
    ctx.errors.push({ path: joinPath(path, 'port'), message: 'port must be specified' });
    return undefined;
  }
  if (typeof pt.port !== 'string') return undefined; // the schema reports the type
  const parsed = parsePortString(pt.port);
  if ('error' in parsed) {
    ctx.errors.push({ path: joinPath(path, 'port'), message: parsed.error });
    return undefined;
  }
  const endPort = typeof pt.endPort === 'number' ? pt.endPort : 0;
  if ('name' in parsed) {
    // §7: "endPort is ignored for named ports".
    return { port: 0, endPort: 0, name: parsed.name, protocols };
  }
  if (endPort !== 0 && parsed.port !== 0 && endPort < parsed.port) {
    ctx.errors.push({
      path: joinPath(path, 'endPort'),
      message: `endPort ${endPort} must be greater than or equal to port ${parsed.port}`,
    });
    return undefined;
  }
  return { port: parsed.port, endPort: parsed.port === 0 ? 0 : Math.max(endPort, parsed.port), protocols };
}

/**
 * §8.2(a): two allow elements of one policy with the same subject, the same peer selector and the same
 * port/protocol but different explicit authentication modes → "cannot merge conflicting authentication
 * types". Cilium fails to compute the endpoint's policy; ward rejects the policy and says where.
 */
function checkAuthConflicts(rules: readonly Rule[], errors: SchemaIssue[]): void {
  type Seen = { mode: AuthMode; path: string };
  const seen = new Map<string, Seen>();
  for (const rule of rules) {
    for (const dir of ['ingress', 'egress'] as const) {
      for (const el of rule[dir]) {
        if (el.deny || el.auth === undefined) continue;
        const peers =
          el.l3.kind === 'wildcard'
            ? ['*']
            : [
                ...el.l3.endpoints.map((s) => `sel:${s.text}`),
                ...el.l3.entities.map((x) => `entity:${x}`),
                ...el.l3.cidrs.map((c) => `cidr:${c.text}`),
              ];
        const ports =
          el.l4 === null
            ? ['L3']
            : el.l4.flatMap((p) => p.protocols.map((pr) => `${pr}/${p.name ?? `${p.port}-${p.endPort}`}`));
        for (const peer of peers) {
          for (const port of ports) {
            const k = `${rule.subject.text}|${dir}|${peer}|${port}`;
            const prev = seen.get(k);
            if (prev === undefined) seen.set(k, { mode: el.auth, path: el.ref.path });
            else if (prev.mode !== el.auth) {
              errors.push({
                path: joinPath(el.ref.path, 'authentication.mode'),
                message: `cannot merge conflicting authentication types: "${el.auth}" here and "${prev.mode}" at ${prev.path} for the same peer and port`,
              });
            }
          }
        }
      }
    }
  }
}
