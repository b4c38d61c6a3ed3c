// List+watch of one resource, as client-go's reflector does it: a paginated list gives a consistent
// store and its resourceVersion; a watch from there applies ADDED/MODIFIED/DELETED, BOOKMARKs only move
// the resourceVersion (allowWatchBookmarks); 410 Gone (an HTTP status, or an ERROR event with code 410)
// means the version is too old: relist. A dropped connection re-watches from the last version after a
// jittered, doubling backoff.
import type { Logger } from '../../log.ts';
import { PolicyError } from '../errors.ts';
import type { KubeConnection } from './client.ts';
import { resourcePath, type WatchedResource } from './resources.ts';

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly uid?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [k: string]: unknown;
}

export type ReflectorState = 'idle' | 'listing' | 'watching' | 'backoff' | 'stopped';

export interface ReflectorOptions {
  readonly conn: KubeConnection;
  readonly resource: WatchedResource;
  readonly logger: Logger;
  /** Called after the store changed (a list replaced it, or a watch event applied). */
  readonly onChange: () => void;
  readonly pageSize?: number;
  readonly watchTimeoutSeconds?: number;
  readonly initialBackoff?: number;
  readonly maxBackoff?: number;
}

class GoneError extends Error {}
class NotFoundError extends Error {}

export function objectKey(o: KubeObject): string {
  return o.metadata.namespace === undefined || o.metadata.namespace === ''
    ? o.metadata.name
    : `${o.metadata.namespace}/${o.metadata.name}`;
}

export class Reflector {
  readonly resource: WatchedResource;
  /** The objects as of `resourceVersion`, by `namespace/name`. Replaced whole by a list. */
  store: Map<string, KubeObject> = new Map();
  resourceVersion: string | undefined;
  /** Whether the first list completed (or the optional resource is absent). */
  synced = false;
  /** Whether the API serves this resource (false: an optional CRD is not installed). */
  present = true;
  state: ReflectorState = 'idle';
  readonly stats = { lists: 0, watches: 0, relists: 0, bookmarks: 0, events: 0, reconnects: 0 };

  readonly #o: ReflectorOptions;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #syncedWaiters: (() => void)[] = [];
  #sleepTimer: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;

  constructor(o: ReflectorOptions) {
    this.#o = o;
    this.resource = o.resource;
  }

  #transitionTo(from: readonly ReflectorState[], to: ReflectorState): void {
    if (!from.includes(this.state)) return;
    if (this.#o.logger.isLevelEnabled('debug'))
      this.#o.logger.debug({ resource: this.resource.resource }, `${this.state} -> ${to}`);
    this.state = to;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((r) => this.#syncedWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.#transitionTo(['idle', 'listing', 'watching', 'backoff'], 'stopped');
    this.#abort.abort();
    if (this.#sleepTimer !== undefined) clearTimeout(this.#sleepTimer);
    this.#wake?.();
    await this.#loop;
  }

  #markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.#syncedWaiters.splice(0)) w();
  }

  async #run(): Promise<void> {
    const initial = this.#o.initialBackoff ?? 500;
    const max = this.#o.maxBackoff ?? 30_000;
    let backoff = initial;
    let needList = true;
    while (!this.#stopped()) {
      try {
        if (needList) {
          this.#transitionTo(['idle', 'backoff', 'watching', 'listing'], 'listing');
          await this.#list();
          needList = false;
        }
        this.#transitionTo(['listing', 'backoff', 'watching'], 'watching');
        const delivered = await this.#watch();
        if (delivered) backoff = initial;
      } catch (err) {
        if (this.#stopped()) break;
        if (err instanceof GoneError) {
          this.stats.relists++;
          this.#o.logger.info(
            { resource: this.resource.resource, resourceVersion: this.resourceVersion },
            '410 Gone: relisting',
          );
          needList = true;
          continue;
        }
        if (err instanceof NotFoundError && this.resource.optional) {
          // The CRD is not installed: nothing to enforce from it. Look again later.
          if (this.present)
            this.#o.logger.info({ resource: this.resource.resource }, 'resource not served by this cluster');
          this.present = false;
          if (this.store.size > 0) {
            this.store = new Map();
            this.#o.onChange();
          }
          this.#markSynced();
          needList = true;
          this.#transitionTo(['listing', 'watching'], 'backoff');
          await this.#sleep(max);
          continue;
        }
        this.stats.reconnects++;
        this.#o.logger.warn(
          { resource: this.resource.resource, err: (err as Error).message, retryInMs: backoff },
          'list/watch failed; retrying',
        );
        this.#transitionTo(['listing', 'watching'], 'backoff');
        await this.#sleep(backoff * (0.8 + Math.random() * 0.4));
        backoff = Math.min(max, backoff * 2);
      }
    }
  }

  #stopped(): boolean {
    return this.state === 'stopped';
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#sleepTimer = setTimeout(resolve, ms);
    });
  }

  async #get(query: string): Promise<{
    statusCode: number;
    body: AsyncIterable<Buffer> & { text(): Promise<string>; dump(): Promise<void> };
  }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.#o.conn.authorization();
    if (auth !== undefined) headers.authorization = auth;
    const res = await this.#o.conn.dispatcher.request({
      origin: this.#o.conn.server,
      path: `${resourcePath(this.resource)}?${query}`,
      method: 'GET',
      headers,
      signal: this.#abort.signal,
    });
    return res as never;
  }

  async #failFor(statusCode: number, body: { text(): Promise<string> }): Promise<never> {
    const text = await body.text().catch(() => '');
    if (statusCode === 410) throw new GoneError(text);
    if (statusCode === 404) throw new NotFoundError(text);
    let message = text.slice(0, 300);
    try {
      const s = JSON.parse(text) as { message?: string };
      if (typeof s.message === 'string') message = s.message;
    } catch {
      // not a Status object
    }
    throw new PolicyError(
      'POL_KUBE_API',
      `GET ${resourcePath(this.resource)}: HTTP ${statusCode}: ${message}${statusCode === 403 ? ' (check the RBAC rules from WATCHED_RESOURCES)' : ''}`,
    );
  }

  async #list(): Promise<void> {
    const next = new Map<string, KubeObject>();
    let cont: string | undefined;
    let rv: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ limit: String(this.#o.pageSize ?? 500) });
      if (cont !== undefined) q.set('continue', cont);
      const res = await this.#get(q.toString());
      if (res.statusCode !== 200) {
        // An expired continue token is 410: start the list over (client-go does the same).
        if (res.statusCode === 410 && cont !== undefined) {
          await res.body.dump();
          next.clear();
          cont = undefined;
          continue;
        }
        await this.#failFor(res.statusCode, res.body);
      }
      const list = JSON.parse(await res.body.text()) as {
        metadata?: { resourceVersion?: string; continue?: string };
        items?: KubeObject[];
      };
      for (const item of list.items ?? []) {
        if (item?.metadata?.name === undefined) continue;
        next.set(objectKey(item), item);
      }
      rv = list.metadata?.resourceVersion;
      cont = list.metadata?.continue;
      if (cont === undefined || cont === '') break;
    }
    this.stats.lists++;
    this.present = true;
    this.store = next;
    this.resourceVersion = rv;
    this.#o.onChange();
    this.#markSynced();
  }

  /** One watch request; resolves when the server ends it. Returns whether anything was delivered. */
  async #watch(): Promise<boolean> {
    const q = new URLSearchParams({
      watch: 'true',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.#o.watchTimeoutSeconds ?? 300),
    });
    if (this.resourceVersion !== undefined) q.set('resourceVersion', this.resourceVersion);
    const res = await this.#get(q.toString());
    if (res.statusCode !== 200) await this.#failFor(res.statusCode, res.body);
    this.stats.watches++;
    let delivered = false;
    let buf = '';
    for await (const chunk of res.body) {
      buf += chunk.toString('utf8');
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line !== '') {
          this.#apply(line);
          delivered = true;
        }
        nl = buf.indexOf('\n');
      }
    }
    return delivered;
  }

  #apply(line: string): void {
    let ev: { type?: string; object?: KubeObject & { code?: number; message?: string } };
    try {
      ev = JSON.parse(line) as typeof ev;
    } catch {
      throw new PolicyError(
        'POL_KUBE_API',
        `watch ${this.resource.resource}: not a JSON event: ${line.slice(0, 120)}`,
      );
    }
    const o = ev.object;
    if (ev.type === 'ERROR') {
      if (o?.code === 410) throw new GoneError(o.message ?? 'Gone');
      throw new PolicyError(
        'POL_KUBE_API',
        `watch ${this.resource.resource}: ${o?.message ?? 'error event'}`,
      );
    }
    if (o?.metadata === undefined) return;
    const rv = o.metadata.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      this.stats.bookmarks++;
      if (rv !== undefined) this.resourceVersion = rv;
      return;
    }
    // Applied in place: readers (the source's rebuild) run synchronously between events.
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.store.set(objectKey(o), o);
    else if (ev.type === 'DELETED') this.store.delete(objectKey(o));
    else return;
    this.stats.events++;
    if (rv !== undefined) this.resourceVersion = rv;
    this.#o.onChange();
  }
}
