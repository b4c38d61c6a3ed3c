// A policy source publishes whole snapshots; the engine swaps them in. Listener API in the grpc-js
// certificate-provider style: `undefined` until the first snapshot is known.
import type { PolicySnapshot } from './snapshot.ts';

export interface PolicySource {
  /** Resolves once the first snapshot is published (or rejects if the source cannot start). */
  start(): Promise<void>;
  /** The last snapshot published; undefined before the first. */
  current(): PolicySnapshot | undefined;
  /** Called with every new snapshot; returns an unsubscribe function. */
  onSnapshot(listener: (s: PolicySnapshot) => void): () => void;
  close(): Promise<void>;
}

export class Listeners<T> {
  readonly #set = new Set<(v: T) => void>();
  add(l: (v: T) => void): () => void {
    this.#set.add(l);
    return () => {
      this.#set.delete(l);
    };
  }
  emit(v: T): void {
    for (const l of this.#set) l(v);
  }
}
