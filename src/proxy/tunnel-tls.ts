// What the HBONE client and server need from the identity domain: TLS material to present, and a check
// of the peer after the handshake. src/proxy never builds certificates; it is handed these.
import type { ConnectionOptions, SecureContext, TLSSocket } from 'node:tls';

export type PeerCheck =
  | { readonly ok: true; readonly spiffeId: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface TunnelClientTls {
  /** TLS options carrying the source workload's certificate (secureContext, or key/cert/ca). */
  readonly options: ConnectionOptions;
  /** Verifies the server's chain and that it is exactly the destination identity expected. */
  verify(socket: TLSSocket): PeerCheck;
}

export interface TunnelServerTls {
  /** The certificate of the destination workload, chosen by the original destination IP. */
  readonly secureContext: SecureContext;
  /** Verifies the client's chain; the SPIFFE ID it returns is the source identity. */
  verify(socket: TLSSocket): PeerCheck;
}

/** TLS 1.3 only, ALPN h2, no SNI (ztunnel: "illegal to use IPs in SNI"), ward's own peer verification. */
export const TUNNEL_TLS_BASE = {
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  ALPNProtocols: ['h2'],
  rejectUnauthorized: false,
} as const;
