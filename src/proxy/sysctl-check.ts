// Kernel settings that silently break TPROXY, checked at start so ward refuses with an explanation
// instead of black-holing the node's traffic.
//
// net.ipv4.conf.*.src_valid_mark = 1 makes the kernel's reverse-path check (fib_validate_source) look up
// the packet's *source* with the packet's mark. A diverted SYN carries ward's TPROXY mark, whose routing
// table holds `local 0.0.0.0/0 dev lo`, so the source resolves to a local route and the packet is dropped
// as a martian — whatever rp_filter says, since that custom local route forces the full check. This is
// what broke Istio's TPROXY mode on GKE with intranode visibility (istio/istio#52576, #52622). Measured in
// the lab (test/netns/reliability-start.test.ts): src_valid_mark=1 with rp_filter 0, 1 or 2 → every
// captured connection hangs; src_valid_mark=0 with rp_filter 0, 1 (strict) or 2 (loose) → ward works.
//
// The kernel uses the OR of `all` and the interface's own value; `default` is what interfaces created
// later (new pods' veths) inherit, so it counts too. rp_filter is only reported: strict mode on the pod
// interfaces is what stops a pod from sending with another pod's address (docs/reliability.md).
import { readdirSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { WardError } from '../errors.ts';

export class SysctlError extends WardError {
  constructor(message: string) {
    super('PXY_SYSCTL', message);
  }
}

export interface SysctlReader {
  /** Interface names under net.ipv4.conf (including `all` and `default`). */
  interfaces(): string[];
  /** The value of net.ipv4.conf.<iface>.<key>, or null when it cannot be read. */
  read(iface: string, key: string): string | null;
}

const CONF = '/proc/sys/net/ipv4/conf';

export const procSysctls: SysctlReader = {
  interfaces: () => readdirSync(CONF),
  read: (iface, key) => {
    try {
      return readFileSync(`${CONF}/${iface}/${key}`, 'utf8').trim();
    } catch {
      return null;
    }
  },
};

/** Throws SysctlError naming each offending setting; logs the rp_filter values it saw. */
export function checkTproxySysctls(log: Logger, sysctls: SysctlReader = procSysctls): void {
  const ifaces = sysctls.interfaces().filter((i) => i !== 'lo');
  const bad = ifaces.filter((i) => sysctls.read(i, 'src_valid_mark') === '1');
  const rpFilter: Record<string, string | null> = {};
  for (const i of ifaces) rpFilter[i] = sysctls.read(i, 'rp_filter');
  log.info({ rpFilter }, 'sysctls checked');
  if (bad.length > 0) {
    throw new SysctlError(
      `${bad.map((i) => `net.ipv4.conf.${i}.src_valid_mark=1`).join(', ')}: with src_valid_mark the ` +
        "kernel's reverse-path check routes a diverted packet's source through ward's TPROXY table " +
        '(local 0.0.0.0/0 dev lo) and drops it as a martian, so every captured connection would hang. ' +
        'Set them to 0 (sysctl -w net.ipv4.conf.<iface>.src_valid_mark=0; on GKE, intranode visibility sets it)',
    );
  }
}
