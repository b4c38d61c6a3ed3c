// One long-lived server-streaming gRPC call that is reopened when it ends: the SPIRE and Workload API
// streams. States Idle -> Connecting -> Streaming -> Backoff -> Connecting … , or Stopped for good; every
// change goes through transitionTo and is logged "A -> B". A message the handler rejects ends the call
// and counts as a failure, so bad bytes from the server never crash the process.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.ts';
import type { Backoff } from './backoff.ts';
import { SvidError, SvidErrorCode } from './errors.ts';

export type StreamState = 'Idle' | 'Connecting' | 'Streaming' | 'Backoff' | 'Stopped';

export interface StreamFailure {
  /** The gRPC status code, or undefined when the handler rejected a message. */
  readonly status: grpc.status | undefined;
  readonly message: string;
  readonly code: string;
}

export interface StreamRunnerOptions<T> {
  readonly name: string;
  readonly log: Logger;
  readonly backoff: Backoff;
  readonly open: () => grpc.ClientReadableStream<T>;
  readonly onMessage: (message: T) => void;
  /** Called on each failure; `retrying` is false when the status stops the stream for good. */
  readonly onFailure: (failure: StreamFailure, retrying: boolean) => void;
  /** Status codes after which the stream is not reopened. */
  readonly stopOn: ReadonlySet<grpc.status>;
}

export class StreamRunner<T> {
  private readonly options: StreamRunnerOptions<T>;
  private readonly log: Logger;
  private state: StreamState = 'Idle';
  private call: grpc.ClientReadableStream<T> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Increments per call, so events of a cancelled call are ignored. */
  private generation = 0;

  constructor(options: StreamRunnerOptions<T>) {
    this.options = options;
    this.log = options.log.child({ stream: options.name });
  }

  current(): StreamState {
    return this.state;
  }

  start(): void {
    if (this.state === 'Idle') this.connect();
  }

  /** Ends the current call and opens a new one at once (also from Backoff). */
  restart(): void {
    if (this.state === 'Stopped' || this.state === 'Idle') return;
    this.endCall();
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.connect();
  }

  stop(): void {
    this.transitionTo(['Idle', 'Connecting', 'Streaming', 'Backoff'], 'Stopped');
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.endCall();
  }

  private transitionTo(from: readonly StreamState[], to: StreamState): boolean {
    if (!from.includes(this.state)) return false;
    const prev = this.state;
    this.state = to;
    if (prev !== to) this.log.debug(`${prev} -> ${to}`);
    return true;
  }

  private endCall(): void {
    this.generation++;
    const call = this.call;
    this.call = undefined;
    if (call !== undefined) {
      call.removeAllListeners('data');
      call.on('error', () => {});
      call.cancel();
    }
  }

  private connect(): void {
    if (!this.transitionTo(['Idle', 'Backoff', 'Connecting', 'Streaming'], 'Connecting')) return;
    const gen = ++this.generation;
    let call: grpc.ClientReadableStream<T>;
    try {
      call = this.options.open();
    } catch (err) {
      this.fail(gen, {
        status: undefined,
        message: (err as Error).message,
        code: SvidErrorCode.SOURCE_UNAVAILABLE,
      });
      return;
    }
    this.call = call;
    call.on('data', (msg: T) => {
      if (gen !== this.generation) return;
      try {
        this.options.onMessage(msg);
      } catch (err) {
        const e = err instanceof SvidError ? err : undefined;
        this.fail(gen, {
          status: undefined,
          message: (err as Error).message,
          code: e?.code ?? SvidErrorCode.BAD_RESPONSE,
        });
        return;
      }
      this.transitionTo(['Connecting'], 'Streaming');
      this.options.backoff.reset();
    });
    call.on('error', (err: grpc.ServiceError) => {
      this.fail(gen, {
        status: err.code,
        message: err.details || err.message,
        code: SvidErrorCode.SOURCE_UNAVAILABLE,
      });
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) {
        this.fail(gen, {
          status: grpc.status.OK,
          message: 'the server ended the stream',
          code: SvidErrorCode.SOURCE_UNAVAILABLE,
        });
      }
    });
  }

  private fail(gen: number, failure: StreamFailure): void {
    if (gen !== this.generation || this.state === 'Stopped') return;
    this.endCall();
    const stop = failure.status !== undefined && this.options.stopOn.has(failure.status);
    if (stop) {
      this.transitionTo(['Connecting', 'Streaming', 'Backoff'], 'Stopped');
      this.options.onFailure(failure, false);
      return;
    }
    this.transitionTo(['Connecting', 'Streaming'], 'Backoff');
    const delay = this.options.backoff.next();
    this.log.debug({ delayMs: delay, status: failure.status }, `retrying in ${delay} ms`);
    this.options.onFailure(failure, true);
    if (this.state !== 'Backoff') return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
    this.timer.unref?.();
  }
}

/** gRPC status name for logs: `PERMISSION_DENIED`. */
export function statusName(code: grpc.status | undefined): string {
  if (code === undefined) return 'BAD_MESSAGE';
  return grpc.status[code] ?? String(code);
}
