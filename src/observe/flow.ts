// Flow records: one per policy decision ward makes on a connection, shaped like Hubble's flows (field
// names from Hubble's flow JSON where one exists), kept in a bounded ring and written to the log.
export type FlowVerdict = 'FORWARDED' | 'DROPPED';
export type TrafficDirection = 'INGRESS' | 'EGRESS';

export interface FlowEndpoint {
  readonly ID?: number;
  readonly identity: number;
  readonly namespace?: string;
  readonly pod_name?: string;
  /** Security labels, `source:key=value` as Hubble prints them. */
  readonly labels: readonly string[];
}

export interface FlowRecord {
  readonly time: string;
  readonly uuid: string;
  readonly verdict: FlowVerdict;
  /** Hubble's drop reason description (e.g. POLICY_DENIED, AUTH_REQUIRED) when DROPPED. */
  readonly drop_reason_desc?: string;
  readonly traffic_direction: TrafficDirection;
  readonly IP: { readonly source: string; readonly destination: string; readonly ipVersion: 'IPv4' | 'IPv6' };
  readonly l4: {
    readonly TCP: {
      readonly source_port: number;
      readonly destination_port: number;
      readonly flags: { readonly SYN: true };
    };
  };
  readonly source: FlowEndpoint;
  readonly destination: FlowEndpoint;
  readonly node_name: string;
  /** SPIRE when the connection was authenticated with SVIDs (mTLS), DISABLED otherwise. */
  readonly auth_type: 'SPIRE' | 'DISABLED';
  readonly policy_match_type?: 'L3_L4';
  /** `hubble observe`'s one-line summary of the event. */
  readonly Summary: string;
  /** What Hubble has no field for: ward's reason, the deciding policies, the tunnel. */
  readonly ward: {
    readonly reason: string;
    readonly policies: readonly string[];
    readonly mtls: boolean;
    readonly peer?: string;
  };
}

/** Hubble's drop reason names for ward's refusals. */
export const DROP_REASONS: Record<string, string> = {
  policy_denied: 'POLICY_DENIED',
  auth_required: 'AUTH_REQUIRED',
  auth_failed: 'AUTH_REQUIRED',
  unknown_source: 'POLICY_DENIED',
  unknown_identity: 'AUTH_REQUIRED',
  identity_unavailable: 'AUTH_REQUIRED',
  target_not_local: 'POLICY_DENIED',
  target_mismatch: 'POLICY_DENIED',
  policy_changed: 'POLICY_DENIED',
};

/** The summary Hubble prints, e.g. `policy-verdict:L3-L4 INGRESS ALLOWED (TCP Flags: SYN; Auth: SPIRE)`. */
export function flowSummary(
  verdict: FlowVerdict,
  direction: TrafficDirection,
  reason: string,
  mtls: boolean,
): string {
  const flags = `(TCP Flags: SYN${mtls ? '; Auth: SPIRE' : ''})`;
  if (verdict === 'FORWARDED') return `policy-verdict:L3-L4 ${direction} ALLOWED ${flags}`;
  if (reason === 'auth_required') return `Authentication required DROPPED ${flags}`;
  return `Policy denied DROPPED ${flags}`;
}

function endpointText(ip: string, port: number, e: FlowEndpoint): string {
  const name = e.pod_name !== undefined ? `${e.namespace ?? 'default'}/${e.pod_name}` : ip;
  return `${name}:${port} (ID:${e.identity})`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** One line as `hubble observe` prints it. */
export function formatCompact(f: FlowRecord): string {
  const t = new Date(f.time);
  const stamp = `${MONTHS[t.getUTCMonth()]} ${String(t.getUTCDate()).padStart(2, ' ')} ${t.toISOString().slice(11, 23)}`;
  const arrow = f.verdict === 'DROPPED' ? '<>' : '->';
  return `${stamp}: ${endpointText(f.IP.source, f.l4.TCP.source_port, f.source)} ${arrow} ${endpointText(
    f.IP.destination,
    f.l4.TCP.destination_port,
    f.destination,
  )} ${f.Summary}`;
}

/** The most recent flows, bounded: a circular buffer, so a push costs the same when it is full. */
export class FlowRing {
  readonly #items: (FlowRecord | undefined)[];
  /** Where the next push goes; once full, also the oldest item. */
  #next = 0;
  #size = 0;
  #listeners = new Set<(f: FlowRecord) => void>();

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`flow ring capacity ${capacity}`);
    this.#items = new Array<FlowRecord | undefined>(capacity);
  }

  push(f: FlowRecord): void {
    this.#items[this.#next] = f;
    this.#next = (this.#next + 1) % this.#items.length;
    if (this.#size < this.#items.length) this.#size++;
    for (const l of this.#listeners) l(f);
  }

  /** The last `n` flows (all held, by default), oldest first. */
  recent(n = this.#size): FlowRecord[] {
    const count = Math.min(Math.max(0, n), this.#size);
    const cap = this.#items.length;
    const out = new Array<FlowRecord>(count);
    for (let i = 0; i < count; i++) {
      out[i] = this.#items[(this.#next - count + i + cap) % cap] as FlowRecord;
    }
    return out;
  }

  subscribe(l: (f: FlowRecord) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
}
