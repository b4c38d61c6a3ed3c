// ward's configuration: one YAML file, then WARD_* environment overrides, validated here, then frozen.
// Every field has a default that is safe on a node that also runs Cilium (see docs/configuration.md).
import { z } from 'zod';
import { parseCidr } from '../net/address.ts';
import * as policyConfig from '../policy/config.ts';
import { svidConfigSchema } from '../svid/config.ts';

const MAX_U32 = 0xffff_ffff;

/** A 32-bit mark or mask: a number, or a string in hex (0x…) or decimal. */
const u32 = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n =
    typeof v === 'number'
      ? v
      : /^0x[0-9a-f]+$/i.test(v)
        ? Number.parseInt(v, 16)
        : /^\d+$/.test(v)
          ? Number(v)
          : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > MAX_U32) {
    ctx.addIssue({ code: 'custom', message: `must be an integer 0..0xffffffff (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return n;
});

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: milliseconds as a number, or a string like "250ms", "5s", "10m", "1h". */
const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') {
    if (Number.isFinite(v) && v >= 0) return v;
  } else {
    const m = DURATION.exec(v);
    if (m?.[1] !== undefined && m[2] !== undefined) return Number(m[1]) * (UNIT_MS[m[2]] ?? 1);
  }
  ctx.addIssue({
    code: 'custom',
    message: `must be a duration like 500ms, 5s, 10m, 1h or milliseconds (got ${JSON.stringify(v)})`,
  });
  return z.NEVER;
});

const port = z.number().int().min(1).max(65535);

const cidr = z.string().transform((v, ctx) => {
  try {
    parseCidr(v);
    return v;
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const ip = z.union([z.ipv4(), z.ipv6()]);

export const captureSchema = z.strictObject({
  /** Install and remove the capture rules (false: another component manages them). */
  install: z.boolean().default(true),
  /** Which iptables binary family to drive: detected from the host's rules by default. */
  backend: z.enum(['auto', 'iptables-nft', 'iptables-legacy']).default('auto'),
  /** The pod CIDRs of this node: traffic from them is outbound, traffic to them is inbound. */
  podCidrs: z.array(cidr).min(1, 'at least one pod CIDR of this node is needed'),
  /** Mark set on packets that TPROXY diverts or that belong to ward's transparent sockets. */
  tproxyMark: u32.default(0x10),
  /** Mark on ward's own upstream sockets, so their packets are never captured again. */
  bypassMark: u32.default(0x20),
  /** The bits of the packet mark ward owns. Cilium uses 0x0F00 (and the upper 16 bits for identities). */
  markMask: u32.default(0xf0),
  /** Routing table that delivers marked packets locally (`local 0.0.0.0/0 dev lo`). */
  routeTable: z.number().int().min(1).max(0xfffffffe).default(15001),
  /** Priority of the `ip rule fwmark … lookup <routeTable>` rule. */
  rulePriority: z.number().int().min(1).max(32765).default(15001),
  /** Prefix of ward's iptables chains (WARD_PREROUTING, WARD_DIVERT). */
  chainPrefix: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]{0,15}$/, 'must be 1-16 upper-case letters, digits or _ and start with a letter')
    .default('WARD'),
});

export const listenersSchema = z.strictObject({
  /** Address the transparent listeners bind (0.0.0.0 takes every captured destination). */
  address: ip.default('0.0.0.0'),
  outboundPort: port.default(15001),
  inboundPlaintextPort: port.default(15006),
  inboundTunnelPort: port.default(15008),
  backlog: z.number().int().min(1).max(65535).default(4096),
});

export const proxySchema = z.strictObject({
  /** Worker threads; "auto" follows the CPUs this process may use. */
  workers: z
    .union([z.literal('auto'), z.number().int().min(1).max(256)], {
      error: 'must be "auto" or a number 1-256',
    })
    .default('auto'),
  connectTimeout: duration.default(5_000),
  idleTimeout: duration.default(3_600_000),
  /** Open connections across all workers; past it new connections are reset and logged. */
  maxConnections: z.number().int().min(1).default(100_000),
  /** Keep the client's address as the source of upstream connections (needs IP_TRANSPARENT). */
  preserveSourceAddress: z.boolean().default(true),
});

export const shutdownSchema = z.strictObject({
  /** How long open connections may take to finish after SIGTERM/SIGINT before they are closed. */
  drainTimeout: duration.default(10_000),
});

export const adminSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Loopback only: the admin API can stop ward. */
  address: z.enum(['127.0.0.1', '::1']).default('127.0.0.1'),
  port: port.default(15000),
});

export const observeSchema = z.strictObject({
  /** Serve Prometheus metrics at metricsAddress:metricsPort /metrics (and /stats/prometheus). */
  metricsEnabled: z.boolean().default(true),
  metricsAddress: ip.default('0.0.0.0'),
  metricsPort: port.default(15020),
  /** Serve /healthz/ready and /healthz/live at readinessAddress:readinessPort. */
  readinessEnabled: z.boolean().default(true),
  readinessAddress: ip.default('0.0.0.0'),
  readinessPort: port.default(15021),
  /** /healthz/live fails when the main thread's event loop was blocked longer than this… */
  livenessMaxLag: duration.default(5_000),
  /** …within this window (so a probe that arrives after the stall still sees it). */
  livenessWindow: duration.default(30_000),
});

export const meshSchema = z.strictObject({
  /**
   * Nodes that run no ward: their workloads are reached in plaintext (never over HBONE), so a rule that
   * requires authentication toward them refuses the connection. Every other node in the inventory runs ward.
   */
  plaintextNodes: z.array(z.string().min(1)).default([]),
  /** CONNECT streams per tunnel connection before another connection to the same peer is opened. */
  maxStreamsPerTunnel: z.number().int().min(1).max(1000).default(100),
  /** A tunnel with no streams for this long is closed. */
  tunnelIdleTimeout: duration.default(300_000),
  /** HTTP/2 PING on a quiet tunnel this often; no answer within keepaliveTimeout closes it. */
  keepaliveInterval: duration.default(10_000),
  keepaliveTimeout: duration.default(5_000),
  /** An inbound tunnel must finish its TLS handshake within this. */
  handshakeTimeout: duration.default(5_000),
  /** TLS handshakes in progress at once on the tunnel listener, per worker; more are refused. */
  maxPendingHandshakes: z.number().int().min(1).max(1_000_000).default(1024),
  /** After its handshake, a tunnel must complete its first CONNECT request within this. */
  headerTimeout: duration.default(5_000),
  /** How long `ward run` waits at start for the SVID source before serving without identities. */
  svidStartTimeout: duration.default(10_000),
});

export const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** One JSON line per connection. */
  accessLog: z.boolean().default(true),
  /**
   * Each flow record as a log line too (`component: "flow"`). Off by default, as in Hubble: flows are
   * kept in the ring either way (admin `GET /flows`, `ward observe`), and the access line already
   * says how each connection went.
   */
  flows: z.boolean().default(false),
});

export const configSchema = z.strictObject({
  node: z.strictObject({ name: z.string().min(1).default('node') }).default({ name: 'node' }),
  capture: captureSchema,
  listeners: listenersSchema.default(listenersSchema.parse({})),
  proxy: proxySchema.default(proxySchema.parse({})),
  shutdown: shutdownSchema.default(shutdownSchema.parse({})),
  admin: adminSchema.default(adminSchema.parse({})),
  observe: observeSchema.default(observeSchema.parse({})),
  log: logSchema.default(logSchema.parse({})),
  policy: policyConfig.policyConfigSchema,
  inventory: policyConfig.inventoryConfigSchema,
  cluster: policyConfig.clusterConfigSchema,
  kubernetes: policyConfig.kubernetesConfigSchema,
  svid: svidConfigSchema.default(svidConfigSchema.parse({})),
  mesh: meshSchema.default(meshSchema.parse({})),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type CaptureConfig = Config['capture'];
