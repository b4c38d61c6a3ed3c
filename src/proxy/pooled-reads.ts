// Pooled read buffers for TCP sides that carry bulk data.
//
// Node reads a TCP socket into a fresh ArrayBuffer per read. V8 counts those bytes as external memory and
// starts a full mark-compact of the worker's heap every ~64 MB of them, so a proxy moving 400 MB/s spends
// as much CPU in GC helper threads as on the bytes themselves (bench/README.md has the measurement).
// A socket switched to pooled reads reads into 64 KiB buffers taken from a small free list instead; a
// buffer goes back to the list once the write that carried its bytes to the other side has completed, so
// no byte is ever overwritten while a write still refers to it.
//
// The switch uses net.Socket's `onread` machinery (documented for sockets ward creates, where it is an
// option of the constructor). Accepted sockets are created by net.Server, which takes no `onread`, so the
// socket's own kBuffer/kBufferCb/kBufferGen slots are set and the handle is given the first buffer, which
// is what the constructor does. These are internals of the Node runtime ward pins (Node 24, package.json);
// if they are missing, the socket keeps Node's own reads and nothing else changes
// (test/unit/pooled-reads.test.ts fails on a runtime where the switch no longer engages).
import type { Socket } from 'node:net';

export const READ_BUFFER_SIZE = 64 * 1024;
/** Free buffers kept per thread: 64 × 64 KiB = 4 MiB at most; more in flight are left to the GC. */
const POOL_MAX = 64;

const free: Buffer[] = [];

export function takeReadBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
}

export function returnReadBuffer(b: Buffer): void {
  if (free.length < POOL_MAX && b.length === READ_BUFFER_SIZE) free.push(b);
}

/** Free buffers held now (for tests and the memory figures). */
export function pooledReadBuffers(): number {
  return free.length;
}

interface OnreadSlots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

let slots: OnreadSlots | null | undefined;

function findSlots(s: Socket): OnreadSlots | null {
  if (slots !== undefined) return slots;
  const own = Object.getOwnPropertySymbols(s);
  const by = (d: string) => own.find((k) => k.description === d);
  const buffer = by('kBuffer');
  const callback = by('kBufferCb');
  const generator = by('kBufferGen');
  slots =
    buffer === undefined || callback === undefined || generator === undefined
      ? null
      : { buffer, callback, generator };
  return slots;
}

interface UserBufferHandle {
  useUserBuffer(b: Uint8Array): void;
}

/**
 * From the next read on, `s` reads into pooled buffers and `onRead` is called (with `this` = the
 * socket) for each read instead of a 'data' event; returning false stops reading, as `pause()` does.
 * 'end', 'error' and 'close' are unchanged. `onRead` owns `buf` and hands it back with
 * returnReadBuffer() once nothing refers to its bytes any more. Returns false (and changes nothing)
 * when the socket has no handle or the runtime lacks the hooks.
 */
export function usePooledReads(
  s: Socket,
  onRead: (this: Socket, nread: number, buf: Buffer) => boolean,
): boolean {
  const k = findSlots(s);
  const handle = (s as unknown as { _handle: Partial<UserBufferHandle> | null })._handle;
  if (k === null || handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const first = takeReadBuffer();
  const rec = s as unknown as Record<symbol, unknown>;
  rec[k.buffer] = first;
  rec[k.callback] = onRead;
  rec[k.generator] = takeReadBuffer;
  handle.useUserBuffer(first);
  return true;
}
