// The program that runs ward: dist/cli/main.js, the ahead-of-time build of src/ that bin/ward runs
// (scripts/build-dist.mjs). The lab, the namespace tests and the benchmarks start ward from it, so they
// measure and test what users run; ensureBuilt() rebuilds a dist/ that is missing or older than src/
// first, so they never run stale code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const WARD_MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const STAMP = join(ROOT, 'dist', 'BUILD');
const SRC = join(ROOT, 'src');

function newestUnder(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** True when dist/ holds a build at least as new as every file under src/. */
export function isBuilt(): boolean {
  let stamp: number;
  try {
    stamp = statSync(STAMP).mtimeMs;
  } catch {
    return false;
  }
  // An installed copy without src/ (the container image) has nothing to be older than.
  return !existsSync(SRC) || newestUnder(SRC) <= stamp;
}

/** Builds dist/ unless it is current; throws with tsc's output when the build fails. */
export function ensureBuilt(): void {
  if (isBuilt()) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-dist.mjs')], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building dist/ failed:\n${r.stdout}${r.stderr}`);
}
