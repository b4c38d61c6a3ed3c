// The lab the load harnesses (bench/run.ts, bench/scale/conns.ts) run in: the two-node lab with its wards
// not started yet, the harness's policy, SVIDs that outlast the run, and kernel settings for many connections.
// SIGINT/SIGTERM tear it down; close() does the same at the end of a run.
import { Lab } from '../../src/lab/lab.ts';
import { sysctlIn } from '../../src/lab/netns.ts';
import { killTracked } from './exec.ts';

export interface LoadLab {
  readonly lab: Lab;
  /** Stops the processes the harness started, removes the signal handlers and destroys the lab. */
  close(): Promise<void>;
}

/** The harness's policy: client → server, authentication required (so every connection is mTLS). */
const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: bench-allow-client, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress:
    - fromEndpoints: [{ matchLabels: { app: client } }]
      authentication: { mode: required }
`;

export async function openLoadLab(name: string): Promise<LoadLab> {
  const lab = await Lab.create({
    name,
    startWards: false,
    mesh: { policies: { 'bench.yaml': POLICY }, svidTtl: '12h' },
  });
  const onSignal = (): void => {
    killTracked();
    void lab.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const close = async (): Promise<void> => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    killTracked();
    await lab.destroy();
  };
  try {
    for (const ns of [lab.pod('client').ns, lab.pod('server').ns, lab.node('a').ns, lab.node('b').ns]) {
      sysctlIn(ns, 'net.ipv4.ip_local_port_range', '1024 65000');
      // The wide range would hand ward's own ports out as source ports: a TIME-WAIT socket left on
      // 15006 or 15020 by one path then blocks the next ward's listen there (runs 2 and 3 lost every ward
      // path to EADDRINUSE this way). Reserved ports are never picked as ephemeral ones.
      sysctlIn(ns, 'net.ipv4.ip_local_reserved_ports', '15000-15021');
      sysctlIn(ns, 'net.ipv4.tcp_tw_reuse', 1);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { lab, close };
}
