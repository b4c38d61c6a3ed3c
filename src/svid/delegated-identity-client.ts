// SPIRE Delegated Identity API client (the SPIRE agent's admin socket), as the Cilium agent uses it:
// SubscribeToX509SVIDs with selectors (default cilium:mutual-auth) and SubscribeToX509Bundles, both full
// snapshots, 20 MiB messages, reopened with jittered exponential backoff (100 ms … 10 s). The SVIDs of
// every workload on the node arrive on one stream; bundles (own and federated) on the other.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../log.ts';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { makeBundle, type TrustBundle } from './bundle.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import {
  clientChannelOptions,
  grpcTarget,
  type Selector,
  type SubscribeToX509BundlesResponse,
  type SubscribeToX509SvidsRequest,
  type SubscribeToX509SvidsResponse,
  services,
} from './grpc-protos.ts';
import { GrpcStreamSource } from './grpc-source.ts';
import { OwnSvidMemo, type ParseOwnSvid } from './own-svid-memo.ts';
import { makeSpiffeId, parseTrustDomain } from './spiffe-id.ts';
import { type StreamFailure, StreamRunner, statusName } from './stream-runner.ts';
import { runAtOnce, runInTurns, type Steps } from './turns.ts';
import { parseOwnSvid, type X509Svid } from './x509-svid.ts';

export const DEFAULT_SELECTORS: readonly string[] = ['cilium:mutual-auth'];
const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 10_000, multiplier: 2 };

export interface DelegatedIdentityOptions {
  /** The agent's admin socket: `unix:///path` or an absolute path. */
  readonly socket: string;
  /** `type:value` strings; the value may contain further colons. */
  readonly selectors?: readonly string[];
  /** When set, SVIDs of other trust domains are refused (as Cilium does). */
  readonly trustDomain?: string;
  readonly log: Logger;
  readonly backoff?: BackoffOptions;
}

/** `type:value` → Selector, with the agent's own rules (type non-empty without `:`, value non-empty). */
export function parseSelector(text: string): Selector {
  const colon = text.indexOf(':');
  const type = colon < 0 ? '' : text.slice(0, colon);
  const value = colon < 0 ? '' : text.slice(colon + 1);
  if (type === '' || value === '') {
    throw new SvidError(
      SvidErrorCode.BAD_RESPONSE,
      `bad selector ${JSON.stringify(text)}: expected <type>:<value>`,
    );
  }
  return { type, value };
}

export interface ParsedDelegatedSvids {
  readonly svids: X509Svid[];
  readonly federatesWith: string[];
  readonly rejected: { readonly spiffeId: string; readonly code: string; readonly message: string }[];
}

/**
 * Reads a SubscribeToX509SVIDsResponse; an entry that fails any check is refused on its own. With a memo
 * (the source's), an SVID whose chain and key bytes equal those the last message held is reused as it is,
 * not parsed and checked again; without one, every SVID is parsed.
 */
export function parseDelegatedSvids(
  resp: SubscribeToX509SvidsResponse,
  trustDomain?: string,
  memo?: OwnSvidMemo,
): ParsedDelegatedSvids {
  if (memo !== undefined) return memo.round((parse) => runAtOnce(readSvids(resp, trustDomain, parse)));
  return runAtOnce(readSvids(resp, trustDomain, (_slot, input) => parseOwnSvid(input)));
}

/**
 * parseDelegatedSvids in turns of the event loop (turns.ts), as the source reads its messages: a message
 * that rotates every SVID of a full node does not hold the main thread for the seconds it takes. The
 * memo's round is committed when the whole message is read.
 */
export async function parseDelegatedSvidsInTurns(
  resp: SubscribeToX509SvidsResponse,
  trustDomain: string | undefined,
  memo: OwnSvidMemo,
): Promise<ParsedDelegatedSvids> {
  const round = memo.begin();
  const parsed = await runInTurns(readSvids(resp, trustDomain, round.parse));
  round.commit();
  return parsed;
}

function* readSvids(
  resp: SubscribeToX509SvidsResponse,
  trustDomain: string | undefined,
  parse: ParseOwnSvid,
): Steps<ParsedDelegatedSvids> {
  const svids: X509Svid[] = [];
  const rejected: ParsedDelegatedSvids['rejected'][number][] = [];
  for (const entry of resp.x509_svids) {
    const idMsg = entry.x509_svid?.id;
    const claimed = idMsg ? `spiffe://${idMsg.trust_domain}${idMsg.path}` : '(no id)';
    try {
      if (entry.x509_svid === null || idMsg === null || idMsg === undefined) {
        throw new SvidError(SvidErrorCode.BAD_RESPONSE, 'an SVID entry has no x509_svid or id');
      }
      const id = makeSpiffeId(idMsg.trust_domain, idMsg.path);
      if (trustDomain !== undefined && id.trustDomain !== trustDomain) {
        throw new SvidError(
          SvidErrorCode.UNKNOWN_TRUST_DOMAIN,
          `${id.id} is outside the configured trust domain ${trustDomain}`,
        );
      }
      const svid = parse(id.id, {
        chain: entry.x509_svid.cert_chain,
        key: entry.x509_svid_key,
        hint: entry.x509_svid.hint,
      });
      if (svid.spiffeId !== id.id) {
        throw new SvidError(
          SvidErrorCode.BAD_RESPONSE,
          `id ${id.id} does not match the certificate's ${svid.spiffeId}`,
        );
      }
      svids.push(svid);
    } catch (err) {
      const e = err instanceof SvidError ? err : new SvidError(SvidErrorCode.BAD_RESPONSE, String(err));
      rejected.push({ spiffeId: claimed, code: e.code, message: e.message });
    }
    yield;
  }
  return { svids, federatesWith: [...resp.federates_with], rejected };
}

/** ca_certificates keys are `spiffe://<td>` in SPIRE's code and trust-domain names in the proto comment. */
export function parseDelegatedBundles(resp: SubscribeToX509BundlesResponse): Map<string, TrustBundle> {
  const out = new Map<string, TrustBundle>();
  for (const [key, der] of Object.entries(resp.ca_certificates)) {
    const td = parseTrustDomain(key);
    out.set(td, makeBundle(td, der));
  }
  return out;
}

interface DelegatedStub {
  SubscribeToX509SVIDs(
    req: SubscribeToX509SvidsRequest,
  ): grpc.ClientReadableStream<SubscribeToX509SvidsResponse>;
  SubscribeToX509Bundles(req: object): grpc.ClientReadableStream<SubscribeToX509BundlesResponse>;
}

export class DelegatedIdentitySource extends GrpcStreamSource {
  readonly kind = 'delegated' as const;
  protected readonly client: grpc.Client;
  protected readonly svidStream: StreamRunner<SubscribeToX509SvidsResponse>;
  protected readonly bundleStream: StreamRunner<SubscribeToX509BundlesResponse>;
  private readonly trustDomain: string | undefined;
  /** The SVIDs of the last message, by their bytes: an unchanged SVID is not parsed again. */
  private readonly memo = new OwnSvidMemo();
  private svidPart: ParsedDelegatedSvids | undefined;
  /** The newest SVID message not yet read, while one is being read. */
  private waitingSvids: SubscribeToX509SvidsResponse | undefined;
  private readingSvids = false;
  /** Bumped when SVIDs are withdrawn or the source closes: a message being read then is discarded. */
  private svidEpoch = 0;
  private bundlePart: Map<string, TrustBundle> | undefined;

  constructor(options: DelegatedIdentityOptions) {
    super(options.log.child({ source: 'delegated' }));
    this.trustDomain = options.trustDomain;
    const selectors = (options.selectors ?? DEFAULT_SELECTORS).map(parseSelector);
    const backoff = options.backoff ?? DEFAULT_BACKOFF;
    const Ctor = services().delegated;
    this.client = new Ctor(
      grpcTarget(options.socket),
      grpc.credentials.createInsecure(),
      clientChannelOptions(backoff),
    );
    const client = this.client as unknown as DelegatedStub;
    const stopOn = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.UNIMPLEMENTED]);
    this.svidStream = new StreamRunner({
      name: 'SubscribeToX509SVIDs',
      log: this.log,
      backoff: new Backoff(backoff),
      open: () => client.SubscribeToX509SVIDs({ selectors, pid: 0 }),
      onMessage: (msg) => this.onSvids(msg),
      onFailure: (f, retrying) => this.onFailure('SubscribeToX509SVIDs', f, retrying),
      stopOn,
    });
    this.bundleStream = new StreamRunner({
      name: 'SubscribeToX509Bundles',
      log: this.log,
      backoff: new Backoff(backoff),
      open: () => client.SubscribeToX509Bundles({}),
      onMessage: (msg) => this.onBundles(msg),
      onFailure: (f, retrying) => this.onFailure('SubscribeToX509Bundles', f, retrying),
      stopOn,
    });
  }

  /**
   * Messages are read one at a time, in turns (parseDelegatedSvidsInTurns). Each is a full snapshot, so
   * one that arrives while another is being read replaces any still waiting: only the newest is read
   * next. A withdrawal (PERMISSION_DENIED) or close() while a message is being read discards it.
   */
  private onSvids(msg: SubscribeToX509SvidsResponse): void {
    this.waitingSvids = msg;
    if (!this.readingSvids) void this.readSvidMessages();
  }

  private async readSvidMessages(): Promise<void> {
    this.readingSvids = true;
    try {
      for (let msg = this.waitingSvids; msg !== undefined; msg = this.waitingSvids) {
        this.waitingSvids = undefined;
        const epoch = this.svidEpoch;
        const parsed = await parseDelegatedSvidsInTurns(msg, this.trustDomain, this.memo);
        if (epoch !== this.svidEpoch) continue;
        for (const r of parsed.rejected)
          this.log.warn({ code: r.code, spiffeId: r.spiffeId }, `SVID refused: ${r.message}`);
        this.svidPart = parsed;
        this.emit();
      }
    } catch (err) {
      // readSvids refuses bad entries one by one; anything thrown here is a defect, not bad input.
      this.log.error({ err }, 'reading an SVID message failed');
    } finally {
      this.readingSvids = false;
    }
  }

  override async close(): Promise<void> {
    this.svidEpoch++;
    this.waitingSvids = undefined;
    await super.close();
  }

  private onBundles(msg: SubscribeToX509BundlesResponse): void {
    this.bundlePart = parseDelegatedBundles(msg);
    this.emit();
  }

  /** A snapshot needs both halves; after that, either half replaces its part. */
  private emit(): void {
    if (this.svidPart === undefined || this.bundlePart === undefined) return;
    this.publish({
      svids: this.svidPart.svids,
      bundles: this.bundlePart,
      federatesWith: this.svidPart.federatesWith,
    });
    this.transitionTo(['Initializing', 'Unavailable'], 'Available');
  }

  private onFailure(stream: string, f: StreamFailure, retrying: boolean): void {
    const reason = `${stream}: ${statusName(f.status)}: ${f.message}`;
    (retrying ? this.log.warn : this.log.error).call(
      this.log,
      { code: f.code, status: statusName(f.status), retrying },
      reason,
    );
    if (f.status === grpc.status.PERMISSION_DENIED && stream === 'SubscribeToX509SVIDs') {
      // Not (or no longer) an authorized delegate: stop using the SVIDs, keep asking with backoff.
      this.svidPart = undefined;
      this.waitingSvids = undefined;
      this.svidEpoch++;
      this.memo.clear();
      this.publish(null);
    }
    this.transitionTo(['Initializing', 'Available'], 'Unavailable', reason);
  }
}
