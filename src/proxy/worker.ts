// Worker thread entry: one data plane with its own SO_REUSEPORT listeners, and its own view of the
// control plane, rebuilt from the snapshots the main thread posts. It reports counters every second,
// sends flow records in batches, re-checks open connections after every change, and drains when told.
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../errors.ts';
import { initLogger } from '../log.ts';
import type { FlowRecord } from '../observe/flow.ts';
import { DataPlane } from './data-plane.ts';
import { MeshView } from './mesh.ts';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.ts';

const COUNTER_INTERVAL_MS = 1000;
const FLOW_BATCH_MS = 50;
const FLOW_BATCH_MAX = 256;

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('src/proxy/worker.ts runs only as a worker thread');
  const init = workerData as WorkerInit;
  const config = init.config;
  const root = initLogger(init.logLevel, { node: config.node.name });
  const log = root.child({ component: 'worker', worker: init.workerId });
  const accessLog = config.log.accessLog ? root.child({ component: 'access', worker: init.workerId }) : null;
  const send = (m: FromWorker) => port.postMessage(m);

  const mesh = new MeshView({
    nodeName: config.node.name,
    trustDomain: config.svid.trustDomain,
    idScheme: config.svid.idScheme,
    plaintextNodes: config.mesh.plaintextNodes,
  });
  if (init.control !== null) mesh.applyControl(init.control);
  if (init.credentials !== null) mesh.applyCredentials(init.credentials);

  let flows: FlowRecord[] = [];
  let flushPending = false;
  const flushFlows = () => {
    flushPending = false;
    if (flows.length === 0) return;
    send({ type: 'flows', flows });
    flows = [];
  };
  const onFlow = (f: FlowRecord) => {
    flows.push(f);
    if (flows.length >= FLOW_BATCH_MAX) flushFlows();
    else if (!flushPending) {
      flushPending = true;
      setTimeout(flushFlows, FLOW_BATCH_MS);
    }
  };

  const plane = new DataPlane({ config, maxConnections: init.maxConnections, log, accessLog, mesh, onFlow });
  try {
    await plane.start();
  } catch (err) {
    const { message, code } = describeError(err);
    send({ type: 'fatal', code: code ?? 'PXY_WORKER_START', message });
    return;
  }
  const counters = () =>
    ({ type: 'counters', counters: plane.counters, tunnels: plane.pool.stats() }) as const;
  const ticker = setInterval(() => send(counters()), COUNTER_INTERVAL_MS);
  ticker.unref();
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'counters':
        send(counters());
        break;
      case 'control':
        mesh.applyControl(m.control);
        send({ type: 'rechecked', closed: plane.recheckAll() });
        break;
      case 'credentials':
        mesh.applyCredentials(m.credentials);
        send({ type: 'rechecked', closed: plane.recheckAll() });
        break;
      case 'logging':
        // Child loggers without a level of their own follow the root's.
        root.level = m.level;
        break;
      case 'drain':
        clearInterval(ticker);
        void plane.drain(m.deadlineMs).then((closedAtDeadline) => {
          flushFlows();
          send({ type: 'drained', closedAtDeadline, counters: plane.counters });
        });
        break;
    }
  });
  send({ type: 'ready' });
}

void main();
