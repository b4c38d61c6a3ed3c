// `svid.source: none`: no identities. Every lookup answers null (unavailable) at once, so connections
// that require authentication are refused instead of waiting.
import type { Logger } from '../log.ts';
import { SourceBase } from './source.ts';

export class NoneSource extends SourceBase {
  readonly kind = 'none' as const;

  constructor(log: Logger) {
    super(log.child({ source: 'none' }));
  }

  start(): void {
    this.publish({ svids: [], bundles: new Map(), federatesWith: [] });
    this.transitionTo(['Initializing'], 'Unavailable', 'svid.source is none');
  }

  refresh(): void {}

  async close(): Promise<void> {}
}
