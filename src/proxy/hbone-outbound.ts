// The outbound half of HBONE for one connection: a CONNECT stream over a pooled tunnel, spliced with the
// client once the peer answers 200.
import { type ClientHttp2Stream, constants as h2, type IncomingHttpHeaders } from 'node:http2';
import type { Connection } from './connection.ts';
import { formatAuthority } from './hbone.ts';
import type { TunnelPool, TunnelSpec } from './tunnel-pool.ts';

export function connectViaTunnel(
  conn: Connection,
  pool: TunnelPool,
  spec: TunnelSpec,
  connectTimeoutMs: number,
): void {
  conn.startConnectClock(connectTimeoutMs);
  conn.extra.tunnel = `${spec.peer.ip}:${spec.peer.port}`;
  pool.open(spec, formatAuthority(conn.dst), (err, stream, peerId) => {
    if (conn.finished) {
      // The client gave up (or timed out) while the tunnel came up.
      stream?.close(h2.NGHTTP2_CANCEL);
      return;
    }
    if (err !== null || stream === null) {
      conn.close(err?.reason ?? 'tunnel_failed', err ?? undefined);
      return;
    }
    if (peerId !== null) conn.extra.peer = peerId;
    conn.adoptUpstream(stream, connectTimeoutMs);
    stream.once('response', (headers: IncomingHttpHeaders) => onResponse(conn, stream, headers));
  });
}

function onResponse(conn: Connection, stream: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
  const status = Number(headers[':status']);
  if (status === 200) {
    conn.upstreamReady();
    return;
  }
  conn.extra.status = status;
  stream.close(h2.NGHTTP2_CANCEL);
  conn.close('tunnel_refused', new Error(`the destination's ward answered ${status}`));
}
