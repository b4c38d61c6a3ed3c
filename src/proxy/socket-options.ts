// Typed wrapper around the ward_socket addon (native/ward_socket.cc): the socket options Node lacks,
// and the few process calls it lacks (rlimits, an exit that does not wait for worker threads).
import { createRequire } from 'node:module';
import type { Server, Socket } from 'node:net';
import { describeError } from '../errors.ts';
import type { Endpoint, Family } from '../net/address.ts';
import { CapabilityError, SocketOptionError } from './errors.ts';

interface WardSocketAddon {
  setTransparent(fd: number, family: Family): void;
  getTransparent(fd: number, family: Family): boolean;
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
  setReusePort(fd: number): void;
  listenSocket(family: Family, ip: string, port: number, transparent: boolean, reusePort: boolean): number;
  connectSocket(
    family: Family,
    mark: number,
    transparent: boolean,
    bindIp: string | null,
    bindPort: number,
  ): number;
  setBufferSizes(fd: number, sndbuf: number, rcvbuf: number): void;
  getBufferSizes(fd: number): [number, number];
  closeFd(fd: number): void;
  setAbortiveClose(fd: number, on: boolean): void;
  getNofileLimit(): [number, number];
  setNofileLimit(soft: number, hard: number): void;
  exitNow(code: number): never;
}

const require = createRequire(import.meta.url);
const addon = require('../../build/Release/ward_socket.node') as WardSocketAddon;

function guarded<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const { message, code } = describeError(err);
    if (code === 'EPERM' || code === 'EACCES') throw new CapabilityError(what, { cause: err });
    throw new SocketOptionError(what, code, message, { cause: err });
  }
}

/** The file descriptor behind a Node socket or server (libuv exposes it as `_handle.fd`). */
export function fdOf(s: Socket | Server): number {
  const handle = (s as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new SocketOptionError('fd', undefined, 'socket has no file descriptor');
  return fd;
}

export interface ListenSocketOptions {
  transparent: boolean;
  reusePort: boolean;
}

/** A bound (not yet listening) TCP socket for `server.listen({ fd })`. */
export function createListenFd(at: Endpoint, opts: ListenSocketOptions): number {
  const what = opts.transparent
    ? `transparent listener ${at.ip}:${at.port} (IP_TRANSPARENT)`
    : `listener ${at.ip}:${at.port}`;
  return guarded(what, () => addon.listenSocket(at.family, at.ip, at.port, opts.transparent, opts.reusePort));
}

export interface UpstreamSocketOptions {
  family: Family;
  /** SO_MARK for the socket's packets; 0 leaves it unset. */
  mark: number;
  /** Bind to this (possibly non-local) address before connect; port 0 lets the kernel choose at connect. */
  source?: { ip: string; port: number } | undefined;
}

/** An unconnected TCP socket with its mark set and, if asked, bound to a non-local source (IP_TRANSPARENT). */
export function createUpstreamFd(opts: UpstreamSocketOptions): number {
  const src = opts.source;
  const what =
    src !== undefined
      ? `upstream socket bound to ${src.ip} (IP_TRANSPARENT, SO_MARK)`
      : 'upstream socket (SO_MARK)';
  return guarded(what, () =>
    addon.connectSocket(opts.family, opts.mark >>> 0, src !== undefined, src?.ip ?? null, src?.port ?? 0),
  );
}

export function closeFd(fd: number): void {
  addon.closeFd(fd);
}

export function setMark(s: Socket, mark: number): void {
  guarded('SO_MARK', () => addon.setMark(fdOf(s), mark >>> 0));
}

export function getMark(s: Socket): number {
  return guarded('SO_MARK', () => addon.getMark(fdOf(s)));
}

export function setTransparent(s: Socket | Server, family: Family): void {
  guarded('IP_TRANSPARENT', () => addon.setTransparent(fdOf(s), family));
}

export function isTransparent(s: Socket | Server, family: Family): boolean {
  return guarded('IP_TRANSPARENT', () => addon.getTransparent(fdOf(s), family));
}

export function setReusePort(s: Socket | Server): void {
  guarded('SO_REUSEPORT', () => addon.setReusePort(fdOf(s)));
}

/** Socket buffer sizes, forced past net.core.[rw]mem_max (SO_SNDBUFFORCE/SO_RCVBUFFORCE; CAP_NET_ADMIN). */
export function setBufferSizes(s: Socket, sndbuf: number, rcvbuf: number): void {
  guarded('SO_SNDBUFFORCE/SO_RCVBUFFORCE', () => addon.setBufferSizes(fdOf(s), sndbuf, rcvbuf));
}

export function setBufferSizesFd(fd: number, sndbuf: number, rcvbuf: number): void {
  guarded('SO_SNDBUFFORCE/SO_RCVBUFFORCE', () => addon.setBufferSizes(fd, sndbuf, rcvbuf));
}

/** [SO_SNDBUF, SO_RCVBUF] as the kernel reports them (twice what was set). */
export function getBufferSizes(s: Socket): [number, number] {
  return guarded('SO_SNDBUF/SO_RCVBUF', () => addon.getBufferSizes(fdOf(s)));
}

/** RLIMIT_NOFILE as [soft, hard]; -1 is RLIM_INFINITY. */
export function getNofileLimit(): [number, number] {
  return addon.getNofileLimit();
}

/** setrlimit(RLIMIT_NOFILE); throws the addon's errno error (EPERM past the hard limit or fs.nr_open). */
export function setNofileLimit(soft: number, hard: number): void {
  addon.setNofileLimit(soft, hard);
}

/**
 * Ends the process at once (_exit), without joining worker threads as process.exit() does. Only for a
 * shutdown that is otherwise complete: nothing buffered is flushed and no 'exit' handler runs.
 */
export function exitNow(code: number): never {
  return addon.exitNow(code);
}

/**
 * SO_LINGER {1, 0}: the kernel answers a close — ward's own, or the one that comes when its process or a
 * worker thread dies — with RST instead of FIN, so a client never mistakes a cut for a complete stream.
 * Turned off again before every orderly close (a FIN passed on, an idle timeout, a drain), since an
 * abortive close would drop data still in the send queue. Best effort: a socket already closed is left.
 */
export function setAbortiveClose(s: Socket, on: boolean): void {
  const handle = (s as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return;
  try {
    addon.setAbortiveClose(fd, on);
  } catch {
    // The peer may have closed it under us; nothing to undo.
  }
}

export function setAbortiveCloseFd(fd: number, on: boolean): void {
  addon.setAbortiveClose(fd, on);
}
