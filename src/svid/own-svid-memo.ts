// The own SVIDs a source accepted from its last message, by the bytes they were parsed from. Sources send
// full snapshots (the Delegated Identity API lists every SVID of the node on each change), so a message
// mostly repeats what the last one held. An SVID whose chain and key bytes are equal to the held one's
// is the same SVID: parseOwnSvid is a pure function of those bytes, so the held result is reused and
// nothing is parsed, imported or checked again. Anything new or changed goes through parseOwnSvid, with
// every check. The memo holds exactly the SVIDs of the last message (sized by what is held, no LRU to
// thrash): each round replaces it whole.
import { parseOwnSvid, type X509Svid } from './x509-svid.ts';

export interface OwnSvidInput {
  /** As parseOwnSvid takes it: PEM text, concatenated DER, or DER per element. */
  readonly chain: Uint8Array | string | readonly Uint8Array[];
  readonly key?: Uint8Array | string | undefined;
  readonly hint?: string | undefined;
}

interface Held {
  readonly svid: X509Svid;
  /**
   * The chain as given, when it came as one value (PEM text, or bytes: concatenated DER or PEM); null
   * when it came as DER per element, which are then the held chain's own `der` bytes.
   */
  readonly chain: string | Buffer | null;
  readonly key: string | Buffer | undefined;
}

/** Parses (or reuses) one SVID of the current message; `slot` is what the source names it by. */
export type ParseOwnSvid = (slot: string, input: OwnSvidInput) => X509Svid;

/** A copy: the caller's buffer may be a slice of a larger message. */
function copy(b: Uint8Array): Buffer {
  return Buffer.from(b);
}

function sameBytes(a: string | Buffer | undefined, b: Uint8Array | string | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.byteLength && a.equals(b);
}

function sameChain(h: Held, chain: OwnSvidInput['chain']): boolean {
  if (h.chain !== null)
    return typeof chain === 'string' || chain instanceof Uint8Array ? sameBytes(h.chain, chain) : false;
  if (typeof chain === 'string' || chain instanceof Uint8Array) return false;
  const held = h.svid.chain;
  if (held.length !== chain.length) return false;
  for (let i = 0; i < chain.length; i++) {
    const der = held[i]?.der;
    const c = chain[i] as Uint8Array;
    if (der === undefined || der.length !== c.byteLength || !der.equals(c)) return false;
  }
  return true;
}

export class OwnSvidMemo {
  #held = new Map<string, Held[]>();
  #parsed = 0;
  #reused = 0;

  /**
   * Opens one message's round: `parse` reuses an SVID the last message held when its bytes are equal and
   * otherwise calls parseOwnSvid; `commit()` makes the SVIDs of this message the held ones (a refused SVID
   * is not held). A round never committed (its message threw, or was superseded) leaves the last
   * message's SVIDs held.
   */
  begin(): { readonly parse: ParseOwnSvid; commit(): void } {
    const prev = this.#held;
    const next = new Map<string, Held[]>();
    const parse: ParseOwnSvid = (slot, input) => {
      const hint = input.hint ?? '';
      const found = prev.get(slot)?.find((h) => sameChain(h, input.chain) && sameBytes(h.key, input.key));
      let held: Held;
      if (found !== undefined) {
        this.#reused++;
        held = found.svid.hint === hint ? found : { ...found, svid: { ...found.svid, hint } };
      } else {
        this.#parsed++;
        const svid = parseOwnSvid({ chain: input.chain, key: input.key, hint });
        const chain =
          typeof input.chain === 'string'
            ? input.chain
            : input.chain instanceof Uint8Array
              ? copy(input.chain)
              : null;
        const key = input.key === undefined || typeof input.key === 'string' ? input.key : copy(input.key);
        held = { svid, chain, key };
      }
      const list = next.get(slot);
      if (list === undefined) next.set(slot, [held]);
      else list.push(held);
      return held.svid;
    };
    return {
      parse,
      commit: () => {
        this.#held = next;
      },
    };
  }

  /** One round run synchronously: `fn` parses a message; when it returns, the round is committed. */
  round<T>(fn: (parse: ParseOwnSvid) => T): T {
    const r = this.begin();
    const out = fn(r.parse);
    r.commit();
    return out;
  }

  /** Forgets every held SVID (the source withdrew them). */
  clear(): void {
    this.#held = new Map();
  }

  /** SVIDs held from the last message. */
  get size(): number {
    let n = 0;
    for (const l of this.#held.values()) n += l.length;
    return n;
  }

  /** SVIDs parsed (new or changed bytes, refused ones included) and reused (equal bytes) so far. */
  stats(): { readonly parsed: number; readonly reused: number } {
    return { parsed: this.#parsed, reused: this.#reused };
  }
}
