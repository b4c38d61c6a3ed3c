// Transparent listeners: IP_TRANSPARENT sockets that TPROXY hands captured connections to. The
// original destination of a captured connection is the accepted socket's local address.
// Each worker binds its own listener with SO_REUSEPORT; the kernel spreads connections across them.
import { createServer, type Server, type Socket } from 'node:net';
import { describeError } from '../errors.ts';
import type { Endpoint } from '../net/address.ts';
import { ListenError } from './errors.ts';
import { closeFd, createListenFd } from './socket-options.ts';

export interface TransparentListenerOptions {
  readonly at: Endpoint;
  readonly backlog: number;
  readonly onConnection: (socket: Socket) => void;
}

/** Binds and listens; resolves once the socket is listening, so every listener is bound before serving. */
export function listenTransparent(opts: TransparentListenerOptions): Promise<Server> {
  const fd = createListenFd(opts.at, { transparent: true, reusePort: true });
  const server = createServer(
    { pauseOnConnect: true, allowHalfOpen: true, noDelay: true },
    opts.onConnection,
  );
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      try {
        closeFd(fd);
      } catch {
        // The server may already own (and have closed) the fd.
      }
      reject(new ListenError(`${opts.at.ip}:${opts.at.port}`, describeError(err).message, { cause: err }));
    };
    server.once('error', fail);
    server.listen({ fd, backlog: opts.backlog }, () => {
      server.off('error', fail);
      resolve(server);
    });
  });
}
