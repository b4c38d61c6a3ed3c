// One coarse timer per worker for every connection's connect and idle deadlines (no timer per socket),
// and a coarse clock that the hot path reads instead of calling Date.now() per chunk.
export interface Sweepable {
  /** Coarse time of the last byte seen in either direction. */
  lastActive: number;
  /** While connecting upstream: the coarse time by which the connect must finish; 0 once connected. */
  connectDeadline: number;
  onConnectTimeout(): void;
  onIdleTimeout(): void;
}

export class Sweeper {
  /** Milliseconds since the epoch, updated on every tick. */
  now = Date.now();
  readonly #items = new Set<Sweepable>();
  readonly #idleMs: number;
  readonly #timer: NodeJS.Timeout;

  constructor(idleMs: number, connectMs: number) {
    this.#idleMs = idleMs;
    const tick = Math.min(1000, Math.max(50, Math.floor(Math.min(idleMs, connectMs) / 4)));
    this.#timer = setInterval(() => this.sweep(), tick);
    this.#timer.unref();
  }

  get size(): number {
    return this.#items.size;
  }

  add(item: Sweepable): void {
    this.#items.add(item);
  }

  delete(item: Sweepable): void {
    this.#items.delete(item);
  }

  sweep(): void {
    const now = Date.now();
    this.now = now;
    const idleBefore = now - this.#idleMs;
    for (const item of this.#items) {
      if (item.connectDeadline !== 0) {
        if (now >= item.connectDeadline) item.onConnectTimeout();
      } else if (item.lastActive <= idleBefore) {
        item.onIdleTimeout();
      }
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
