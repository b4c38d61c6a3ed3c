// The live policy: the current snapshot, a decision cache keyed by (source identity, destination
// identity, port, protocol), and listeners told about each swap. Swapping replaces the snapshot whole
// and drops the cache in the same step, so no decision ever mixes two snapshots.
import { LRUCache } from 'lru-cache';
import { type Connection, decide, type PolicyPeer, type Verdict } from './decide.ts';
import { compileSnapshot, type PolicySnapshot } from './snapshot.ts';

export interface PolicyEngine {
  /** The snapshot decisions are made against now. */
  current(): PolicySnapshot;
  /** decide() against the current snapshot, through the cache. */
  decide(c: Connection): Verdict;
  /** Replaces the snapshot and drops every cached decision. */
  swap(next: PolicySnapshot): void;
  /** Called after every swap with the new snapshot; returns an unsubscribe function. */
  onSwap(listener: (s: PolicySnapshot) => void): () => void;
  /** Cache statistics, for metrics: decisions stored (approximate after evictions), pairs, hits, misses. */
  cacheStats(): { size: number; pairs: number; hits: number; misses: number };
}

export interface PolicyEngineOptions {
  /** Source/destination pairs (and world keys) kept in the LRU caches. Default 65,536. */
  readonly cacheSize?: number;
}

/** Entries an empty decision cache starts with; it grows by 4× up to its bound as it fills. */
const INITIAL_CACHE_ENTRIES = 1024;

/**
 * An LRU cache that starts small and grows to `bound` as it fills. lru-cache allocates its slot arrays
 * for `max` at construction (about 1.4 MiB at 65,536), which an idle node, and every snapshot swap,
 * would pay in full. Growing copies the entries oldest first, so the order of use carries over.
 */
class GrowingLru<K extends {}, V extends {}> {
  readonly #bound: number;
  #lru: LRUCache<K, V>;

  constructor(bound: number) {
    this.#bound = bound;
    this.#lru = new LRUCache<K, V>({ max: Math.min(bound, INITIAL_CACHE_ENTRIES) });
  }

  get size(): number {
    return this.#lru.size;
  }

  get(k: K): V | undefined {
    return this.#lru.get(k);
  }

  set(k: K, v: V): void {
    const lru = this.#lru;
    if (lru.size >= lru.max && lru.max < this.#bound && !lru.has(k)) {
      const bigger = new LRUCache<K, V>({ max: Math.min(this.#bound, lru.max * 4) });
      lru.rforEach((value, key) => bigger.set(key, value));
      this.#lru = bigger;
    }
    this.#lru.set(k, v);
  }
}

function peerKey(p: PolicyPeer): string {
  // World peers have no identity of their own here: CIDR rules decide on the address.
  return p.kind === 'world' ? `w${p.ip ?? ''}` : String(p.identity);
}

const PROTO_INDEX: Readonly<Record<string, number>> = { TCP: 0, UDP: 1, SCTP: 2 };
/** Identities are below 2^24, so (src, dst) packs into one safe integer. */
const ID_SPAN = 16_777_216;

export function createPolicyEngine(initial?: PolicySnapshot, opts: PolicyEngineOptions = {}): PolicyEngine {
  const max = opts.cacheSize ?? 65_536;
  let snapshot = initial ?? compileSnapshot([]);
  // Pod/reserved pairs: (src, dst) as a number → (port, protocol) → verdict. World peers and
  // named-port destinations: a string key.
  let pairs = new GrowingLru<number, Map<number, Verdict>>(max);
  let other = new GrowingLru<string, Verdict>(max);
  let size = 0;
  const listeners = new Set<(s: PolicySnapshot) => void>();
  let hits = 0;
  let misses = 0;
  return {
    current: () => snapshot,
    decide(c: Connection): Verdict {
      const { src, dst } = c;
      if (
        src.kind !== 'world' &&
        dst.kind !== 'world' &&
        !(snapshot.hasNamedPorts && dst.namedPortsKey !== undefined)
      ) {
        const pk = src.identity * ID_SPAN + dst.identity;
        const ppk = c.dport * 4 + (PROTO_INDEX[c.protocol] ?? 3);
        let m = pairs.get(pk);
        const hit = m?.get(ppk);
        if (hit !== undefined) {
          hits++;
          return hit;
        }
        misses++;
        const v = decide(c, snapshot);
        if (m === undefined) {
          m = new Map();
          pairs.set(pk, m);
        }
        // Bound the per-pair map too: a pair rarely talks on many ports.
        if (m.size >= 256) m.clear();
        m.set(ppk, v);
        size++;
        return v;
      }
      let key = `${peerKey(src)}>${peerKey(dst)}:${c.dport}/${c.protocol}`;
      if (snapshot.hasNamedPorts && dst.namedPortsKey !== undefined) key += `#${dst.namedPortsKey}`;
      const hit = other.get(key);
      if (hit !== undefined) {
        hits++;
        return hit;
      }
      misses++;
      const v = decide(c, snapshot);
      other.set(key, v);
      size++;
      return v;
    },
    swap(next: PolicySnapshot): void {
      snapshot = next;
      pairs = new GrowingLru<number, Map<number, Verdict>>(max);
      other = new GrowingLru<string, Verdict>(max);
      size = 0;
      for (const l of listeners) l(next);
    },
    onSwap(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    cacheStats: () => ({
      size: Math.min(size, pairs.size * 256 + other.size),
      pairs: pairs.size,
      hits,
      misses,
    }),
  };
}
