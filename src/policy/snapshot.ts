// All accepted policies → one immutable snapshot, indexed so decide() looks only at rules that can
// select the endpoint. Compile is linear in the number of rules; which rules select an identity is
// worked out the first time that identity is seen and remembered for the snapshot's lifetime.
import type { PolicyIssue } from './errors.ts';
import { DEFAULT_CLUSTER_NAME, type LabelSet, POD_NAMESPACE_LABEL, SOURCE_K8S } from './labels.ts';
import type { Direction, Policy, Rule } from './model.ts';
import { selectorMatches } from './selector.ts';

export interface PolicySnapshot {
  /** Increases with every snapshot a source publishes. */
  readonly revision: number;
  readonly clusterName: string;
  /** Accepted policies, sorted by key. */
  readonly policies: readonly Policy[];
  /** Rejected documents and warnings: what `ward policy validate` prints and the status reports. */
  readonly issues: readonly PolicyIssue[];
  /** Whether some rule names a port by name (the decision then depends on the destination's ports). */
  readonly hasNamedPorts: boolean;
  /** Rules of `direction` whose subject selects an endpoint with these labels (§3.4), in key order. */
  selecting(labels: LabelSet, direction: Direction): readonly Rule[];
}

export interface CompileOptions {
  readonly revision?: number;
  readonly clusterName?: string;
  readonly issues?: readonly PolicyIssue[];
}

const NS_KEY = `${SOURCE_K8S}:${POD_NAMESPACE_LABEL}`;

/**
 * The most label sets whose selected rules one snapshot remembers. A node meets one label set per
 * identity it decides for, far fewer than this; past it the oldest is forgotten (and worked out again if
 * it comes back). The memo is a Map that grows with use: nothing is allocated for entries not yet seen
 * (an LRUCache preallocates its arrays for `max`: 1.5 MiB and ~10 ms per snapshot at this bound, in every
 * thread that compiles one).
 */
export const SELECTION_MEMO_MAX = 100_000;

interface Selected {
  readonly ingress: readonly Rule[];
  readonly egress: readonly Rule[];
}

function compareRules(a: Rule, b: Rule): number {
  if (a.policy.key !== b.policy.key) return a.policy.key < b.policy.key ? -1 : 1;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** The namespace a subject selector pins (`k8s:io.kubernetes.pod.namespace=<ns>`), if it pins one. */
function pinnedNamespace(rule: Rule): string | undefined {
  for (const r of rule.subject.requirements) {
    if (r.source === SOURCE_K8S && r.key === POD_NAMESPACE_LABEL && r.op === 'In' && r.values.length === 1) {
      return r.values[0];
    }
  }
  return undefined;
}

export function compileSnapshot(policies: readonly Policy[], opts: CompileOptions = {}): PolicySnapshot {
  const sorted = [...policies].sort((a, b) => (a.ref.key < b.ref.key ? -1 : a.ref.key > b.ref.key ? 1 : 0));
  const byNamespace = new Map<string, Rule[]>();
  const unpinned: Rule[] = [];
  let hasNamedPorts = false;
  for (const p of sorted) {
    for (const rule of p.rules) {
      const ns = pinnedNamespace(rule);
      if (ns === undefined) unpinned.push(rule);
      else {
        const list = byNamespace.get(ns);
        if (list === undefined) byNamespace.set(ns, [rule]);
        else list.push(rule);
      }
      if (!hasNamedPorts) {
        for (const el of [...rule.ingress, ...rule.egress]) {
          if (el.l4?.some((pm) => pm.name !== undefined)) hasNamedPorts = true;
        }
      }
    }
  }
  // Memo of selected rules per label set: grows with use up to SELECTION_MEMO_MAX, dropped with the
  // snapshot. Eviction is oldest-first (Map order): hits cost a lookup only, no reordering.
  const memo = new Map<string, Selected>();
  const selecting = (labels: LabelSet, direction: Direction): readonly Rule[] => {
    let hit = memo.get(labels.canonical);
    if (hit === undefined) {
      const ns = labels.bySourceKey.get(NS_KEY);
      const candidates = [...(ns === undefined ? [] : (byNamespace.get(ns) ?? [])), ...unpinned];
      const matching = candidates.filter((r) => selectorMatches(r.subject, labels)).sort(compareRules);
      hit = {
        ingress: Object.freeze(matching.filter((r) => r.ingress.length > 0 || r.defaultDeny.ingress)),
        egress: Object.freeze(matching.filter((r) => r.egress.length > 0 || r.defaultDeny.egress)),
      };
      if (memo.size >= SELECTION_MEMO_MAX) memo.delete(memo.keys().next().value as string);
      memo.set(labels.canonical, hit);
    }
    return hit[direction];
  };
  return Object.freeze({
    revision: opts.revision ?? 0,
    clusterName: opts.clusterName ?? DEFAULT_CLUSTER_NAME,
    policies: Object.freeze(sorted),
    issues: Object.freeze([...(opts.issues ?? [])]),
    hasNamedPorts,
    selecting,
  });
}
