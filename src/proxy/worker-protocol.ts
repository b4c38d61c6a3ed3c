// Messages between the main thread (supervisor) and worker threads. Plain, structured-cloneable data.
import type { Config } from '../config/schema.ts';
import type { WorkerCounters } from './stats.ts';

export interface WorkerInit {
  readonly workerId: number;
  readonly config: Readonly<Config>;
  readonly maxConnections: number;
}

export type ToWorker =
  | { readonly type: 'drain'; readonly deadlineMs: number }
  | { readonly type: 'counters' };

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'counters'; readonly counters: WorkerCounters }
  | { readonly type: 'drained'; readonly closedAtDeadline: number; readonly counters: WorkerCounters }
  | { readonly type: 'fatal'; readonly code: string; readonly message: string };
