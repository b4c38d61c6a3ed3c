// Messages between the main thread (supervisor) and worker threads. Plain, structured-cloneable data.
import type { Config } from '../config/schema.ts';
import type { LogLevel } from '../log.ts';
import type { FlowRecord } from '../observe/flow.ts';
import type { CredentialsSnapshot } from '../svid/index.ts';
import type { ControlSnapshot } from './mesh.ts';
import type { WorkerCounters } from './stats.ts';

export interface WorkerInit {
  readonly workerId: number;
  readonly config: Readonly<Config>;
  readonly maxConnections: number;
  /** The control plane and credentials as they are when the worker starts (a replacement starts current). */
  readonly control: ControlSnapshot | null;
  readonly credentials: CredentialsSnapshot | null;
  /** The log level now (it may have been changed at run time since the config was read). */
  readonly logLevel: LogLevel;
}

export type ToWorker =
  | { readonly type: 'drain'; readonly deadlineMs: number }
  | { readonly type: 'counters' }
  | { readonly type: 'control'; readonly control: ControlSnapshot }
  | { readonly type: 'credentials'; readonly credentials: CredentialsSnapshot }
  | { readonly type: 'logging'; readonly level: LogLevel };

export type FromWorker =
  | { readonly type: 'ready' }
  | {
      readonly type: 'counters';
      readonly counters: WorkerCounters;
      readonly tunnels: { tunnels: number; streams: number };
    }
  | { readonly type: 'drained'; readonly closedAtDeadline: number; readonly counters: WorkerCounters }
  | { readonly type: 'flows'; readonly flows: readonly FlowRecord[] }
  | { readonly type: 'rechecked'; readonly closed: number }
  | { readonly type: 'fatal'; readonly code: string; readonly message: string };
