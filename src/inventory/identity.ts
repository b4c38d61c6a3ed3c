// Numeric security identities without a Cilium to allocate them, and SPIFFE IDs that follow from them.
//
// Rule (docs/policy.md "Numeric identities"): for a set of security labels L in cluster C (cluster id
// 0..255), the home slot is
//     local(L) = 256 + (first 32 bits of SHA-256(canonical(L)) mod 65280)            ∈ [256, 65535]
//     id(L)    = (C << 16) | local(L)
// where canonical(L) is the sorted `source:key=value` lines joined by ';'. This is Cilium's range for
// cluster-scoped identities (ids below 256 are reserved; 2^24 and above are node-local CIDR identities).
// Label sets whose home slots collide are resolved deterministically: all label sets the inventory knows
// are ordered by (home slot, canonical) and each takes the first free slot from its home, wrapping inside
// [256, 65535]. Identities pinned by Cilium (CiliumIdentity / CiliumEndpoint) or by the inventory file
// are placed first and never move. Every node that sees the same inventory computes the same numbers.
import { createHash } from 'node:crypto';
import type { LabelSet } from '../policy/labels.ts';

export const MIN_CLUSTER_LOCAL_IDENTITY = 256;
export const MAX_CLUSTER_LOCAL_IDENTITY = 65535;
/** Identities at or above this are node-local (CIDR) in Cilium. */
export const LOCAL_IDENTITY_FLAG = 1 << 24;
const SLOTS = MAX_CLUSTER_LOCAL_IDENTITY - MIN_CLUSTER_LOCAL_IDENTITY + 1;

export function homeSlot(labels: LabelSet): number {
  const h = createHash('sha256').update(labels.canonical).digest();
  return MIN_CLUSTER_LOCAL_IDENTITY + (h.readUInt32BE(0) % SLOTS);
}

/** Whether `id` may name a cluster-scoped identity (not reserved, not node-local). */
export function isClusterIdentity(id: number): boolean {
  return Number.isInteger(id) && id >= MIN_CLUSTER_LOCAL_IDENTITY && id < LOCAL_IDENTITY_FLAG;
}

/**
 * Assigns numeric identities to label sets. `pinned` maps canonical labels to ids fixed elsewhere.
 * Returns canonical → id for every set given.
 */
export function assignIdentities(
  sets: Iterable<LabelSet>,
  clusterId: number,
  pinned: ReadonlyMap<string, number> = new Map(),
): Map<string, number> {
  if (!Number.isInteger(clusterId) || clusterId < 0 || clusterId > 255) {
    throw new RangeError(`cluster id must be 0..255 (got ${clusterId})`);
  }
  const out = new Map<string, number>();
  const taken = new Set<number>();
  for (const [canonical, id] of pinned) {
    out.set(canonical, id);
    taken.add(id);
  }
  const unique = new Map<string, LabelSet>();
  for (const s of sets) if (!out.has(s.canonical)) unique.set(s.canonical, s);
  const ordered = [...unique.values()]
    .map((s) => ({ s, home: homeSlot(s) }))
    .sort(
      (a, b) =>
        a.home - b.home || (a.s.canonical < b.s.canonical ? -1 : a.s.canonical > b.s.canonical ? 1 : 0),
    );
  const base = clusterId << 16;
  for (const { s, home } of ordered) {
    let slot = home;
    for (let n = 0; n < SLOTS; n++) {
      if (!taken.has(base | slot)) break;
      slot = slot === MAX_CLUSTER_LOCAL_IDENTITY ? MIN_CLUSTER_LOCAL_IDENTITY : slot + 1;
    }
    if (taken.has(base | slot)) throw new RangeError('no free cluster-local identity left (65280 in use)');
    taken.add(base | slot);
    out.set(s.canonical, base | slot);
  }
  return out;
}

export type SpiffeScheme = 'identity' | 'ns-sa';
export const DEFAULT_TRUST_DOMAIN = 'spiffe.cilium';

/**
 * The SPIFFE ID of a workload: Cilium's `spiffe://<td>/identity/<numeric id>` (default), or
 * `spiffe://<td>/ns/<namespace>/sa/<service account>`. Formatting only; src/svid parses and checks.
 */
export function spiffeIdFor(
  w: { readonly identity: number; readonly namespace: string; readonly serviceAccount: string },
  scheme: SpiffeScheme = 'identity',
  trustDomain: string = DEFAULT_TRUST_DOMAIN,
): string {
  if (!/^[a-z0-9._-]+$/.test(trustDomain)) throw new TypeError(`not a SPIFFE trust domain: ${trustDomain}`);
  if (scheme === 'identity') return `spiffe://${trustDomain}/identity/${w.identity}`;
  return `spiffe://${trustDomain}/ns/${encodeURIComponent(w.namespace)}/sa/${encodeURIComponent(w.serviceAccount)}`;
}
