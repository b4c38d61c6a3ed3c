// One ward per network namespace. Two wards would both bind the SO_REUSEPORT listeners and split the
// node's connections between them, so a second one must refuse to start. The lock is an abstract Unix
// socket: abstract names belong to the network namespace, vanish when the process dies (even on
// SIGKILL), and need no file system.
import { createServer, type Server } from 'node:net';
import { WardError } from '../errors.ts';

export class AlreadyRunningError extends WardError {
  constructor(name: string) {
    super(
      'PXY_ALREADY_RUNNING',
      `another ward is already running in this network namespace (lock @${name} is held); stop it first, or give this one another capture.chainPrefix`,
    );
  }
}

export interface InstanceLock {
  release(): Promise<void>;
}

export function acquireInstanceLock(chainPrefix: string): Promise<InstanceLock> {
  const name = `ward-${chainPrefix.toLowerCase()}.lock`;
  const server: Server = createServer((s) => s.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new AlreadyRunningError(name) : err);
    });
    server.listen({ path: `\0${name}` }, () => {
      server.unref();
      resolve({ release: () => new Promise<void>((r) => server.close(() => r())) });
    });
  });
}
