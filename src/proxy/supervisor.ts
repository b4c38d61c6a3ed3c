// The main thread's side of the data path: N worker threads, each a DataPlane. A worker that dies is
// replaced (with backoff); counters are summed across live workers and the ones that went before.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { WardError } from '../errors.ts';
import type { LogLevel } from '../log.ts';
import type { FlowRecord } from '../observe/flow.ts';
import type { CredentialsSnapshot } from '../svid/index.ts';
import type { ControlSnapshot } from './mesh.ts';
import { emptyCounters, sumCounters, type WorkerCounters } from './stats.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
const RESTART_BASE_MS = 100;
const RESTART_MAX_MS = 5000;
const STABLE_MS = 30_000;

type SlotState = 'starting' | 'ready' | 'restarting' | 'draining' | 'stopped';

interface Slot {
  readonly index: number;
  worker: Worker | null;
  state: SlotState;
  counters: WorkerCounters;
  tunnels: { tunnels: number; streams: number };
  startedAt: number;
  restarts: number;
  consecutiveFailures: number;
}

export interface WorkerInfo {
  readonly index: number;
  readonly threadId: number | null;
  readonly state: SlotState;
  readonly restarts: number;
  readonly activeConnections: number;
}

export class WorkerStartError extends WardError {
  constructor(index: number, code: string, message: string) {
    super(code, `worker ${index} could not start: ${message}`);
  }
}

/** How long drain() waits for a stopped worker's thread to end. */
const TERMINATE_GRACE_MS = 3000;

/**
 * Whether `p` settles within `ms`. Used for a worker's drain answer and for terminate(), which resolves
 * only once Node has torn the thread's environment down; that teardown waits for every handle to close,
 * and one that never does (a socket handle Node marked closing without closing it) would otherwise hold
 * ward's shutdown, with its capture rules still in place, forever.
 */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    p.then(() => true),
    new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

export class Supervisor {
  readonly #config: Readonly<Config>;
  readonly #log: Logger;
  readonly #slots: Slot[];
  /** Counters of workers that have exited, so totals never go backwards. */
  readonly #retired: WorkerCounters = emptyCounters();
  #stopping = false;
  #unfinished = 0;
  #restartsTotal = 0;
  #control: ControlSnapshot | null = null;
  #credentials: CredentialsSnapshot | null = null;
  #logLevel: LogLevel;
  readonly #onFlows: (flows: readonly FlowRecord[]) => void;

  constructor(
    config: Readonly<Config>,
    workers: number,
    log: Logger,
    onFlows: (flows: readonly FlowRecord[]) => void = () => {},
  ) {
    this.#config = config;
    this.#log = log;
    this.#onFlows = onFlows;
    this.#logLevel = config.log.level;
    this.#slots = Array.from({ length: workers }, (_, index) => ({
      index,
      worker: null,
      state: 'starting' as SlotState,
      counters: emptyCounters(),
      tunnels: { tunnels: 0, streams: 0 },
      startedAt: 0,
      restarts: 0,
      consecutiveFailures: 0,
    }));
  }

  get restarts(): number {
    return this.#restartsTotal;
  }

  /** Starts every worker and resolves when all have bound their listeners; rejects on the first failure. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.#slots.map((slot) => this.#spawn(slot)));
    } catch (err) {
      this.#stopping = true;
      await Promise.all(this.#slots.map((s) => s.worker?.terminate()));
      throw err;
    }
  }

  #spawn(slot: Slot): Promise<void> {
    const init: WorkerInit = {
      workerId: slot.index,
      config: this.#config,
      maxConnections: Math.max(1, Math.ceil(this.#config.proxy.maxConnections / this.#slots.length)),
      control: this.#control,
      credentials: this.#credentials,
      logLevel: this.#logLevel,
    };
    const worker = new Worker(WORKER_URL, { workerData: init, name: `ward-worker-${slot.index}` });
    slot.worker = worker;
    slot.state = 'starting';
    slot.startedAt = Date.now();
    slot.counters = emptyCounters();
    return new Promise((resolve, reject) => {
      let settled = false;
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready':
            slot.state = 'ready';
            this.#log.info({ worker: slot.index, threadId: worker.threadId }, 'worker ready');
            settled = true;
            resolve();
            break;
          case 'counters':
            slot.counters = m.counters;
            slot.tunnels = m.tunnels;
            break;
          case 'drained':
            slot.counters = m.counters;
            break;
          case 'flows':
            this.#onFlows(m.flows);
            break;
          case 'rechecked':
            break;
          case 'fatal':
            settled = true;
            reject(new WorkerStartError(slot.index, m.code, m.message));
            break;
        }
      });
      worker.on('error', (err) => {
        this.#log.error({ worker: slot.index, err: err.message }, 'worker crashed');
        if (!settled) {
          settled = true;
          reject(new WorkerStartError(slot.index, 'PXY_WORKER_CRASH', err.message));
        }
      });
      worker.on('exit', (code) => this.#onExit(slot, worker, code));
    });
  }

  #onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return;
    // Keep what the dead worker counted; its open connections died with it.
    const gone = sumCounters([this.#retired, { ...slot.counters, active: 0 }]);
    Object.assign(this.#retired, gone);
    slot.counters = emptyCounters();
    slot.worker = null;
    if (this.#stopping || slot.state === 'draining' || slot.state === 'stopped') {
      slot.state = 'stopped';
      return;
    }
    const ranFor = Date.now() - slot.startedAt;
    slot.consecutiveFailures = ranFor > STABLE_MS ? 1 : slot.consecutiveFailures + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (slot.consecutiveFailures - 1));
    slot.state = 'restarting';
    slot.restarts++;
    this.#restartsTotal++;
    this.#log.warn({ worker: slot.index, exitCode: code, restartInMs: delay }, 'worker exited; replacing it');
    const timer = setTimeout(() => {
      if (this.#stopping) return;
      this.#spawn(slot).catch((err: unknown) => {
        this.#log.error(
          { worker: slot.index, err: (err as Error).message },
          'replacement worker failed to start',
        );
      });
    }, delay);
    timer.unref();
  }

  /** The new policy and inventory, to every worker now and to every worker that starts later. */
  publishControl(control: ControlSnapshot): void {
    this.#control = control;
    for (const s of this.#slots) s.worker?.postMessage({ type: 'control', control } satisfies ToWorker);
  }

  /** New credentials, likewise. */
  publishCredentials(credentials: CredentialsSnapshot): void {
    this.#credentials = credentials;
    for (const s of this.#slots)
      s.worker?.postMessage({ type: 'credentials', credentials } satisfies ToWorker);
  }

  /** A new log level for every worker now and every worker that starts later. */
  setLogLevel(level: LogLevel): void {
    this.#logLevel = level;
    for (const s of this.#slots) s.worker?.postMessage({ type: 'logging', level } satisfies ToWorker);
  }

  /** True while at least one worker has its listeners bound and is serving (not draining). */
  listening(): boolean {
    return !this.#stopping && this.#slots.some((s) => s.state === 'ready');
  }

  /** Tunnels and streams summed across workers. */
  tunnels(): { tunnels: number; streams: number } {
    let tunnels = 0;
    let streams = 0;
    for (const s of this.#slots) {
      tunnels += s.tunnels.tunnels;
      streams += s.tunnels.streams;
    }
    return { tunnels, streams };
  }

  /** Terminates a worker abruptly, as a crash would; the supervisor replaces it. For drills. */
  killWorker(index: number): boolean {
    const slot = this.#slots[index];
    if (slot?.worker === null || slot === undefined || slot.state !== 'ready') return false;
    this.#log.warn({ worker: index }, 'terminating worker on request (drill)');
    void slot.worker.terminate();
    return true;
  }

  workers(): WorkerInfo[] {
    return this.#slots.map((s) => ({
      index: s.index,
      threadId: s.worker?.threadId ?? null,
      state: s.state,
      restarts: s.restarts,
      activeConnections: s.counters.active,
    }));
  }

  /** Asks each live worker for fresh counters (answers arrive within a turn or two). */
  refreshCounters(): void {
    for (const s of this.#slots) s.worker?.postMessage({ type: 'counters' } satisfies ToWorker);
  }

  counters(): WorkerCounters {
    return sumCounters([this.#retired, ...this.#slots.map((s) => s.counters)]);
  }

  /** Stops accepting everywhere, waits for workers to drain (bounded by the deadline), stops them. */
  async drain(deadlineMs: number): Promise<number> {
    this.#stopping = true;
    let closedAtDeadline = 0;
    await Promise.all(
      this.#slots.map(async (slot) => {
        const worker = slot.worker;
        if (worker === null) return;
        slot.state = 'draining';
        const done = new Promise<void>((resolve) => {
          const onMessage = (m: FromWorker) => {
            if (m.type !== 'drained') return;
            closedAtDeadline += m.closedAtDeadline;
            worker.off('message', onMessage);
            resolve();
          };
          worker.on('message', onMessage);
          worker.once('exit', () => resolve());
        });
        worker.postMessage({ type: 'drain', deadlineMs } satisfies ToWorker);
        // A worker that cannot even answer gets a little past the deadline, then is stopped.
        await within(done, deadlineMs + 2000);
        if (!(await within(worker.terminate(), TERMINATE_GRACE_MS))) this.#unfinished++;
      }),
    );
    return closedAtDeadline;
  }

  /** Workers whose threads had not ended TERMINATE_GRACE_MS after drain() stopped them. */
  get unfinishedWorkers(): number {
    return this.#unfinished;
  }
}
