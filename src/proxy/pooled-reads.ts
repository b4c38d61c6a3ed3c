// Pooled read buffers for the sides of a connection that carry bulk data.
//
// Node reads a TCP socket into a fresh ArrayBuffer per read, and an HTTP/2 stream's DATA into slices of
// an ArrayBuffer made per read of its session's TLS socket (one per 16 KiB TLS record). V8 counts those
// bytes as external memory and starts a full mark-compact of the worker's heap every ~64 MB of them, so
// a proxy moving 400 MB/s spends as much CPU in GC helper threads as on the bytes themselves
// (bench/README.md has the measurement). A side switched to pooled reads reads into buffers taken from a
// small free list instead: 64 KiB for a TCP socket, 16 KiB for a CONNECT stream (one DATA chunk is at
// most a frame, 16 KiB with ward's settings, and Node copies each chunk into the buffer it is given). A
// buffer goes back to its list once the write that carried its bytes to the other side has completed, so
// no byte is ever overwritten while a write still refers to it. For a stream, Node then never makes the
// session's read into an ArrayBuffer at all (node_http2.cc does so only for its default listener).
//
// The switch uses the `onread` machinery of Node's stream handles (documented for sockets ward creates,
// where it is an option of the net.Socket constructor): the kBuffer/kBufferCb/kBufferGen slots that
// stream_base_commons' onStreamRead consults on every stream, and the handle's useUserBuffer(). Accepted
// sockets and HTTP/2 streams take no `onread` option, so the slots are set and the handle is given the
// first buffer, which is what the constructor does. These are internals of the Node runtime ward pins
// (Node 24, package.json); if they are missing, the side keeps Node's own reads and nothing else changes
// (test/unit/splice.test.ts and test/unit/hbone.test.ts fail on a runtime where the switch no longer
// engages).
import type { Http2Stream } from 'node:http2';
import { Socket } from 'node:net';

export const READ_BUFFER_SIZE = 64 * 1024;
export const STREAM_READ_BUFFER_SIZE = 16 * 1024;
/** Free buffers kept per thread and size: 64 × 64 KiB + 64 × 16 KiB = 5 MiB at most; more are left to the GC. */
const POOL_MAX = 64;

const free = new Map<number, Buffer[]>([
  [READ_BUFFER_SIZE, []],
  [STREAM_READ_BUFFER_SIZE, []],
]);

function take(size: number): Buffer {
  return free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

export function takeReadBuffer(): Buffer {
  return take(READ_BUFFER_SIZE);
}

function takeStreamReadBuffer(): Buffer {
  return take(STREAM_READ_BUFFER_SIZE);
}

/** Hands a pooled buffer back (a buffer of another size, e.g. a slice, is left to the GC). */
export function returnReadBuffer(b: Buffer): void {
  const list = free.get(b.length);
  if (list !== undefined && list.length < POOL_MAX) list.push(b);
}

/** Free buffers held now, of one size or of both (for tests and the memory figures). */
export function pooledReadBuffers(size?: number): number {
  let n = 0;
  for (const [s, list] of free) if (size === undefined || s === size) n += list.length;
  return n;
}

interface OnreadSlots {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol;
}

let slots: OnreadSlots | null | undefined;

/** The slots' symbols, read off a net.Socket (which declares them; the same symbols serve every stream). */
function findSlots(): OnreadSlots | null {
  if (slots !== undefined) return slots;
  const own = Object.getOwnPropertySymbols(new Socket());
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

interface StreamHandle {
  useUserBuffer(b: Uint8Array): void;
  readStart(): number;
  rstStream(code: number): number;
  reading?: boolean;
}

/**
 * Node's kHandle symbol, kept once found (every Http2Stream holds its handle under it). Not found is not
 * kept: a stream still pending may not carry the slot yet, and the next one will.
 */
let kHandle: symbol | undefined;

/**
 * The native handle of an HTTP/2 stream (its kHandle slot), or null when there is none (not yet
 * created, already gone, or a runtime without the slot). Shared with connection.ts's stream reset.
 */
export function streamHandle(s: Http2Stream): Partial<StreamHandle> | null {
  kHandle ??= Object.getOwnPropertySymbols(s).find((k) => k.description === 'kHandle');
  const h = kHandle === undefined ? undefined : (s as unknown as Record<symbol, unknown>)[kHandle];
  return typeof h === 'object' && h !== null ? (h as Partial<StreamHandle>) : null;
}

/** The native handle of a socket (`_handle`) or of an HTTP/2 stream. */
function handleOf(s: Socket | Http2Stream): Partial<StreamHandle> | null {
  if (s instanceof Socket) return (s as unknown as { _handle: Partial<StreamHandle> | null })._handle;
  return streamHandle(s);
}

/**
 * From the next read on, `s` reads into pooled buffers and `onRead` is called (with `this` = `s`) for
 * each read instead of a 'data' event; returning false stops reading (call resumePooledReads() to start
 * again). 'end', 'error' and 'close' are unchanged. `onRead` owns `buf` and hands it back with
 * returnReadBuffer() once nothing refers to its bytes any more. Returns false (and changes nothing) when
 * the side has no handle or the runtime lacks the hooks.
 */
export function usePooledReads<S extends Socket | Http2Stream>(
  s: S,
  onRead: (this: S, nread: number, buf: Buffer) => boolean,
): boolean {
  const k = findSlots();
  const handle = handleOf(s);
  if (k === null || handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const generate = s instanceof Socket ? takeReadBuffer : takeStreamReadBuffer;
  const first = generate();
  const rec = s as unknown as Record<symbol, unknown>;
  rec[k.buffer] = first;
  rec[k.callback] = onRead;
  rec[k.generator] = generate;
  handle.useUserBuffer(first);
  return true;
}

/**
 * Starts a stream's reads again after `onRead` returned false. A socket needs none of this: net.Socket's
 * resume() knows the slots. An HTTP/2 stream's resume() goes through Readable's read(), which never
 * calls _read again once reads bypass push(), so its handle is started here.
 */
export function resumePooledReads(s: Http2Stream): void {
  const handle = s.destroyed ? null : streamHandle(s);
  if (handle !== null && typeof handle.readStart === 'function') {
    handle.reading = true;
    handle.readStart();
  }
  s.resume();
}
