// Filters over flow records, as `hubble observe` takes them: --from-label/--to-label (k=v, or a bare key;
// with or without a label source such as `k8s:`), --from-pod/--to-pod ([namespace/]pod-name prefix),
// --verdict. Every given filter must match (AND); several labels on one side must all match. The same
// filter travels as query parameters of the admin API's /flows (from_label, to_label, from_pod, to_pod,
// verdict; labels repeatable).
import type { FlowEndpoint, FlowRecord, FlowVerdict } from './flow.ts';

export interface FlowFilter {
  readonly fromLabels: readonly string[];
  readonly toLabels: readonly string[];
  readonly fromPod?: string | undefined;
  readonly toPod?: string | undefined;
  readonly verdict?: FlowVerdict | undefined;
}

export const EMPTY_FILTER: FlowFilter = { fromLabels: [], toLabels: [] };

export class FlowFilterError extends Error {
  readonly code = 'OBS_BAD_FILTER';
}

const LABEL = /^(?:[A-Za-z0-9_.-]+:)?[A-Za-z0-9_./-]+(?:=[A-Za-z0-9_.-]*)?$/;
const POD = /^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?\/)?[a-z0-9][-a-z0-9.]*$/;

function checkLabel(l: string, flag: string): string {
  if (!LABEL.test(l))
    throw new FlowFilterError(`${flag}: not a label selector key[=value]: ${JSON.stringify(l)}`);
  return l;
}

function checkPod(p: string | null | undefined, flag: string): string | undefined {
  if (p === null || p === undefined || p === '') return undefined;
  if (!POD.test(p)) throw new FlowFilterError(`${flag}: not [namespace/]pod-name: ${JSON.stringify(p)}`);
  return p;
}

function checkVerdict(v: string | null | undefined): FlowVerdict | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const u = v.toUpperCase();
  if (u !== 'FORWARDED' && u !== 'DROPPED') {
    throw new FlowFilterError(`verdict must be FORWARDED or DROPPED (got ${JSON.stringify(v)})`);
  }
  return u;
}

export function parseFlowFilter(q: URLSearchParams): FlowFilter {
  return {
    fromLabels: q.getAll('from_label').map((l) => checkLabel(l, 'from_label')),
    toLabels: q.getAll('to_label').map((l) => checkLabel(l, 'to_label')),
    fromPod: checkPod(q.get('from_pod'), 'from_pod'),
    toPod: checkPod(q.get('to_pod'), 'to_pod'),
    verdict: checkVerdict(q.get('verdict')),
  };
}

/** The query string for a filter (the inverse of parseFlowFilter). */
export function flowFilterQuery(f: FlowFilter): URLSearchParams {
  const q = new URLSearchParams();
  for (const l of f.fromLabels) q.append('from_label', l);
  for (const l of f.toLabels) q.append('to_label', l);
  if (f.fromPod !== undefined) q.set('from_pod', f.fromPod);
  if (f.toPod !== undefined) q.set('to_pod', f.toPod);
  if (f.verdict !== undefined) q.set('verdict', f.verdict);
  return q;
}

/** Validates a filter built from command-line flags (the same rules as the query form). */
export function checkFlowFilter(f: FlowFilter): FlowFilter {
  return parseFlowFilter(flowFilterQuery(f));
}

/** `app=x` matches `k8s:app=x` and `app=x`; `k8s:app=x` only the former; a bare key matches any value. */
function labelMatches(want: string, labels: readonly string[]): boolean {
  const hasSource = /^[A-Za-z0-9_.-]+:/.test(want);
  const wantKv = want.includes('=') ? want : undefined;
  for (const have of labels) {
    const colon = have.indexOf(':');
    const bare = colon >= 0 ? have.slice(colon + 1) : have;
    const candidate = hasSource ? have : bare;
    if (wantKv !== undefined) {
      if (candidate === want) return true;
    } else {
      const eq = candidate.indexOf('=');
      if ((eq >= 0 ? candidate.slice(0, eq) : candidate) === want) return true;
    }
  }
  return false;
}

function podMatches(want: string, e: FlowEndpoint): boolean {
  if (e.pod_name === undefined) return false;
  const slash = want.indexOf('/');
  const ns = slash >= 0 ? want.slice(0, slash) : 'default';
  const prefix = slash >= 0 ? want.slice(slash + 1) : want;
  return (e.namespace ?? 'default') === ns && e.pod_name.startsWith(prefix);
}

export function flowMatches(f: FlowFilter, r: FlowRecord): boolean {
  if (f.verdict !== undefined && r.verdict !== f.verdict) return false;
  for (const l of f.fromLabels) if (!labelMatches(l, r.source.labels)) return false;
  for (const l of f.toLabels) if (!labelMatches(l, r.destination.labels)) return false;
  if (f.fromPod !== undefined && !podMatches(f.fromPod, r.source)) return false;
  if (f.toPod !== undefined && !podMatches(f.toPod, r.destination)) return false;
  return true;
}
