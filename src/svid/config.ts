// The `svid` section of ward's configuration. Flat fields, so each has a WARD_SVID_* override. The default
// source is `none`: without configured identities no connection can satisfy `authentication: required`,
// which fails closed.
import { z } from 'zod';
import { trustDomainProblem } from './spiffe-id.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v === 'string') {
    const m = DURATION.exec(v);
    if (m?.[1] !== undefined && m[2] !== undefined) return Number(m[1]) * (UNIT_MS[m[2]] ?? 1);
  }
  ctx.addIssue({
    code: 'custom',
    message: `must be a duration like 500ms, 5s, 10m, 1h (got ${JSON.stringify(v)})`,
  });
  return z.NEVER;
});

const trustDomain = z.string().superRefine((v, ctx) => {
  const why = trustDomainProblem(v);
  if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
});

const socketAddress = z
  .string()
  .regex(/^(\/|unix:\/\/\/|tcp:\/\/)/, 'must be an absolute path, unix:///path or tcp://<ip>:<port>');

const selector = z.string().regex(/^[^:]+:.+$/, 'a selector is <type>:<value>, e.g. cilium:mutual-auth');

export const svidConfigSchema = z.strictObject({
  /** Where SVIDs come from: SPIRE's Delegated Identity API, the Workload API, a directory, or nowhere. */
  source: z.enum(['delegated', 'workload', 'files', 'none']).default('none'),
  /** The trust domain of this cluster's workloads; SVIDs of other trust domains are refused. */
  trustDomain: trustDomain.default('spiffe.cilium'),
  /** `identity`: spiffe://<td>/identity/<n> (Cilium); `ns-sa`: spiffe://<td>/ns/<ns>/sa/<sa>. */
  idScheme: z.enum(['identity', 'ns-sa']).default('identity'),
  /** The SPIRE agent's admin socket (Delegated Identity API). */
  delegatedSocket: socketAddress.default('/run/spire/sockets/admin.sock'),
  /** Selectors sent to SubscribeToX509SVIDs. */
  selectors: z.array(selector).min(1).default(['cilium:mutual-auth']),
  /** The Workload API socket; SPIFFE_ENDPOINT_SOCKET when unset. */
  workloadSocket: socketAddress.optional(),
  /** Directory of the files source. */
  filesDirectory: z.string().min(1).default('/etc/ward/svids'),
  /** Rescan period of the files source (besides watching). */
  filesPollInterval: duration.default(5000),
  /** First reconnect delay of the gRPC streams (then ×2, jittered). */
  reconnectInitial: duration.default(100),
  /** Longest reconnect delay of the gRPC streams. */
  reconnectMax: duration.default(10_000),
});

export type SvidConfigInput = z.input<typeof svidConfigSchema>;
export type SvidConfig = z.output<typeof svidConfigSchema>;

export const defaultSvidConfig: SvidConfig = svidConfigSchema.parse({});
