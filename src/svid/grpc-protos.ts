// The two gRPC services, loaded from the .proto files in ./proto, and the message shapes ward reads and
// writes. proto-loader options: field names as in the protos (snake_case), bytes as Buffer, int64 as
// Number (Unix seconds fit), and defaults filled in so absent repeated/map fields read as empty.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

/** Cilium raises gRPC's 4 MiB receive limit to 20 MiB: bundles can be large. */
export const MAX_MESSAGE_BYTES = 20 * 1024 * 1024;

export const WORKLOAD_SERVICE = 'SpiffeWorkloadAPI';
export const DELEGATED_SERVICE = 'spire.api.agent.delegatedidentity.v1.DelegatedIdentity';
export const WORKLOAD_HEADER = 'workload.spiffe.io';

// ---- Workload API messages ----
export interface WorkloadX509Svid {
  spiffe_id: string;
  x509_svid: Buffer;
  x509_svid_key: Buffer;
  bundle: Buffer;
  hint: string;
}
export interface X509SvidResponse {
  svids: WorkloadX509Svid[];
  crl: Buffer[];
  federated_bundles: Record<string, Buffer>;
}
export interface X509BundlesResponse {
  crl: Buffer[];
  bundles: Record<string, Buffer>;
}

// ---- Delegated Identity API messages ----
export interface Selector {
  type: string;
  value: string;
}
export interface SpiffeIdMessage {
  trust_domain: string;
  path: string;
}
export interface TypesX509Svid {
  cert_chain: Buffer[];
  id: SpiffeIdMessage | null;
  expires_at: number;
  hint: string;
}
export interface X509SvidWithKey {
  x509_svid: TypesX509Svid | null;
  x509_svid_key: Buffer;
}
export interface SubscribeToX509SvidsRequest {
  selectors: Selector[];
  pid: number;
}
export interface SubscribeToX509SvidsResponse {
  x509_svids: X509SvidWithKey[];
  federates_with: string[];
}
export interface SubscribeToX509BundlesResponse {
  ca_certificates: Record<string, Buffer>;
}

interface Loaded {
  workload: grpc.ServiceClientConstructor;
  delegated: grpc.ServiceClientConstructor;
}

let loaded: Loaded | undefined;

function lookup(pkg: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let cur: unknown = pkg;
  for (const part of path.split('.')) cur = (cur as Record<string, unknown>)[part];
  if (typeof cur !== 'function') throw new Error(`gRPC service ${path} is missing from the protos`);
  return cur as grpc.ServiceClientConstructor;
}

export function services(): Loaded {
  if (loaded === undefined) {
    const workloadDef = protoLoader.loadSync(`${PROTO_DIR}workload.proto`, LOADER_OPTIONS);
    const delegatedDef = protoLoader.loadSync(
      `${PROTO_DIR}spire/api/agent/delegatedidentity/v1/delegatedidentity.proto`,
      LOADER_OPTIONS,
    );
    loaded = {
      workload: lookup(grpc.loadPackageDefinition(workloadDef), WORKLOAD_SERVICE),
      delegated: lookup(grpc.loadPackageDefinition(delegatedDef), DELEGATED_SERVICE),
    };
  }
  return loaded;
}

/** `unix:///abs/path` or `tcp://<ip>:<port>` → a grpc-js target; a bare absolute path means a Unix socket. */
export function grpcTarget(address: string): string {
  if (address.startsWith('/')) return `unix://${address}`;
  if (address.startsWith('unix://')) {
    const path = address.slice('unix://'.length);
    if (!path.startsWith('/') || /[?#]/.test(path)) {
      throw new TypeError(`bad socket address ${address}: expected unix:///absolute/path`);
    }
    return `unix://${path}`;
  }
  const tcp = /^tcp:\/\/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(address);
  if (tcp !== null) return `${tcp[1]}:${tcp[2]}`;
  throw new TypeError(`bad socket address ${address}: expected unix:///path or tcp://<ip>:<port>`);
}

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
};

/** Client channel options: the message limits, and grpc-js's own reconnect backoff kept within ours. */
export function clientChannelOptions(backoff: { initialMs: number; maxMs: number }): grpc.ChannelOptions {
  return {
    ...CHANNEL_OPTIONS,
    'grpc.initial_reconnect_backoff_ms': backoff.initialMs,
    'grpc.max_reconnect_backoff_ms': backoff.maxMs,
  };
}
