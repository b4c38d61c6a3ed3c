// The base of every ward error: a stable `code` that scripts and tests match on, and a message that
// names the cause. Each domain (proxy, config, svid, policy) defines its codes in its own errors.ts.
export class WardError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'WardError';
  }
}

/** Narrows an unknown thrown value to something with a message and an optional errno code. */
export function describeError(err: unknown): { message: string; code: string | undefined } {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return { message: err.message, code: typeof code === 'string' ? code : undefined };
  }
  return { message: String(err), code: undefined };
}
