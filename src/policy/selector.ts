// Endpoint selectors (reference §1.3, §1.4): Kubernetes LabelSelector semantics over security labels,
// with Cilium's key sources. Compiled once; matching is a loop over a few requirements.
import { type LabelSet, SOURCE_ANY, SOURCE_RESERVED } from './labels.ts';

export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  /** `any` matches the key under every source (§1.3: "A key with no source prefix … is stored as any:app"). */
  readonly source: string;
  readonly key: string;
  readonly op: Operator;
  readonly values: readonly string[];
}

export interface Selector {
  /** ANDed (§1.4: "matchLabels entries and matchExpressions entries are ANDed together"). */
  readonly requirements: readonly Requirement[];
  /** Human form for traces, e.g. `k8s:app=client1, k8s:io.kubernetes.pod.namespace=default`. */
  readonly text: string;
}

export interface RawLabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?:
    | readonly {
        readonly key: string;
        readonly operator: string;
        readonly values?: readonly string[] | undefined;
      }[]
    | undefined;
}

/**
 * Splits a selector key into source and key, as C:pkg/labels/labels.go `GetExtendedKeyFrom` does:
 * `k8s:app` → (k8s, app); `app` → (any, app); `$host` → (reserved, host).
 */
export function parseSelectorKey(raw: string): { source: string; key: string } {
  if (raw.startsWith('$')) return { source: SOURCE_RESERVED, key: raw.slice(1) };
  const i = raw.indexOf(':');
  if (i < 0) return { source: SOURCE_ANY, key: raw };
  return { source: raw.slice(0, i), key: raw.slice(i + 1) };
}

export function requirementText(r: Requirement): string {
  const k = `${r.source}:${r.key}`;
  switch (r.op) {
    case 'In':
      return r.values.length === 1 ? `${k}=${r.values[0]}` : `${k} in (${r.values.join(',')})`;
    case 'NotIn':
      return `${k} notin (${r.values.join(',')})`;
    case 'Exists':
      return k;
    case 'DoesNotExist':
      return `!${k}`;
  }
}

export function makeSelector(requirements: readonly Requirement[]): Selector {
  const reqs = Object.freeze([...requirements]);
  return Object.freeze({
    requirements: reqs,
    text: reqs.length === 0 ? '{}' : reqs.map(requirementText).join(', '),
  });
}

/** Compiles a validated LabelSelector; `source` is the source unprefixed keys get (`any` for Cilium, `k8s` for KNP). */
export function compileLabelSelector(
  sel: RawLabelSelector,
  defaultSource: string = SOURCE_ANY,
): Requirement[] {
  const out: Requirement[] = [];
  for (const [rawKey, value] of Object.entries(sel.matchLabels ?? {})) {
    const k = keyWithDefault(rawKey, defaultSource);
    out.push({ source: k.source, key: k.key, op: 'In', values: [value] });
  }
  for (const e of sel.matchExpressions ?? []) {
    const k = keyWithDefault(e.key, defaultSource);
    out.push({ source: k.source, key: k.key, op: e.operator as Operator, values: [...(e.values ?? [])] });
  }
  return out;
}

function keyWithDefault(raw: string, defaultSource: string): { source: string; key: string } {
  const k = parseSelectorKey(raw);
  return raw.includes(':') || raw.startsWith('$') ? k : { source: defaultSource, key: k.key };
}

function valuesOf(labels: LabelSet, source: string, key: string): readonly string[] | undefined {
  if (source === SOURCE_ANY) return labels.byKey.get(key);
  const v = labels.bySourceKey.get(`${source}:${key}`);
  return v === undefined ? undefined : [v];
}

/** §1.4: In = present and in the set; NotIn = absent or not in the set; Exists; DoesNotExist. */
export function requirementMatches(r: Requirement, labels: LabelSet): boolean {
  const values = valuesOf(labels, r.source, r.key);
  switch (r.op) {
    case 'In':
      return values?.some((v) => r.values.includes(v)) === true;
    case 'NotIn':
      return values === undefined || !values.some((v) => r.values.includes(v));
    case 'Exists':
      return values !== undefined;
    case 'DoesNotExist':
      return values === undefined;
  }
}

export function selectorMatches(s: Selector, labels: LabelSet): boolean {
  for (const r of s.requirements) if (!requirementMatches(r, labels)) return false;
  return true;
}

/** Whether the selector has a requirement on `key` under source k8s or any (§2.2 `HasKey`). */
export function hasKey(reqs: readonly Requirement[], key: string): boolean {
  return reqs.some((r) => (r.source === 'k8s' || r.source === SOURCE_ANY) && r.key === key);
}

export function hasKeyPrefix(reqs: readonly Requirement[], prefix: string): boolean {
  return reqs.some((r) => (r.source === 'k8s' || r.source === SOURCE_ANY) && r.key.startsWith(prefix));
}
