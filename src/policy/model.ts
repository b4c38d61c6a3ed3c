// The compiled policy model: what manifests become after validation and namespace scoping. Every object
// is frozen once built; a snapshot is replaced whole, never edited.
import type { Cidr } from '../net/address.ts';
import type { Selector } from './selector.ts';

export type PolicyKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy' | 'NetworkPolicy';
export type Direction = 'ingress' | 'egress';
export type Section = 'ingress' | 'ingressDeny' | 'egress' | 'egressDeny';
/** Protocols a connection can have. */
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
/** Protocols a rule can name (VRRP/IGMP never match a TCP/UDP/SCTP connection). */
export type RuleProtocol = Protocol | 'VRRP' | 'IGMP';
export type AuthMode = 'disabled' | 'required' | 'test-always-fail';
export type Entity =
  | 'all'
  | 'world'
  | 'cluster'
  | 'host'
  | 'init'
  | 'ingress'
  | 'unmanaged'
  | 'remote-node'
  | 'health'
  | 'none'
  | 'kube-apiserver';

/** C:pkg/policy/types/auth.go: "Numerically higher type takes precedence". */
export const AUTH_TYPE: Readonly<Record<AuthMode, 0 | 1 | 2>> = {
  disabled: 0,
  required: 1,
  'test-always-fail': 2,
};

export interface Origin {
  /** A file path, or `kube:<resource>/<namespace>/<name>`. */
  readonly file: string;
  readonly document: number;
}

export interface PolicyRef extends Origin {
  readonly kind: PolicyKind;
  /** '' for a CiliumClusterwideNetworkPolicy. */
  readonly namespace: string;
  readonly name: string;
  /** `<kind>/<namespace>/<name>` (`<kind>/<name>` when cluster-wide). */
  readonly key: string;
}

export interface CidrMatch {
  readonly cidr: Cidr;
  readonly except: readonly Cidr[];
  readonly text: string;
}

export interface PortMatch {
  /** 0 = every port of the protocols (C:pkg/policy/l4.go "Port 0 indicates that all traffic is allowed at L4"). */
  readonly port: number;
  /** Inclusive; equal to `port` for a single port. */
  readonly endPort: number;
  /** A named port, resolved against the destination pod's container ports; `port` is then 0. */
  readonly name?: string;
  readonly protocols: readonly RuleProtocol[];
}

export type L3 =
  /** No L3 field but toPorts (§3.3): any peer, world included, every namespace. */
  | { readonly kind: 'wildcard' }
  | {
      readonly kind: 'peers';
      readonly endpoints: readonly Selector[];
      readonly entities: readonly Entity[];
      readonly cidrs: readonly CidrMatch[];
      /** L3 fields ward does not evaluate (toFQDNs, toServices, …): nothing for allows, everything for denies. */
      readonly unsupported: readonly string[];
    };

export interface ElementRef {
  readonly policy: PolicyRef;
  /** Path of the element in its document, e.g. `spec.ingress[0]` or `specs[1].egressDeny[2]`. */
  readonly path: string;
  readonly section: Section;
}

export interface Element {
  readonly ref: ElementRef;
  readonly deny: boolean;
  readonly l3: L3;
  /** null: the element has no L4 part (L3-only: every port and protocol). [] matches no TCP/UDP/SCTP. */
  readonly l4: readonly PortMatch[] | null;
  /** Explicit authentication mode; undefined when the element omits `authentication` (§8.1). */
  readonly auth: AuthMode | undefined;
}

export interface Rule {
  readonly policy: PolicyRef;
  /** `spec` or `specs[i]`. */
  readonly path: string;
  readonly subject: Selector;
  /** §4.2: `enableDefaultDeny.<dir>`, defaulting to `len(<dir>) + len(<dir>Deny) > 0`. */
  readonly defaultDeny: { readonly ingress: boolean; readonly egress: boolean };
  readonly ingress: readonly Element[];
  readonly egress: readonly Element[];
}

export interface Policy {
  readonly ref: PolicyRef;
  readonly rules: readonly Rule[];
}

export function policyKey(kind: PolicyKind, namespace: string, name: string): string {
  return namespace === '' ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}
