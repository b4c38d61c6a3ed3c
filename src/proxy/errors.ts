// Errors of the data path. Each has a stable code; where there is a socket tuple, the message names it.
import { WardError } from '../errors.ts';

export class CapabilityError extends WardError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      'PXY_CAP_NET_ADMIN',
      `${what} needs CAP_NET_ADMIN (run ward as root, or grant the capability: in Kubernetes securityContext.capabilities.add: [NET_ADMIN])`,
      options,
    );
  }
}

export class SocketOptionError extends WardError {
  readonly errno: string | undefined;

  constructor(what: string, errno: string | undefined, message: string, options?: { cause?: unknown }) {
    super('PXY_SOCKET_OPTION', `${what}: ${message}`, options);
    this.errno = errno;
  }
}

export class ListenError extends WardError {
  constructor(address: string, message: string, options?: { cause?: unknown }) {
    super('PXY_LISTEN', `cannot listen on ${address}: ${message}`, options);
  }
}

export class CaptureRulesError extends WardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PXY_CAPTURE_RULES', message, options);
  }
}
