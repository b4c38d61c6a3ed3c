// SVIDs and bundles from a directory, for hosts without SPIRE:
//   <name>.svid.pem     the certificate chain, leaf first (the key may follow in the same file)
//   <name>.key.pem      its PKCS#8 private key (unless it is inside <name>.svid.pem)
//   <trust-domain>.bundle.pem | <trust-domain>.bundle.json   CA certificates (PEM or SPIFFE bundle)
// The directory is watched (and polled as a fallback). Writers should replace files by rename; a file that
// does not parse (half-written, or a key not yet matching its new certificate) is ignored and the last good
// version of that identity kept, until the pair is valid again.
import { type FSWatcher, readdirSync, readFileSync, watch } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.ts';
import { bundleFromText, sameBundle, type TrustBundle } from './bundle.ts';
import { SvidError, SvidErrorCode } from './errors.ts';
import { OwnSvidMemo } from './own-svid-memo.ts';
import { SourceBase } from './source.ts';
import { sameSvid, type X509Svid } from './x509-svid.ts';

export interface FilesSourceOptions {
  readonly directory: string;
  readonly log: Logger;
  /** Rescan period as a fallback to the watcher. */
  readonly pollIntervalMs?: number;
  /** Coalesce bursts of watcher events. */
  readonly debounceMs?: number;
}

const SVID_SUFFIX = '.svid.pem';
const KEY_SUFFIX = '.key.pem';
const BUNDLE_PEM = '.bundle.pem';
const BUNDLE_JSON = '.bundle.json';

export class FilesSource extends SourceBase {
  readonly kind = 'files' as const;
  private readonly directory: string;
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private svids = new Map<string, X509Svid>();
  private bundles = new Map<string, TrustBundle>();
  /** The SVID files of the last scan, by their text: a file that did not change is not parsed again. */
  private readonly memo = new OwnSvidMemo();
  /** Last reported problem per file, so a broken file is logged once, not on every scan. */
  private readonly problems = new Map<string, string>();
  private closed = false;

  constructor(options: FilesSourceOptions) {
    super(options.log.child({ source: 'files', directory: options.directory }));
    this.directory = options.directory;
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.debounceMs = options.debounceMs ?? 50;
  }

  start(): void {
    this.scan();
    try {
      this.watcher = watch(this.directory, { persistent: false }, () => this.schedule());
      this.watcher.on('error', (err) => this.log.warn({ err }, 'directory watch failed; polling only'));
    } catch (err) {
      this.log.warn({ err }, 'cannot watch the directory; polling only');
    }
    this.poller = setInterval(() => this.scan(), this.pollIntervalMs);
    this.poller.unref();
  }

  refresh(): void {
    this.scan();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    if (this.poller !== undefined) clearInterval(this.poller);
    if (this.debounce !== undefined) clearTimeout(this.debounce);
    this.transitionTo(['Initializing', 'Available'], 'Unavailable', 'closed');
  }

  private schedule(): void {
    if (this.debounce !== undefined || this.closed) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.scan();
    }, this.debounceMs);
    this.debounce.unref();
  }

  private report(file: string, err: unknown): void {
    const e =
      err instanceof SvidError
        ? err
        : new SvidError(SvidErrorCode.MALFORMED_CERT, String((err as Error).message ?? err));
    const text = `${e.code}: ${e.message}`;
    if (this.problems.get(file) === text) return;
    this.problems.set(file, text);
    this.log.warn({ code: e.code, file }, `ignoring ${file} (keeping its last good version): ${e.message}`);
  }

  /** Reads the directory; keeps the last good version of any file that does not parse now. */
  scan(): void {
    if (this.closed) return;
    let names: string[];
    try {
      names = readdirSync(this.directory);
    } catch (err) {
      this.log.warn({ err }, 'cannot read the SVID directory');
      this.transitionTo(['Initializing', 'Available'], 'Unavailable', (err as Error).message);
      return;
    }
    const present = new Set(names);
    const svids = new Map<string, X509Svid>();
    const bundles = new Map<string, TrustBundle>();
    const read = (n: string): string => readFileSync(join(this.directory, n), 'utf8');
    this.memo.round((parse) => {
      for (const name of names) {
        if (name.endsWith(SVID_SUFFIX)) {
          const base = name.slice(0, -SVID_SUFFIX.length);
          const keyFile = `${base}${KEY_SUFFIX}`;
          try {
            const chain = read(name);
            const key = present.has(keyFile) ? read(keyFile) : undefined;
            const svid = parse(base, { chain, key });
            svids.set(base, svid);
            this.problems.delete(name);
          } catch (err) {
            this.report(name, err);
            const last = this.svids.get(base);
            if (last !== undefined) svids.set(base, last);
          }
        } else if (name.endsWith(BUNDLE_PEM) || name.endsWith(BUNDLE_JSON)) {
          const td = name.slice(0, -(name.endsWith(BUNDLE_PEM) ? BUNDLE_PEM : BUNDLE_JSON).length);
          try {
            const b = bundleFromText(td, read(name));
            if (b.authorities.length === 0)
              throw new SvidError(SvidErrorCode.BAD_BUNDLE, `${name} holds no CA certificate`);
            bundles.set(b.trustDomain, b);
            this.problems.delete(name);
          } catch (err) {
            this.report(name, err);
            const last = this.bundles.get(td);
            if (last !== undefined) bundles.set(td, last);
          }
        }
      }
    });
    const changed =
      this.current() === undefined ||
      svids.size !== this.svids.size ||
      bundles.size !== this.bundles.size ||
      [...svids].some(([k, v]) => {
        const o = this.svids.get(k);
        return o === undefined || !sameSvid(o, v);
      }) ||
      [...bundles].some(([k, v]) => !sameBundle(this.bundles.get(k), v));
    this.svids = svids;
    this.bundles = bundles;
    if (changed) {
      this.publish({ svids: [...svids.values()], bundles, federatesWith: [] });
    }
    this.transitionTo(['Initializing', 'Unavailable'], 'Available');
  }
}
