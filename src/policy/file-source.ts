// Policies from a directory, re-read when it changes. A file that is half-written or invalid never
// replaces the last good policy silently: its last good version stays enforced and the problem is
// logged and kept in the snapshot's issues.
import { type FSWatcher, watch } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { componentLogger, type Logger } from '../log.ts';
import { formatIssue, type PolicyIssue } from './errors.ts';
import { expandPaths, type ParseOptions, parseDocument, splitDocuments } from './manifest.ts';
import type { Policy } from './model.ts';
import { compileSnapshot, type PolicySnapshot } from './snapshot.ts';
import { Listeners, type PolicySource } from './source.ts';

export interface FilePolicySourceOptions extends ParseOptions {
  readonly directory: string;
  /** Quiet time after a change before re-reading (ms). Default 200. */
  readonly debounce?: number;
  readonly logger?: Logger;
}

interface FileState {
  readonly mtimeMs: number;
  readonly size: number;
  /** Last good version of each policy this file defined, by key. */
  readonly policies: ReadonlyMap<string, Policy>;
}

export function createFilePolicySource(
  opts: FilePolicySourceOptions,
): PolicySource & { reload(): Promise<void> } {
  const log = opts.logger ?? componentLogger('policy-files');
  const listeners = new Listeners<PolicySnapshot>();
  let files = new Map<string, FileState>();
  let current: PolicySnapshot | undefined;
  let revision = 0;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let closed = false;

  async function readStable(file: string): Promise<{ text: string; mtimeMs: number; size: number }> {
    // A file still being written changes between two looks: read until size and mtime hold still.
    for (let i = 0; ; i++) {
      const before = await stat(file);
      const text = await readFile(file, 'utf8');
      const after = await stat(file);
      if ((before.mtimeMs === after.mtimeMs && before.size === after.size) || i >= 4) {
        return { text, mtimeMs: after.mtimeMs, size: after.size };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function load(): Promise<void> {
    const issues: PolicyIssue[] = [];
    const next = new Map<string, FileState>();
    let paths: string[] = [];
    try {
      paths = await expandPaths([opts.directory]);
    } catch (err) {
      issues.push({
        file: opts.directory,
        document: 0,
        path: '',
        message: `cannot list: ${(err as Error).message}; keeping the last good policies`,
        severity: 'error',
      });
      for (const [f, s] of files) next.set(f, s);
    }
    for (const file of paths) {
      const prev = files.get(file);
      let read: { text: string; mtimeMs: number; size: number };
      try {
        read = await readStable(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        issues.push({
          file,
          document: 0,
          path: '',
          message: `cannot read: ${(err as Error).message}`,
          severity: 'error',
        });
        if (prev !== undefined) next.set(file, prev);
        continue;
      }
      const split = splitDocuments(file, read.text);
      if (split.issues.length > 0) {
        // Not parseable as a whole (half-written, a syntax error): keep the whole last good version.
        for (const i of split.issues) {
          issues.push({
            ...i,
            message: `${i.message}${prev === undefined ? '' : '; keeping the last good version of this file'}`,
          });
        }
        if (prev !== undefined) next.set(file, prev);
        continue;
      }
      const policies = new Map<string, Policy>();
      for (const d of split.docs) {
        const { result, issues: is } = parseDocument(d, opts);
        const p = result?.policy;
        if (p !== undefined) {
          policies.set(p.ref.key, p);
          issues.push(...is);
          continue;
        }
        // An invalid document: keep its last good version if this file had one under the same name.
        const key = prev === undefined ? undefined : keyOf(d.value, opts.defaultNamespace ?? 'default');
        const kept = key === undefined ? undefined : prev?.policies.get(key);
        for (const i of is) {
          issues.push(
            kept === undefined || i.severity !== 'error'
              ? i
              : { ...i, message: `${i.message}; keeping the last good version of ${kept.ref.key}` },
          );
        }
        if (kept !== undefined && key !== undefined) policies.set(key, kept);
      }
      next.set(file, { mtimeMs: read.mtimeMs, size: read.size, policies });
    }
    // Duplicates across files: the first file (sorted) wins, as in parseDocuments.
    const all = new Map<string, Policy>();
    for (const [file, s] of [...next.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const p of s.policies.values()) {
        const first = all.get(p.ref.key);
        if (first === undefined) all.set(p.ref.key, p);
        else {
          issues.push({
            file,
            document: p.ref.document,
            path: 'metadata.name',
            message: `${p.ref.key} is defined twice; keeping the one in ${first.ref.file}#${first.ref.document}`,
            severity: 'error',
            policy: p.ref.key,
          });
        }
      }
    }
    files = next;
    for (const i of issues) {
      if (i.severity === 'error') log.error({ issue: formatIssue(i) }, 'policy rejected');
      else log.warn({ issue: formatIssue(i) }, 'policy warning');
    }
    revision++;
    current = compileSnapshot([...all.values()], { revision, clusterName: opts.clusterName, issues });
    log.info(
      { revision, policies: all.size, errors: issues.filter((i) => i.severity === 'error').length },
      'policy snapshot',
    );
    listeners.emit(current);
  }

  function reload(): Promise<void> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again && !closed);
      } finally {
        running = undefined;
      }
    })();
    return running;
  }

  function schedule(): void {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      reload().catch((err: unknown) => log.error({ err }, 'policy reload failed'));
    }, opts.debounce ?? 200);
  }

  return {
    async start() {
      await reload();
      watcher = watch(opts.directory, { recursive: true }, schedule);
      watcher.on('error', (err) => log.error({ err }, 'watching the policy directory failed'));
    },
    current: () => current,
    onSnapshot: (l) => listeners.add(l),
    reload,
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      await running;
    },
  };
}

function keyOf(v: unknown, defaultNamespace: string): string | undefined {
  const o = v as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
  if (
    o === null ||
    typeof o !== 'object' ||
    typeof o.kind !== 'string' ||
    typeof o.metadata?.name !== 'string'
  )
    return undefined;
  if (o.kind === 'CiliumClusterwideNetworkPolicy') return `${o.kind}/${o.metadata.name}`;
  const ns =
    typeof o.metadata.namespace === 'string' && o.metadata.namespace !== ''
      ? o.metadata.namespace
      : defaultNamespace;
  return `${o.kind}/${ns}/${o.metadata.name}`;
}
