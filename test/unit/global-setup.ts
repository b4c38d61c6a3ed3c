// Before the unit suite runs: tests run bin/ward as a user does, and bin/ward runs dist/, the build of
// src/; rebuild it when it is older than src/ so the tests never run stale code.
import { ensureBuilt } from '../../src/lab/ward-entry.ts';

export default function setup(): void {
  ensureBuilt();
}
