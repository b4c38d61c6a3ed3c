// Before the namespace suite runs: remove leftovers of earlier, crashed runs (namespaces ward-t*,
// their processes). Every test file also removes what it made in its afterAll hook.
import { Lab } from '../../src/lab/lab.ts';
import { listNamespaces } from '../../src/lab/netns.ts';
import { ensureBuilt } from '../../src/lab/ward-entry.ts';

export default function setup(): () => void {
  if (process.getuid?.() !== 0) {
    throw new Error('the netns suite builds network namespaces and needs root (CI runs it as root)');
  }
  const sweep = () => {
    for (const ns of listNamespaces().filter((n) => /^ward-t[a-z0-9]*-/.test(n))) {
      Lab.destroyByName(ns.slice('ward-'.length).split('-')[0] ?? '');
    }
  };
  sweep();
  // The labs start ward from dist/ (src/lab/ward-entry.ts).
  ensureBuilt();
  return sweep;
}
