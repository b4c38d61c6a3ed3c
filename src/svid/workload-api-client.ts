// SPIFFE Workload API client: FetchX509SVID and FetchX509Bundles, each a stream of full snapshots, with
// the `workload.spiffe.io: true` header on every call. Errors follow the Workload API: InvalidArgument and
// Cancelled stop the source; PermissionDenied withdraws the SVIDs and retries; anything else retries with
// backoff while the last SVIDs keep being served until they expire.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { type BundleSet, makeBundle, type TrustBundle } from './bundle.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import {
  clientChannelOptions,
  grpcTarget,
  services,
  WORKLOAD_HEADER,
  type X509BundlesResponse,
  type X509SvidResponse,
} from './grpc-protos.ts';
import { GrpcStreamSource } from './grpc-source.ts';
import { OwnSvidMemo, type ParseOwnSvid } from './own-svid-memo.ts';
import type { SvidSnapshot } from './source.ts';
import { parseSpiffeId, parseTrustDomain } from './spiffe-id.ts';
import { type StreamFailure, StreamRunner, statusName } from './stream-runner.ts';
import { parseOwnSvid, type X509Svid } from './x509-svid.ts';

export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET';

export interface WorkloadApiOptions {
  /** `unix:///path`, `tcp://ip:port` or an absolute path; SPIFFE_ENDPOINT_SOCKET when absent. */
  readonly socket?: string;
  readonly log: Logger;
  readonly backoff?: BackoffOptions;
  readonly env?: NodeJS.ProcessEnv;
}

/** go-spiffe retries 1 s, 2 s, … up to 30 s; ward spreads the same range with jitter. */
const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000, multiplier: 2 };

export function workloadSocket(configured: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const socket = configured ?? env[SPIFFE_ENDPOINT_SOCKET];
  if (socket === undefined || socket === '') {
    throw new SvidError(
      SvidErrorCode.SOURCE_UNAVAILABLE,
      `no Workload API socket: configure svid.workloadSocket or set ${SPIFFE_ENDPOINT_SOCKET}`,
    );
  }
  return socket;
}

export interface ParsedX509Context {
  readonly svids: X509Svid[];
  readonly bundles: Map<string, TrustBundle>;
  /** Entries refused, with their error code. */
  readonly rejected: { readonly spiffeId: string; readonly code: string; readonly message: string }[];
}

/**
 * Reads an X509SVIDResponse: each SVID's `bundle` goes under that SVID's trust domain; federated bundle
 * keys are trust-domain IDs or names; a repeated non-empty hint keeps the first SVID. A response with
 * zero usable SVIDs is an error (the server should have said PermissionDenied). With a memo (the
 * source's), an SVID whose bytes equal those the last response held is reused, not parsed again.
 */
export function parseX509SvidResponse(resp: X509SvidResponse, memo?: OwnSvidMemo): ParsedX509Context {
  if (memo !== undefined) return memo.round((parse) => readResponse(resp, parse));
  return readResponse(resp, (_slot, input) => parseOwnSvid(input));
}

function readResponse(resp: X509SvidResponse, parse: ParseOwnSvid): ParsedX509Context {
  const svids: X509Svid[] = [];
  const bundles = new Map<string, TrustBundle>();
  const rejected: ParsedX509Context['rejected'][number][] = [];
  const hints = new Set<string>();
  if (resp.svids.length === 0) {
    throw new SvidError(SvidErrorCode.BAD_RESPONSE, 'the Workload API sent a response with zero SVIDs');
  }
  for (const s of resp.svids) {
    try {
      if (s.hint !== '' && hints.has(s.hint)) continue;
      const id = parseSpiffeId(s.spiffe_id);
      const svid = parse(id.id, { chain: s.x509_svid, key: s.x509_svid_key, hint: s.hint });
      if (svid.spiffeId !== id.id) {
        throw new SvidError(
          SvidErrorCode.BAD_RESPONSE,
          `spiffe_id ${id.id} does not match the certificate's ${svid.spiffeId}`,
        );
      }
      if (s.hint !== '') hints.add(s.hint);
      svids.push(svid);
      if (!bundles.has(id.trustDomain)) bundles.set(id.trustDomain, makeBundle(id.trustDomain, s.bundle));
    } catch (err) {
      const e = err instanceof SvidError ? err : new SvidError(SvidErrorCode.BAD_RESPONSE, String(err));
      rejected.push({ spiffeId: s.spiffe_id, code: e.code, message: e.message });
    }
  }
  if (svids.length === 0) {
    const first = rejected[0];
    throw new SvidError(
      (first?.code as SvidErrorCode | undefined) ?? SvidErrorCode.BAD_RESPONSE,
      `the Workload API sent no usable SVID: ${first?.message ?? 'none'}`,
    );
  }
  for (const [key, der] of Object.entries(resp.federated_bundles)) {
    const td = parseTrustDomain(key);
    bundles.set(td, makeBundle(td, der));
  }
  return { svids, bundles, rejected };
}

export function parseX509BundlesResponse(resp: X509BundlesResponse): Map<string, TrustBundle> {
  const out = new Map<string, TrustBundle>();
  for (const [key, der] of Object.entries(resp.bundles)) {
    const td = parseTrustDomain(key);
    out.set(td, makeBundle(td, der));
  }
  return out;
}

interface WorkloadStub {
  FetchX509SVID(req: object, md: grpc.Metadata): grpc.ClientReadableStream<X509SvidResponse>;
  FetchX509Bundles(req: object, md: grpc.Metadata): grpc.ClientReadableStream<X509BundlesResponse>;
}

export class WorkloadApiSource extends GrpcStreamSource {
  readonly kind = 'workload' as const;
  protected readonly client: grpc.Client;
  protected readonly svidStream: StreamRunner<X509SvidResponse>;
  protected readonly bundleStream: StreamRunner<X509BundlesResponse>;
  /** The SVIDs of the last response, by their bytes: an unchanged SVID is not parsed again. */
  private readonly memo = new OwnSvidMemo();
  private svidPart: ParsedX509Context | undefined;
  private bundlePart: Map<string, TrustBundle> | undefined;

  constructor(options: WorkloadApiOptions) {
    super(options.log.child({ source: 'workload' }));
    const target = grpcTarget(workloadSocket(options.socket, options.env));
    const backoff = options.backoff ?? DEFAULT_BACKOFF;
    const Ctor = services().workload;
    this.client = new Ctor(target, grpc.credentials.createInsecure(), clientChannelOptions(backoff));
    const stopOn = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.CANCELLED]);
    const meta = (): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set(WORKLOAD_HEADER, 'true');
      return m;
    };
    const client = this.client as unknown as WorkloadStub;
    this.svidStream = new StreamRunner<X509SvidResponse>({
      name: 'FetchX509SVID',
      log: this.log,
      backoff: new Backoff(backoff),
      open: () => client.FetchX509SVID({}, meta()),
      onMessage: (msg) => this.onSvids(msg),
      onFailure: (f, retrying) => this.onFailure('FetchX509SVID', f, retrying),
      stopOn,
    });
    this.bundleStream = new StreamRunner<X509BundlesResponse>({
      name: 'FetchX509Bundles',
      log: this.log,
      backoff: new Backoff(backoff),
      open: () => client.FetchX509Bundles({}, meta()),
      onMessage: (msg) => this.onBundles(msg),
      onFailure: (f, retrying) => this.onFailure('FetchX509Bundles', f, retrying),
      stopOn,
    });
  }

  private onSvids(msg: X509SvidResponse): void {
    const parsed = parseX509SvidResponse(msg, this.memo);
    for (const r of parsed.rejected)
      this.log.warn({ code: r.code, spiffeId: r.spiffeId }, `SVID refused: ${r.message}`);
    this.svidPart = parsed;
    this.emit();
  }

  private onBundles(msg: X509BundlesResponse): void {
    this.bundlePart = parseX509BundlesResponse(msg);
    this.emit();
  }

  private emit(): void {
    if (this.svidPart === undefined) return;
    const bundles: BundleSet = new Map([...this.svidPart.bundles, ...(this.bundlePart ?? [])]);
    const snapshot: SvidSnapshot = { svids: this.svidPart.svids, bundles, federatesWith: [] };
    this.publish(snapshot);
    this.transitionTo(['Initializing', 'Unavailable'], 'Available');
  }

  private onFailure(stream: string, f: StreamFailure, retrying: boolean): void {
    const reason = `${stream}: ${statusName(f.status)}: ${f.message}`;
    this.log.warn({ code: f.code, status: statusName(f.status), retrying }, reason);
    if (stream !== 'FetchX509SVID') return; // bundles also arrive with the SVIDs
    if (f.status === grpc.status.PERMISSION_DENIED) {
      // The caller has no identity: stop using the SVIDs, keep asking (entries may appear later).
      this.svidPart = undefined;
      this.memo.clear();
      this.publish(null);
    }
    this.transitionTo(['Initializing', 'Available'], 'Unavailable', reason);
  }
}
