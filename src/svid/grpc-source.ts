// The lifecycle both gRPC sources share: a client and two server streams (SVIDs, bundles), started,
// restarted on refresh, stopped on close.
import type * as grpc from '@grpc/grpc-js';
import { SourceBase } from './source.ts';

interface Stream {
  start(): void;
  restart(): void;
  stop(): void;
}

export abstract class GrpcStreamSource extends SourceBase {
  protected abstract readonly client: grpc.Client;
  protected abstract readonly svidStream: Stream;
  protected abstract readonly bundleStream: Stream;

  start(): void {
    this.svidStream.start();
    this.bundleStream.start();
  }

  refresh(): void {
    this.svidStream.restart();
    this.bundleStream.restart();
  }

  async close(): Promise<void> {
    this.svidStream.stop();
    this.bundleStream.stop();
    this.client.close();
    this.transitionTo(['Initializing', 'Available'], 'Unavailable', 'closed');
  }
}
