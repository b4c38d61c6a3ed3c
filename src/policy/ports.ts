// Port strings as Cilium and Kubernetes read them (reference §7).
import { portNameError } from './k8s-validation.ts';

/** A CNP `port`: a decimal 0–65535, or an IANA service name (lower-cased, C:pkg/policy/api/l4.go). */
export function parsePortString(raw: string): { port: number } | { name: string } | { error: string } {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n > 65535) return { error: `port ${raw} is out of range 0-65535` };
    return { port: n };
  }
  const name = raw.toLowerCase();
  const e = portNameError(name);
  if (e !== undefined)
    return { error: `port "${raw}" is neither a number 0-65535 nor a valid port name: ${e}` };
  return { name };
}

/**
 * The prefix length of the aligned block containing `dport` when [start, end] is split the way
 * C:pkg/policy/l4.go PortRangeToMaskedPorts splits a range into port/mask pairs. 16 for a single
 * port, 0 for "all ports" (port 0). Used only to rank entries by specificity, as the datapath's LPM does.
 */
export function portPrefixLength(start: number, end: number, dport: number): number {
  if (start === 0) return 0;
  let cur = start;
  while (cur <= end) {
    // Largest power-of-two block aligned at cur that stays within [cur, end].
    let size = 1;
    while (size < 65536 && cur % (size * 2) === 0 && cur + size * 2 - 1 <= end) size *= 2;
    if (dport >= cur && dport < cur + size) return 16 - Math.log2(size);
    cur += size;
  }
  return 16;
}
