// HBONE as Istio's ztunnel speaks it: HTTP/2 CONNECT over mutual TLS 1.3 on port 15008, one stream per
// proxied TCP connection, `:authority` = the original destination `ip:port`.
//
// Flow-control sizing, and why (shared/reference/hbone-in-node.md):
// - Node's Http2Session stops reading its socket while one of its own writes is pending. If both ends of
//   a tunnel have a pending write with the kernel buffers between them full, neither reads again: the
//   whole session stalls. A sender can have at most one connection window of DATA in flight that the
//   receiving session has not read, so when that window is smaller than what the two kernel buffers
//   hold (sender's SO_SNDBUF + receiver's SO_RCVBUF), every write completes and the stall cannot form.
//   ward sets both buffers on tunnel sockets (forced past rmem_max/wmem_max) to TUNNEL_SOCKET_BUFFER,
//   which the kernel doubles, and keeps the connection window below their sum.
// - One stream whose reader stops holds at most one stream window of the connection window; the
//   connection window leaves room for the others, so they keep moving (no head-of-line blocking).
import { isIP } from 'node:net';
import { type Endpoint, endpoint } from '../net/address.ts';

export const HBONE_ALPN = 'h2';
/** Per-stream receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
export const STREAM_WINDOW = 1 << 20;
/** Connection-level receive window. */
export const CONNECTION_WINDOW = 4 << 20;
/** SO_SNDBUF and SO_RCVBUF asked for on tunnel sockets (the kernel doubles them). */
export const TUNNEL_SOCKET_BUFFER = 4 << 20;
/** Streams per tunnel connection (ztunnel's POOL_MAX_STREAMS_PER_CONNECTION). */
export const DEFAULT_MAX_STREAMS = 100;
/** Node's http2 memory bound per session, in MB; its 10 MB default fails busy tunnels. */
export const MAX_SESSION_MEMORY_MB = 256;

export const H2_SETTINGS = {
  enablePush: false,
  initialWindowSize: STREAM_WINDOW,
  maxFrameSize: 16_384,
  maxHeaderListSize: 16_384,
} as const;

export type AuthorityResult = { ok: true; target: Endpoint } | { ok: false; reason: string };

/** `ip:port` or `[ipv6]:port`, with a literal IP (never a name) and a port 1-65535. */
export function parseAuthority(authority: string | undefined): AuthorityResult {
  if (authority === undefined || authority.length === 0) return { ok: false, reason: 'missing :authority' };
  if (authority.length > 64) return { ok: false, reason: 'authority too long' };
  let host: string;
  let portText: string;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']:');
    if (close < 0) return { ok: false, reason: `malformed authority ${JSON.stringify(authority)}` };
    host = authority.slice(1, close);
    portText = authority.slice(close + 2);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) return { ok: false, reason: `authority without a port: ${JSON.stringify(authority)}` };
    host = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
  }
  const family = isIP(host);
  if (family === 0 || (family === 6 && !authority.startsWith('['))) {
    return { ok: false, reason: `authority host is not an IP address: ${JSON.stringify(authority)}` };
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return { ok: false, reason: `authority port must be 1-65535: ${JSON.stringify(authority)}` };
  }
  return { ok: true, target: endpoint(host, Number(portText)) };
}

export function formatAuthority(e: Endpoint): string {
  return e.family === 6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}
