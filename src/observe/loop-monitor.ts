// Event-loop lag of the main thread, measured with one timer: each tick records how late it fired. A
// stall longer than the threshold makes liveness fail until it is older than the window, so a probe that
// arrives once the loop runs again still sees it (a probe during the stall gets no answer at all).
export interface LoopMonitorOptions {
  readonly intervalMs?: number;
  /** Lag above which the loop counts as stalled. */
  readonly maxLagMs: number;
  /** How long a stall keeps liveness failing. */
  readonly windowMs: number;
  readonly now?: () => number;
}

export class LoopMonitor {
  readonly intervalMs: number;
  readonly maxLagMs: number;
  readonly windowMs: number;
  readonly #now: () => number;
  #expected = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastLagMs = 0;
  /** (time, lag) of ticks with a lag above the threshold, newest last; pruned to the window. */
  #stalls: { at: number; lagMs: number }[] = [];

  constructor(opts: LoopMonitorOptions) {
    this.intervalMs = opts.intervalMs ?? 250;
    this.maxLagMs = opts.maxLagMs;
    this.windowMs = opts.windowMs;
    this.#now = opts.now ?? (() => performance.now() + performance.timeOrigin);
  }

  start(): void {
    this.#expected = this.#now() + this.intervalMs;
    this.#timer = setInterval(() => this.tick(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One timer tick (public for tests): the lag is how late it came. */
  tick(): void {
    const now = this.#now();
    const lag = Math.max(0, now - this.#expected);
    this.#expected = now + this.intervalMs;
    this.#lastLagMs = lag;
    if (lag > this.maxLagMs) this.#stalls.push({ at: now, lagMs: lag });
    this.#prune(now);
  }

  #prune(now: number): void {
    while (this.#stalls.length > 0 && now - (this.#stalls[0]?.at ?? now) > this.windowMs)
      this.#stalls.shift();
  }

  /** The lag of the last tick, seconds. */
  get lastLagSeconds(): number {
    return this.#lastLagMs / 1000;
  }

  /** Also accounts for a stall still in progress: the loop is answering now, but was it late? */
  status(): { live: boolean; maxLagMs: number; thresholdMs: number; lastStallAt?: string | undefined } {
    const now = this.#now();
    this.#prune(now);
    const pending = this.#timer === undefined ? 0 : Math.max(0, now - this.#expected);
    const worst = Math.max(pending, ...this.#stalls.map((s) => s.lagMs));
    const last = this.#stalls.at(-1);
    return {
      live: worst <= this.maxLagMs,
      maxLagMs: Math.round(worst),
      thresholdMs: this.maxLagMs,
      lastStallAt: last === undefined ? undefined : new Date(last.at).toISOString(),
    };
  }
}
