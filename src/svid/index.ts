// The identity domain's facade. The data path (src/proxy) imports only this file: it gets credentials and
// verifies peers, and cannot mint certificates (the development CA is not exported here).
//
// Main thread:   const store = createIdentityService(config.svid, log); await store.ready(…);
//                worker.postMessage(store.snapshot()); store.onChange((s) => worker.postMessage(s));
// Each worker:   const view = createCredentialView(); view.apply(snapshot) on every message;
//                view.secureContext(id) for the certificate to present, view.verifyTlsPeer(socket, …)
//                after the handshake.
import type { Logger } from '../log.ts';
import type { SvidConfig } from './config.ts';
import { DelegatedIdentitySource } from './delegated-identity-client.ts';
import { FilesSource } from './files-source.ts';
import { createIdentityStore, type IdentityStore } from './identity-store.ts';
import { NoneSource } from './none-source.ts';
import type { SourceState, SvidSource } from './source.ts';
import { identitySpiffeId, namespaceSpiffeId } from './spiffe-id.ts';
import { WorkloadApiSource } from './workload-api-client.ts';

export type { SvidConfig, SvidConfigInput } from './config.ts';
export { defaultSvidConfig, svidConfigSchema } from './config.ts';
export type {
  BundleCredentials,
  CredentialsSnapshot,
  CredentialView,
  IdentityCredentials,
} from './credentials.ts';
export { acceptTls, connectTlsOptions, createCredentialView, peerChain } from './credentials.ts';
export { isSvidError, SvidError, SvidErrorCode } from './errors.ts';
export type { IdentityStore, IdentityStoreStats } from './identity-store.ts';
export type { SourceState } from './source.ts';
export type { IdScheme, SpiffeId, WorkloadName } from './spiffe-id.ts';
export {
  DEFAULT_TRUST_DOMAIN,
  identitySpiffeId,
  namespaceSpiffeId,
  parseSpiffeId,
  parseTrustDomain,
  parseWorkloadName,
  tryParseSpiffeId,
} from './spiffe-id.ts';
export type { SpiffeIdMatcher, VerifiedPeer } from './verify.ts';
export { authorizeId } from './verify.ts';

/** The SVID source the configuration names (not started). */
export function createSvidSource(
  config: SvidConfig,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): SvidSource {
  const backoff = { initialMs: config.reconnectInitial, maxMs: config.reconnectMax, multiplier: 2 };
  switch (config.source) {
    case 'delegated':
      return new DelegatedIdentitySource({
        socket: config.delegatedSocket,
        selectors: config.selectors,
        trustDomain: config.trustDomain,
        log,
        backoff,
      });
    case 'workload':
      return new WorkloadApiSource({ socket: config.workloadSocket, log, backoff, env });
    case 'files':
      return new FilesSource({
        directory: config.filesDirectory,
        log,
        pollIntervalMs: config.filesPollInterval,
      });
    case 'none':
      return new NoneSource(log);
  }
}

export interface IdentityService extends IdentityStore {
  /** The source behind the store (its kind and own state: a stream can be down while SVIDs are held). */
  readonly source: SvidSource;
  /** Resolves once the store left Initializing (or after `timeoutMs`), with its state then. */
  ready(timeoutMs: number): Promise<SourceState>;
  /** The SPIFFE ID of a workload under the configured scheme. */
  spiffeIdOf(workload: { identity?: number; namespace?: string; serviceAccount?: string }): string;
}

/** Source + store, started: the one object the control plane holds. */
export function createIdentityService(
  config: SvidConfig,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): IdentityService {
  const slog = log.child({ component: 'svid' });
  const source = createSvidSource(config, slog, env);
  const store = createIdentityStore({ source, log: slog });
  source.start();
  return {
    source,
    state: () => store.state(),
    snapshot: () => store.snapshot(),
    onChange: (l) => store.onChange(l),
    view: () => store.view(),
    stats: () => store.stats(),
    async close() {
      await store.close();
      await source.close();
    },
    ready(timeoutMs) {
      if (store.state() !== 'Initializing') return Promise.resolve(store.state());
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          off();
          resolve(store.state());
        }, timeoutMs);
        const off = store.onChange((s) => {
          if (s.state === 'Initializing') return;
          clearTimeout(timer);
          off();
          resolve(s.state);
        });
      });
    },
    spiffeIdOf(w) {
      if (config.idScheme === 'identity') {
        if (w.identity === undefined) throw new TypeError('the identity scheme needs a numeric identity');
        return identitySpiffeId(w.identity, config.trustDomain);
      }
      if (w.namespace === undefined || w.serviceAccount === undefined) {
        throw new TypeError('the ns-sa scheme needs a namespace and a service account');
      }
      return namespaceSpiffeId(w.namespace, w.serviceAccount, config.trustDomain);
    },
  };
}
