// The Delegated Identity client reads a message in turns of the event loop (src/svid/turns.ts): a message
// rotating every SVID of a full node must not hold the main thread (probes, admin API, control plane) for
// the seconds its parse takes. The server is a grpc-js server on a real Unix socket standing in for a
// SPIRE agent's admin socket, scripted per call, so the tests choose what arrives while a message is read.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DelegatedIdentitySource } from '../../../src/svid/delegated-identity-client.ts';
import { type DevCa, type IssuedSvid, initCaDir } from '../../../src/svid/dev-ca.ts';
import { type SubscribeToX509SvidsResponse, services } from '../../../src/svid/grpc-protos.ts';
import type { SvidSnapshot } from '../../../src/svid/source.ts';
import { runAtOnce, runInTurns, type Steps } from '../../../src/svid/turns.ts';
import { tempDir, testLogger, until } from './helpers.ts';

const TD = 'spiffe.cilium';
/** Enough SVIDs that reading them takes many turns (about 0.5–1 ms of parse each). */
const N = 300;

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
const pool: IssuedSvid[] = [];
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  for (let i = 0; i < N; i++) pool.push(await ca.issue(`spiffe://${TD}/identity/${2000 + i}`));
});

afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

afterAll(() => tmp.cleanup());

/** A message holding `svids`, every entry with `hint` (which tells the messages apart). */
function message(svids: readonly IssuedSvid[], hint: string): SubscribeToX509SvidsResponse {
  return {
    x509_svids: svids.map((s) => ({
      x509_svid: {
        cert_chain: [...s.chain],
        id: { trust_domain: TD, path: s.spiffeId.slice(`spiffe://${TD}`.length) },
        expires_at: Math.floor(s.notAfter / 1000),
        hint,
      },
      x509_svid_key: s.key,
    })),
    federates_with: [],
  };
}

type SvidCall = grpc.ServerWritableStream<unknown, SubscribeToX509SvidsResponse>;

/** The stand-in agent: bundles once per call; `svids(call, n)` scripts the n-th SVID call (1-based). */
async function standIn(svids: (call: SvidCall, n: number) => void): Promise<string> {
  const socket = join(tmp.dir, `agent-${closers.length}.sock`);
  const server = new grpc.Server();
  let calls = 0;
  const { delegated: D } = services();
  server.addService(D.service, {
    SubscribeToX509SVIDs: (call: SvidCall) => svids(call, ++calls),
    SubscribeToX509Bundles: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({ ca_certificates: { [`spiffe://${TD}`]: ca.certificate.der } });
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (e) =>
      e ? reject(e) : resolve(),
    ),
  );
  closers.push(() => server.forceShutdown());
  return socket;
}

/** A started source and every snapshot it publishes, tagged by the hint its SVIDs carry. */
function follow(socket: string): { source: DelegatedIdentitySource; published: string[] } {
  const source = new DelegatedIdentitySource({
    socket,
    trustDomain: TD,
    log: testLogger().log,
    backoff: { initialMs: 50, maxMs: 200, multiplier: 2 },
  });
  closers.push(() => source.close());
  const published: string[] = [];
  source.subscribe((s: SvidSnapshot | null) => {
    published.push(s === null ? 'withdrawn' : `${s.svids[0]?.hint ?? 'empty'}×${s.svids.length}`);
  });
  source.start();
  return { source, published };
}

/** Counts event-loop turns (setImmediate runs) until stopped. */
function turnCounter(): { stop(): number } {
  let turns = 0;
  let running = true;
  const tick = (): void => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  return {
    stop: () => {
      running = false;
      return turns;
    },
  };
}

describe('turns', () => {
  function* busy(items: number, msEach: number): Steps<number> {
    let done = 0;
    for (let i = 0; i < items; i++) {
      const end = performance.now() + msEach;
      while (performance.now() < end);
      done++;
      yield;
    }
    return done;
  }

  it('runInTurns lets the event loop turn between budgets; runAtOnce does not; both finish the work', async () => {
    const inTurns = turnCounter();
    expect(await runInTurns(busy(60, 1), 5)).toBe(60);
    // 60 ms of work in budgets of 5 ms: about a dozen turns between them.
    expect(inTurns.stop()).toBeGreaterThanOrEqual(6);

    const atOnce = turnCounter();
    expect(runAtOnce(busy(60, 1))).toBe(60);
    await new Promise((r) => setImmediate(r));
    expect(atOnce.stop()).toBe(1);
  });
});

describe('Delegated Identity client: messages read in turns', () => {
  it('keeps the loop turning while it reads a full node, and reads only the newest of the messages that queued meanwhile', async () => {
    let turns: ReturnType<typeof turnCounter> | undefined;
    let turnsWhileReading = 0;
    const socket = await standIn((call) => {
      // Back to back: the second and third arrive while the first, N new SVIDs, is being read.
      turns = turnCounter();
      call.write(message(pool, 'first'));
      call.write(message(pool, 'second'));
      call.write(message(pool.slice(0, 2), 'third'));
    });
    const { source, published } = follow(socket);
    source.subscribe(() => {
      turnsWhileReading ||= turns?.stop() ?? 0;
    });
    await until(() => source.current()?.svids[0]?.hint === 'third', 10_000, 'the third message');
    // From the first message's write to its snapshot: delivery takes a few turns, reading N SVIDs at
    // once would add none (7 seen), in turns of TURN_BUDGET_MS one per budget of parse (23–27 seen).
    expect(turnsWhileReading).toBeGreaterThan(12);
    expect(published).toEqual([`first×${N}`, 'third×2']);
    expect(source.current()?.svids.map((s) => s.spiffeId)).toEqual(pool.slice(0, 2).map((s) => s.spiffeId));
    expect(source.state()).toBe('Available');
  });

  it('a withdrawal (PermissionDenied) that arrives while a message is read discards that message', async () => {
    const socket = await standIn((call, n) => {
      if (n === 1) {
        call.write(message(pool, 'before-denial'));
        call.emit('error', {
          code: grpc.status.PERMISSION_DENIED,
          details: 'caller not configured as an authorized delegate',
        });
      } else {
        call.write(message(pool.slice(0, 1), 'after-denial'));
      }
    });
    const { source, published } = follow(socket);
    await until(() => source.current()?.svids[0]?.hint === 'after-denial', 10_000, 'the retried call');
    // No SVID of the message read across the denial was ever published, before or after it.
    expect(published).toEqual(['withdrawn', 'after-denial×1']);
  });
});
