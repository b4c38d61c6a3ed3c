// Worker thread entry: one data plane with its own SO_REUSEPORT listeners. It reports counters to
// the main thread every second and on request, and drains when told to.
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../errors.ts';
import { initLogger } from '../log.ts';
import { DataPlane } from './data-plane.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const COUNTER_INTERVAL_MS = 1000;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('src/proxy/worker.ts runs only as a worker thread');
  const init = workerData as WorkerInit;
  const root = initLogger(init.config.log.level, { node: init.config.node.name });
  const log = root.child({ component: 'worker', worker: init.workerId });
  const accessLog = init.config.log.accessLog
    ? root.child({ component: 'access', worker: init.workerId })
    : null;
  const send = (m: FromWorker) => port.postMessage(m);
  const plane = new DataPlane({
    config: init.config,
    maxConnections: init.maxConnections,
    log,
    accessLog,
  });
  try {
    await plane.start();
  } catch (err) {
    const { message, code } = describeError(err);
    send({ type: 'fatal', code: code ?? 'PXY_WORKER_START', message });
    return;
  }
  const ticker = setInterval(() => send({ type: 'counters', counters: plane.counters }), COUNTER_INTERVAL_MS);
  ticker.unref();
  port.on('message', (m: ToWorker) => {
    if (m.type === 'counters') {
      send({ type: 'counters', counters: plane.counters });
    } else if (m.type === 'drain') {
      clearInterval(ticker);
      void plane.drain(m.deadlineMs).then((closedAtDeadline) => {
        send({ type: 'drained', closedAtDeadline, counters: plane.counters });
      });
    }
  });
  send({ type: 'ready' });
}

void main();
