// Kubernetes' own field rules (K:staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go,
// K:…/apimachinery/pkg/apis/meta/v1/validation), shared by the CNP checks and the NetworkPolicy schema.
import type { SchemaIssue } from './openapi-validate.ts';
import { joinPath } from './openapi-validate.ts';

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** IsQualifiedName: `[prefix/]name`, name ≤ 63 chars, prefix a DNS subdomain ≤ 253. */
export function qualifiedNameError(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `"${key}" is not a qualified name (at most one "/")`;
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  const prefix = parts.length === 2 ? parts[0]! : undefined;
  if (
    prefix !== undefined &&
    (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))
  ) {
    return `"${key}": prefix must be a DNS subdomain`;
  }
  if (name.length === 0 || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return `"${key}" is not a qualified name (alphanumerics, '-', '_', '.', at most 63, starting and ending alphanumeric)`;
  }
  return undefined;
}

export function labelValueError(v: string): string | undefined {
  if (v.length > 63 || !LABEL_VALUE.test(v)) return `"${v}" is not a valid label value`;
  return undefined;
}

export function dnsSubdomainError(v: string): string | undefined {
  if (v.length === 0 || v.length > 253 || !DNS1123_SUBDOMAIN.test(v)) {
    return `"${v}" is not a DNS-1123 subdomain (lower-case alphanumerics, '-', '.')`;
  }
  return undefined;
}

export function dnsLabelError(v: string): string | undefined {
  if (v.length === 0 || v.length > 63 || !DNS1123_LABEL.test(v)) return `"${v}" is not a DNS-1123 label`;
  return undefined;
}

/** IsValidPortName (IANA service name): 1–15 chars, a–z 0–9 '-', a letter, no leading/trailing/double '-'. */
export function portNameError(v: string): string | undefined {
  if (v.length === 0 || v.length > 15) return `port name "${v}" must be 1-15 characters`;
  if (!/^[a-z0-9-]+$/.test(v)) return `port name "${v}" may contain only a-z, 0-9 and '-'`;
  if (!/[a-z]/.test(v)) return `port name "${v}" must contain a letter`;
  if (v.startsWith('-') || v.endsWith('-') || v.includes('--')) {
    return `port name "${v}" must not begin or end with '-' or contain '--'`;
  }
  return undefined;
}

export interface RawSelector {
  matchLabels?: Record<string, unknown>;
  matchExpressions?: { key?: unknown; operator?: unknown; values?: unknown }[];
}

/**
 * ValidateLabelSelector: In/NotIn need values, Exists/DoesNotExist must have none; keys are qualified
 * names (after a Cilium `source:` prefix when `allowSource`).
 */
export function validateLabelSelector(
  sel: RawSelector,
  path: string,
  issues: SchemaIssue[],
  allowSource: boolean,
): void {
  const keyError = (raw: string): string | undefined => {
    let key = raw;
    if (allowSource) {
      if (key.startsWith('$')) key = key.slice(1);
      const i = key.indexOf(':');
      if (i >= 0) key = key.slice(i + 1);
    }
    return qualifiedNameError(key);
  };
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    const e = keyError(k);
    if (e !== undefined) issues.push({ path: joinPath(joinPath(path, 'matchLabels'), k), message: e });
    if (typeof v === 'string') {
      const ve = labelValueError(v);
      if (ve !== undefined) issues.push({ path: joinPath(joinPath(path, 'matchLabels'), k), message: ve });
    }
  }
  (sel.matchExpressions ?? []).forEach((e, i) => {
    const p = joinPath(joinPath(path, 'matchExpressions'), i);
    if (typeof e.key === 'string') {
      const ke = keyError(e.key);
      if (ke !== undefined) issues.push({ path: joinPath(p, 'key'), message: ke });
    }
    const values = Array.isArray(e.values) ? e.values : [];
    if ((e.operator === 'In' || e.operator === 'NotIn') && values.length === 0) {
      issues.push({
        path: joinPath(p, 'values'),
        message: `must be specified when operator is ${e.operator}`,
      });
    }
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && values.length > 0) {
      issues.push({
        path: joinPath(p, 'values'),
        message: `may not be specified when operator is ${e.operator}`,
      });
    }
    values.forEach((v, j) => {
      if (typeof v === 'string') {
        const ve = labelValueError(v);
        if (ve !== undefined) issues.push({ path: joinPath(joinPath(p, 'values'), j), message: ve });
      }
    });
  });
}

const META_FIELDS = new Set([
  'name',
  'namespace',
  'labels',
  'annotations',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'ownerReferences',
  'finalizers',
  'generateName',
  'selfLink',
]);

/** ObjectMeta as the API server checks it for a policy: name, namespace, labels, no unknown fields. */
export function validateMetadata(meta: unknown, namespaced: boolean, issues: SchemaIssue[]): void {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) {
    issues.push({ path: 'metadata', message: 'is required and must be an object' });
    return;
  }
  const m = meta as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (!META_FIELDS.has(k)) issues.push({ path: `metadata.${k}`, message: `unknown field "${k}"` });
  }
  if (typeof m.name !== 'string') issues.push({ path: 'metadata.name', message: 'is required' });
  else {
    const e = dnsSubdomainError(m.name);
    if (e !== undefined) issues.push({ path: 'metadata.name', message: e });
  }
  if (m.namespace !== undefined && m.namespace !== null) {
    if (typeof m.namespace !== 'string')
      issues.push({ path: 'metadata.namespace', message: 'must be a string' });
    else if (namespaced) {
      const e = dnsLabelError(m.namespace);
      if (e !== undefined) issues.push({ path: 'metadata.namespace', message: e });
    }
  }
  for (const field of ['labels', 'annotations'] as const) {
    const v = m[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'object' || Array.isArray(v)) {
      issues.push({ path: `metadata.${field}`, message: 'must be a map of strings' });
      continue;
    }
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string')
        issues.push({ path: `metadata.${field}.${k}`, message: 'must be a string' });
      const ke = qualifiedNameError(k);
      if (ke !== undefined) issues.push({ path: `metadata.${field}.${k}`, message: ke });
      if (field === 'labels' && typeof val === 'string') {
        const ve = labelValueError(val);
        if (ve !== undefined) issues.push({ path: `metadata.labels.${k}`, message: ve });
      }
    }
  }
}
