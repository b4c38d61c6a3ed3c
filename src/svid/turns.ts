// Long synchronous work on the main thread, written once as a generator that yields between items and
// run either at once or in turns of the event loop. The main thread answers the probes, the admin API and
// the control plane; a Delegated Identity API message that rotates thousands of SVIDs at once (a SPIRE
// agent restarting on a full node) is seconds of parsing, and run at once it would hold the loop past
// observe.livenessMaxLag. In turns, it holds the loop at most about TURN_BUDGET_MS (plus one item) at a
// time.

/** How long one turn may run before the work yields to the event loop. */
export const TURN_BUDGET_MS = 10;

/** Steps that yield (nothing) between items and return the result. */
export type Steps<T> = Generator<void, T, void>;

/** Runs every step now, in this turn. */
export function runAtOnce<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
  }
}

/** Runs the steps, yielding to the event loop (setImmediate) whenever a turn has run `budgetMs`. */
export async function runInTurns<T>(steps: Steps<T>, budgetMs: number = TURN_BUDGET_MS): Promise<T> {
  let started = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    if (performance.now() - started >= budgetMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      started = performance.now();
    }
  }
}
