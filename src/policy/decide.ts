// decide(): the verdict Cilium would reach for one connection, per direction (reference §10). Pure:
// the answer depends only on the connection and the snapshot.
import { cidrContains } from '../net/address.ts';
import { type LabelSet, POLICY_LABEL_CLUSTER, SOURCE_K8S, SOURCE_RESERVED } from './labels.ts';
import type { AuthMode, Direction, Element, Entity, PolicyKind, Protocol, Rule, Section } from './model.ts';
import { AUTH_TYPE } from './model.ts';
import { portPrefixLength } from './ports.ts';
import { selectorMatches } from './selector.ts';
import type { PolicySnapshot } from './snapshot.ts';

/** One side of a connection as policy sees it: a pod, a reserved identity, or an address outside the cluster. */
export interface PolicyPeer {
  readonly kind: 'pod' | 'reserved' | 'world';
  /** Numeric security identity (reserved ids for reserved peers, 2/9/10 for world). */
  readonly identity: number;
  readonly labels: LabelSet;
  readonly ip?: string | undefined;
  /** Container ports by name, for named-port rules (destination only). */
  readonly namedPorts?: ReadonlyMap<string, number> | undefined;
  /** A stable string of `namedPorts` (for the decision cache); set by whoever sets `namedPorts`. */
  readonly namedPortsKey?: string | undefined;
}

export interface Connection {
  readonly src: PolicyPeer;
  readonly dst: PolicyPeer;
  readonly dport: number;
  readonly protocol: Protocol;
}

export type AuthOutcome = 'none' | 'required' | 'test-always-fail';

/** A rule that took part in a decision: enough for the trace and the flow log. */
export interface MatchedRule {
  readonly policy: string;
  readonly kind: PolicyKind;
  readonly namespace: string;
  readonly name: string;
  /** `spec.ingress[0]`, or the rule (`spec`) for a default-deny. */
  readonly path: string;
  readonly section: Section | 'default-deny';
  readonly effect: 'allow' | 'deny' | 'default-deny';
  /** The element's explicit authentication mode, if it has one. */
  readonly auth?: AuthMode;
  readonly file: string;
  readonly document: number;
}

export type DirectionVerdict =
  | {
      readonly verdict: 'allow';
      /**
       * `not-enforced`: the subject is not a pod (world, host…); `no-policy`: no rule selects it (§4.1);
       * `no-default-deny`: rules select it but none enables default deny and none matched (§4.3);
       * `allowed`: an allow rule matched.
       */
      readonly reason: 'not-enforced' | 'no-policy' | 'no-default-deny' | 'allowed';
      readonly auth: AuthOutcome;
      readonly authRequired: boolean;
      readonly matched: readonly MatchedRule[];
    }
  | {
      readonly verdict: 'deny';
      /** `denied`: a deny rule matched (§5); `default-deny`: nothing allowed it (§4.2). */
      readonly reason: 'denied' | 'default-deny';
      readonly auth: 'none';
      readonly authRequired: false;
      readonly matched: readonly MatchedRule[];
    };

export type Verdict =
  | {
      readonly verdict: 'allow';
      /** Mutual authentication is needed: either direction's chosen entry requires it (§8.2e). */
      readonly authRequired: boolean;
      /** The strongest requirement of the two directions (`test-always-fail` can never be met). */
      readonly auth: AuthOutcome;
      readonly egress: DirectionVerdict;
      readonly ingress: DirectionVerdict;
    }
  | {
      readonly verdict: 'deny';
      /** The first direction that denied (egress is checked at the source first). */
      readonly direction: Direction;
      readonly reason: 'denied' | 'default-deny';
      /** Key of the first deciding policy. */
      readonly policy: string | undefined;
      readonly authRequired: false;
      readonly auth: 'none';
      readonly egress: DirectionVerdict;
      readonly ingress: DirectionVerdict;
    };

const CLUSTER_RESERVED = ['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'];

/** §6.1, C:pkg/policy/api/entity.go. `all` is handled as the wildcard by the caller. */
function entityMatches(entity: Entity, peer: PolicyPeer, clusterName: string): boolean {
  const reserved = (name: string): boolean => peer.labels.bySourceKey.has(`${SOURCE_RESERVED}:${name}`);
  switch (entity) {
    case 'world':
      return reserved('world') || reserved('world-ipv4') || reserved('world-ipv6');
    case 'cluster':
      return (
        CLUSTER_RESERVED.some(reserved) ||
        (peer.kind === 'pod' &&
          peer.labels.bySourceKey.get(`${SOURCE_K8S}:${POLICY_LABEL_CLUSTER}`) === clusterName)
      );
    case 'none':
      return false;
    case 'all':
      return true;
    default:
      return reserved(entity);
  }
}

const L3_ID = 1;
const L3_WILDCARD = 2;

/** Which map entries an element's L3 part yields for the peer: identity-specific, wildcard, both, none. */
function l3Match(el: Element, peer: PolicyPeer, clusterName: string): number {
  const l3 = el.l3;
  if (l3.kind === 'wildcard') return L3_WILDCARD; // §3.3 toPorts-only: any peer
  let m = 0;
  for (const e of l3.entities) {
    if (e === 'all')
      m |= L3_WILDCARD; // §6.1 `all` is the wildcard selector
    else if (entityMatches(e, peer, clusterName)) m |= L3_ID;
  }
  if ((m & L3_ID) === 0) {
    for (const s of l3.endpoints) {
      if (selectorMatches(s, peer.labels)) {
        m |= L3_ID;
        break;
      }
    }
  }
  // §6.2: CIDR rules only select peers Cilium does not manage (world), never pods or nodes.
  if ((m & L3_ID) === 0 && peer.kind === 'world' && peer.ip !== undefined) {
    for (const c of l3.cidrs) {
      if (cidrContains(c.cidr, peer.ip) && !c.except.some((x) => cidrContains(x, peer.ip!))) {
        m |= L3_ID;
        break;
      }
    }
  }
  // Peers ward cannot evaluate (toFQDNs, toGroups, …): a deny fails closed, an allow allows nothing.
  if (el.deny && l3.unsupported.length > 0) m |= L3_WILDCARD;
  return m;
}

/**
 * Specificity of the element's most specific L4 entry that covers (dport, protocol), as the datapath's
 * LPM ranks keys: protocol first, then the port prefix. -1: no match. 0: L3-only (any protocol, any port).
 */
function l4Specificity(el: Element, dport: number, protocol: Protocol, dst: PolicyPeer): number {
  if (el.l4 === null) return 0;
  let best = -1;
  for (const pm of el.l4) {
    if (!pm.protocols.includes(protocol)) continue; // §7: protocols are never conflated
    let s = -1;
    if (pm.name !== undefined) {
      if (dst.namedPorts?.get(pm.name) === dport) s = 100 + 16;
    } else if (pm.port === 0)
      s = 100; // port 0: every port of the protocol
    else if (dport >= pm.port && dport <= pm.endPort) s = 100 + portPrefixLength(pm.port, pm.endPort, dport);
    if (s > best) best = s;
  }
  return best;
}

function matchedRule(el: Element, effect: 'allow' | 'deny'): MatchedRule {
  const p = el.ref.policy;
  const m: MatchedRule = {
    policy: p.key,
    kind: p.kind,
    namespace: p.namespace,
    name: p.name,
    path: el.ref.path,
    section: el.ref.section,
    effect,
    file: p.file,
    document: p.document,
  };
  return el.auth === undefined ? m : { ...m, auth: el.auth };
}

function defaultDenyRule(r: Rule): MatchedRule {
  return {
    policy: r.policy.key,
    kind: r.policy.kind,
    namespace: r.policy.namespace,
    name: r.policy.name,
    path: r.path,
    section: 'default-deny',
    effect: 'default-deny',
    file: r.policy.file,
    document: r.policy.document,
  };
}

interface Entry {
  readonly spec: number;
  type: number;
  explicit: boolean;
}

/** Merges entries with the same key: an explicit type beats a default one; higher explicit wins (§8.2a,b). */
function mergeInto(map: Map<number, Entry>, spec: number, auth: AuthMode | undefined): void {
  const e = map.get(spec);
  const t = auth === undefined ? 0 : AUTH_TYPE[auth];
  if (e === undefined) map.set(spec, { spec, type: t, explicit: auth !== undefined });
  else if (auth !== undefined) {
    e.type = e.explicit ? Math.max(e.type, t) : t;
    e.explicit = true;
  }
}

/**
 * §8.2(c): the most specific entry of one identity wins; if it has no explicit auth it inherits the auth
 * of the most specific covering entry of the same identity that has one. All entries here cover dport,
 * so every less specific entry covers the chosen one.
 */
function chooseEntry(map: Map<number, Entry>): Entry | undefined {
  if (map.size === 0) return undefined;
  const entries = [...map.values()].sort((a, b) => b.spec - a.spec);
  const chosen = { ...entries[0]! };
  if (!chosen.explicit) {
    const cover = entries.find((e) => e.explicit);
    if (cover !== undefined) {
      chosen.type = cover.type;
      chosen.explicit = true;
    }
  }
  return chosen;
}

const AUTH_OUTCOME: readonly AuthOutcome[] = ['none', 'required', 'test-always-fail'];

function sortMatched(list: MatchedRule[]): MatchedRule[] {
  return list.sort((a, b) =>
    a.policy !== b.policy ? (a.policy < b.policy ? -1 : 1) : a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
  );
}

/** One direction, enforced at `subject` for traffic with `peer` (§10 `verdict`). */
export function decideDirection(
  snapshot: PolicySnapshot,
  direction: Direction,
  subject: PolicyPeer,
  peer: PolicyPeer,
  dport: number,
  protocol: Protocol,
  dst: PolicyPeer,
): DirectionVerdict {
  // §10: "if subject is external: return ALLOW" — only pods have endpoint policy here (host policies are out of scope).
  if (subject.kind !== 'pod')
    return { verdict: 'allow', reason: 'not-enforced', auth: 'none', authRequired: false, matched: [] };
  const rules = snapshot.selecting(subject.labels, direction);
  // §4.1: "an endpoint that no rule selects allows everything in that direction".
  if (rules.length === 0)
    return { verdict: 'allow', reason: 'no-policy', auth: 'none', authRequired: false, matched: [] };
  const denies: MatchedRule[] = [];
  const allows: MatchedRule[] = [];
  const idEntries = new Map<number, Entry>();
  const wildEntries = new Map<number, Entry>();
  let defaultDeny = false;
  for (const rule of rules) {
    // §4.2: default-deny if at least one selecting rule enables it for this direction.
    if (rule.defaultDeny[direction]) defaultDeny = true;
    for (const el of rule[direction]) {
      // §3.2: allowed iff the peer is in the L3 set AND the port/protocol matches some toPorts entry.
      const spec = l4Specificity(el, dport, protocol, dst);
      if (spec < 0) continue;
      const l3 = l3Match(el, peer, snapshot.clusterName);
      if (l3 === 0) continue;
      if (el.deny) {
        denies.push(matchedRule(el, 'deny'));
        continue;
      }
      allows.push(matchedRule(el, 'allow'));
      if (l3 & L3_ID) mergeInto(idEntries, spec, el.auth);
      if (l3 & L3_WILDCARD) mergeInto(wildEntries, spec, el.auth);
    }
  }
  // §5: any matching deny wins, whatever the allows say; auth never applies to denied traffic.
  if (denies.length > 0)
    return {
      verdict: 'deny',
      reason: 'denied',
      auth: 'none',
      authRequired: false,
      matched: sortMatched(denies),
    };
  if (allows.length === 0) {
    if (defaultDeny) {
      const matched = rules.filter((r) => r.defaultDeny[direction]).map(defaultDenyRule);
      return {
        verdict: 'deny',
        reason: 'default-deny',
        auth: 'none',
        authRequired: false,
        matched: sortMatched(matched),
      };
    }
    // §4.3: rules with enableDefaultDeny false leave unmentioned traffic allowed.
    return { verdict: 'allow', reason: 'no-default-deny', auth: 'none', authRequired: false, matched: [] };
  }
  // §8.2(d): identity-specific vs wildcard: the longer prefix wins, a tie goes to the identity-specific
  // entry; if the chosen one has no explicit auth and the other's type is greater, the greater applies.
  const id = chooseEntry(idEntries);
  const wild = chooseEntry(wildEntries);
  let type = 0;
  if (id !== undefined && wild !== undefined) {
    const [chosen, other] = wild.spec > id.spec ? [wild, id] : [id, wild];
    type = !chosen.explicit && other.type > chosen.type ? other.type : chosen.type;
  } else type = (id ?? wild)?.type ?? 0;
  const auth = AUTH_OUTCOME[type] ?? 'none';
  return { verdict: 'allow', reason: 'allowed', auth, authRequired: type > 0, matched: sortMatched(allows) };
}

/**
 * §3.4: egress is decided at the source, ingress at the destination, and both must allow.
 * §8.2(e): authentication is required if either direction's chosen entry requires it.
 */
export function decide(c: Connection, snapshot: PolicySnapshot): Verdict {
  const egress = decideDirection(snapshot, 'egress', c.src, c.dst, c.dport, c.protocol, c.dst);
  const ingress = decideDirection(snapshot, 'ingress', c.dst, c.src, c.dport, c.protocol, c.dst);
  const denied = egress.verdict === 'deny' ? egress : ingress.verdict === 'deny' ? ingress : undefined;
  if (denied !== undefined) {
    return {
      verdict: 'deny',
      direction: denied === egress ? 'egress' : 'ingress',
      reason: denied.reason,
      policy: denied.matched[0]?.policy,
      authRequired: false,
      auth: 'none',
      egress,
      ingress,
    };
  }
  const type = Math.max(AUTH_OUTCOME.indexOf(egress.auth), AUTH_OUTCOME.indexOf(ingress.auth));
  return { verdict: 'allow', authRequired: type > 0, auth: AUTH_OUTCOME[type] ?? 'none', egress, ingress };
}
