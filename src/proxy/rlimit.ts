// RLIMIT_NOFILE at start. Every proxied connection holds about two descriptors in ward (the client's
// socket and the upstream socket; a tunnel's streams share one socket), so the soft limit most shells and
// units give (1024) would cap a node at a few hundred connections and surface as EMFILE on accept. The
// main thread raises the limit before any worker starts (rlimits are per process, so the workers share it):
//   - the soft limit to what proxy.maxConnections needs, raising the hard limit too if it is lower
//     (CAP_SYS_RESOURCE; fs.nr_open bounds both);
//   - without that capability, the soft limit to the hard limit, with a warning (PXY_RLIMIT_NOFILE) that
//     says how many connections fit and what to change;
//   - and ward refuses to start when even that leaves room for fewer than MIN_CONNECTIONS connections.
import type { Logger } from 'pino';
import { describeError, WardError } from '../errors.ts';
import { getNofileLimit, setNofileLimit } from './socket-options.ts';

/** Descriptors beyond the connections: listeners, tunnels, log and config files, libuv, the addon. */
export const NOFILE_HEADROOM = 4096;
/** Below this many connections a node proxy is not worth starting: refuse instead. */
export const MIN_CONNECTIONS = 1024;

export class NofileLimitError extends WardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PXY_RLIMIT_NOFILE', message, options);
  }
}

/** The soft limit ward asks for: two descriptors per allowed connection, plus headroom. */
export function nofileWanted(maxConnections: number): number {
  return 2 * maxConnections + NOFILE_HEADROOM;
}

const HOW =
  'raise the hard limit (systemd LimitNOFILE=, docker/containerd --ulimit nofile=, Kubernetes: the ' +
  "runtime's default ulimit), or grant CAP_SYS_RESOURCE (fs.nr_open bounds it), or lower proxy.maxConnections";

/** Raises RLIMIT_NOFILE as above; returns the limits now in force (-1 = unlimited). */
export function raiseNofileLimit(maxConnections: number, log: Logger): { soft: number; hard: number } {
  const want = nofileWanted(maxConnections);
  const [soft, hard] = getNofileLimit();
  if (soft < 0 || soft >= want) {
    log.info({ soft: soft < 0 ? 'unlimited' : soft, wanted: want }, 'RLIMIT_NOFILE sufficient');
    return { soft, hard };
  }
  let raisedHard = true;
  try {
    setNofileLimit(want, hard < 0 || hard >= want ? (hard < 0 ? Number.MAX_SAFE_INTEGER : hard) : want);
  } catch (err) {
    // EPERM: no CAP_SYS_RESOURCE to raise the hard limit, or past fs.nr_open. The soft limit can always
    // go up to the hard one.
    raisedHard = false;
    const reason = describeError(err).message;
    try {
      setNofileLimit(hard, hard);
    } catch (err2) {
      throw new NofileLimitError(
        `cannot raise RLIMIT_NOFILE from ${soft} to ${hard}: ${describeError(err2).message}`,
        { cause: err2 },
      );
    }
    const fits = Math.max(0, Math.floor((hard - NOFILE_HEADROOM) / 2));
    if (fits < MIN_CONNECTIONS) {
      throw new NofileLimitError(
        `RLIMIT_NOFILE is ${soft} (hard ${hard}) and cannot be raised to ${want} (${reason}); ` +
          `that leaves room for ${fits} connections, fewer than ${MIN_CONNECTIONS}: ${HOW}`,
        { cause: err },
      );
    }
    log.warn(
      {
        code: 'PXY_RLIMIT_NOFILE',
        from: soft,
        soft: hard,
        hard,
        wanted: want,
        connectionsThatFit: fits,
        error: reason,
      },
      `RLIMIT_NOFILE raised only to the hard limit ${hard}: about ${fits} of proxy.maxConnections = ${maxConnections} fit; ${HOW}`,
    );
  }
  const [nowSoft, nowHard] = getNofileLimit();
  if (raisedHard)
    log.info({ from: soft, soft: nowSoft, hard: nowHard, wanted: want }, 'RLIMIT_NOFILE raised');
  return { soft: nowSoft, hard: nowHard };
}
