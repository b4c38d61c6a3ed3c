// The inventory file, re-read when it changes. An unreadable or invalid version never replaces the
// last good inventory: the error is logged and the previous one stays.
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { componentLogger, type Logger } from '../log.ts';
import { Listeners } from '../policy/source.ts';
import type { Inventory } from './inventory.ts';
import { loadInventoryFile } from './inventory-file.ts';

export interface InventorySource {
  /** Resolves after the first inventory is loaded; rejects if the file is bad at start (fail closed). */
  start(): Promise<void>;
  current(): Inventory | undefined;
  onInventory(listener: (inv: Inventory) => void): () => void;
  /** The last error, if the newest version of the file was rejected. */
  lastError(): Error | undefined;
  reload(): Promise<void>;
  close(): Promise<void>;
}

export function createFileInventorySource(opts: {
  readonly file: string;
  readonly localNode?: string;
  readonly debounce?: number;
  readonly logger?: Logger;
}): InventorySource {
  const log = opts.logger ?? componentLogger('inventory-file');
  const listeners = new Listeners<Inventory>();
  let current: Inventory | undefined;
  let error: Error | undefined;
  let revision = 0;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function reload(): Promise<void> {
    try {
      const inv = await loadInventoryFile(opts.file, opts.localNode, revision + 1);
      revision++;
      current = inv;
      error = undefined;
      log.info({ revision, workloads: inv.workloads().length }, 'inventory loaded');
      listeners.emit(inv);
    } catch (err) {
      error = err as Error;
      if (current === undefined) throw err;
      log.error({ err: error.message }, 'inventory file rejected; keeping the last good inventory');
    }
  }

  return {
    async start() {
      await reload();
      watcher = watch(dirname(opts.file), (_e, name) => {
        if (name !== null && name !== basename(opts.file)) return;
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => {
          timer = undefined;
          reload().catch(() => {});
        }, opts.debounce ?? 200);
      });
    },
    current: () => current,
    onInventory: (l) => listeners.add(l),
    lastError: () => error,
    reload,
    async close() {
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
    },
  };
}
