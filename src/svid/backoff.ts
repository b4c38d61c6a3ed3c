// Jittered exponential backoff (grpc-js backoff-timeout.ts): each delay is the previous one times
// `multiplier`, capped at `max`, then spread by ±`jitter` so that many clients do not retry in step.
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier?: number;
  /** Fraction of the delay to spread by, 0..1. */
  readonly jitter?: number;
  readonly random?: () => number;
}

export class Backoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private nextBase: number;

  constructor(options: BackoffOptions) {
    this.initialMs = options.initialMs;
    this.maxMs = Math.max(options.maxMs, options.initialMs);
    this.multiplier = options.multiplier ?? 1.6;
    this.jitter = options.jitter ?? 0.2;
    this.random = options.random ?? Math.random;
    this.nextBase = this.initialMs;
  }

  /** The next delay in ms; grows until reset(). */
  next(): number {
    const base = this.nextBase;
    this.nextBase = Math.min(base * this.multiplier, this.maxMs);
    const spread = base * this.jitter * (this.random() * 2 - 1);
    return Math.max(0, Math.round(Math.min(base + spread, this.maxMs)));
  }

  reset(): void {
    this.nextBase = this.initialMs;
  }
}
