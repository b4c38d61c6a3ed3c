// The Kubernetes source against a local HTTP server on 127.0.0.1 that stands in for kube-apiserver:
// it replays the API's real response shapes — paginated lists (metadata.continue/resourceVersion),
// chunked watch streams of {"type","object"} lines, BOOKMARK events, a watch ERROR event with a 410
// Status ("too old resource version"), a 404 Status for a CRD that is not installed, and a watch
// connection dropped mid-stream.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { decide } from '../../../src/policy/decide.ts';
import { WATCHED_RESOURCES } from '../../../src/policy/kube/resources.ts';
import {
  createKubernetesSource,
  type KubernetesSource,
  type KubernetesState,
} from '../../../src/policy/kubernetes-source.ts';

type Obj = Record<string, unknown>;
const pod = (name: string, app: string, ip: string, extra: Obj = {}): Obj => ({
  metadata: {
    name,
    namespace: 'default',
    labels: { app },
    resourceVersion: '1',
    creationTimestamp: '2024-07-30T16:46:43Z',
  },
  spec: {
    serviceAccountName: 'default',
    nodeName: 'node-a',
    containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }],
  },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '172.21.14.68' },
  ...extra,
});
const cnp = (name: string, spec: Obj): Obj => ({
  metadata: { name, namespace: 'default', resourceVersion: '1' },
  spec,
});
const defaultDeny = cnp('demo1-default-deny', {
  endpointSelector: { matchLabels: { app: 'demodeployment' } },
  ingress: [{}],
});
const allowClient2 = cnp('allow-client2', {
  endpointSelector: { matchLabels: { app: 'demodeployment' } },
  ingress: [
    {
      fromEndpoints: [{ matchLabels: { app: 'client2' } }],
      authentication: { mode: 'required' },
      toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
    },
  ],
});

const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  code,
});

interface Seen {
  path: string;
  query: URLSearchParams;
  auth: string | undefined;
}

class FakeApiServer {
  readonly seen: Seen[] = [];
  readonly open = new Set<ServerResponse>();
  server: Server;
  /** Per resource: handlers for successive watch requests; the last one repeats. */
  watches = new Map<string, ((res: ServerResponse, q: URLSearchParams) => void)[]>();
  lists = new Map<string, ((q: URLSearchParams) => { status: number; body: unknown })[]>();

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }
  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const r of this.open) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  count(resource: string, kind: 'list' | 'watch'): Seen[] {
    return this.seen.filter(
      (s) => s.path.endsWith(`/${resource}`) && (kind === 'watch') === (s.query.get('watch') === 'true'),
    );
  }
  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const resource = url.pathname.split('/').pop() ?? '';
    this.seen.push({ path: url.pathname, query: url.searchParams, auth: req.headers.authorization });
    res.on('close', () => this.open.delete(res));
    if (url.searchParams.get('watch') === 'true') {
      const hs = this.watches.get(resource) ?? [];
      const n = this.count(resource, 'watch').length - 1;
      const h = hs[Math.min(n, hs.length - 1)];
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked: no content-length
      this.open.add(res);
      if (h !== undefined) h(res, url.searchParams);
      return; // no handler: hold the watch open
    }
    const ls = this.lists.get(resource) ?? [];
    const n = this.count(resource, 'list').length - 1;
    const l = ls[Math.min(n, ls.length - 1)];
    const out =
      l === undefined
        ? {
            status: 200,
            body: { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '100' }, items: [] },
          }
        : l(url.searchParams);
    res.writeHead(out.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out.body));
  }
}

const event = (res: ServerResponse, type: string, object: unknown) =>
  res.write(`${JSON.stringify({ type, object })}\n`);
const list = (kind: string, rv: string, items: Obj[], cont?: string) => ({
  status: 200,
  body: {
    kind,
    apiVersion: 'v1',
    metadata: { resourceVersion: rv, ...(cont === undefined ? {} : { continue: cont }) },
    items,
  },
});

async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function verdict(s: KubernetesState, fromIp: string, toIp: string) {
  return decide(
    { src: s.inventory.peer(fromIp), dst: s.inventory.peer(toIp), dport: 80, protocol: 'TCP' },
    s.policy,
  );
}

describe('Kubernetes source (replayed API server)', () => {
  let api: FakeApiServer | undefined;
  let source: KubernetesSource | undefined;
  afterEach(async () => {
    await source?.close();
    await api?.close();
    source = undefined;
    api = undefined;
  });

  it('exports the exact resources and verbs it lists and watches', () => {
    expect(WATCHED_RESOURCES.map((r) => `${r.group || 'core'}/${r.resource}:${r.verbs.join(',')}`)).toEqual([
      'core/pods:list,watch',
      'core/namespaces:list,watch',
      'networking.k8s.io/networkpolicies:list,watch',
      'cilium.io/ciliumnetworkpolicies:list,watch',
      'cilium.io/ciliumclusterwidenetworkpolicies:list,watch',
      'cilium.io/ciliumidentities:list,watch',
      'cilium.io/ciliumendpoints:list,watch',
    ]);
  });

  it('lists, watches, follows bookmarks, survives a dropped watch, relists on 410, swaps consistent snapshots', async () => {
    api = new FakeApiServer();
    const client1 = pod('client1-a', 'client1', '100.64.1.197');
    const client2 = pod('client2-a', 'client2', '100.64.0.77');
    const client3 = pod('client3-a', 'client3', '100.64.1.150');
    const demo = pod('demodeployment-a', 'demodeployment', '100.64.0.124');
    // Pods: a two-page list at RV 100; after the relist, RV 300.
    api.lists.set('pods', [
      (q) =>
        q.get('continue') === null
          ? list('PodList', '100', [client1], 'page2')
          : list('PodList', '100', [demo]),
      (q) =>
        q.get('continue') === null
          ? list('PodList', '100', [client1], 'page2')
          : list('PodList', '100', [demo]),
      () => list('PodList', '300', [client1, client2, client3, demo]),
    ]);
    api.watches.set('pods', [
      // Watch 1 (from 100): a pod appears, a bookmark moves the version to 150, then the connection drops.
      (res) => {
        event(res, 'ADDED', {
          ...client2,
          metadata: { ...(client2.metadata as Obj), resourceVersion: '101' },
        });
        event(res, 'BOOKMARK', { kind: 'Pod', apiVersion: 'v1', metadata: { resourceVersion: '150' } });
        setTimeout(() => res.socket?.destroy(), 30);
      },
      // Watch 2 (from 150): the version is too old: an ERROR event with a 410 Status.
      (res) => {
        event(res, 'ERROR', status(410, 'Expired', 'too old resource version: 150 (300)'));
        res.end();
      },
      // Watch 3 (from 300): held open.
      () => {},
    ]);
    api.lists.set('namespaces', [
      () =>
        list('NamespaceList', '100', [
          { metadata: { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } } },
        ]),
    ]);
    api.lists.set('ciliumnetworkpolicies', [() => list('CiliumNetworkPolicyList', '100', [defaultDeny])]);
    api.watches.set('ciliumnetworkpolicies', [
      (res) => {
        setTimeout(
          () =>
            event(res, 'ADDED', {
              ...allowClient2,
              metadata: { ...(allowClient2.metadata as Obj), resourceVersion: '120' },
            }),
          60,
        );
      },
    ]);
    // Cilium's CCNP CRD is "not installed" here: 404 with a Status body.
    api.lists.set('ciliumclusterwidenetworkpolicies', [
      () => ({
        status: 404,
        body: status(404, 'NotFound', 'the server could not find the requested resource'),
      }),
    ]);
    api.lists.set('ciliumendpoints', [
      () =>
        list('CiliumEndpointList', '100', [
          { metadata: { name: 'client1-a', namespace: 'default' }, status: { identity: { id: 76513 } } },
        ]),
    ]);
    api.lists.set('ciliumidentities', [
      () =>
        list('CiliumIdentityList', '100', [
          {
            metadata: { name: '76513' },
            'security-labels': {
              'k8s:app': 'client1',
              'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name': 'default',
              'k8s:io.cilium.k8s.policy.cluster': 'default',
              'k8s:io.cilium.k8s.policy.serviceaccount': 'default',
              'k8s:io.kubernetes.pod.namespace': 'default',
            },
          },
        ]),
    ]);
    const server = await api.listen();
    const states: KubernetesState[] = [];
    source = createKubernetesSource({
      conn: { server, dispatcher: new Agent(), authorization: () => 'Bearer test-token' },
      clusterName: 'default',
      clusterId: 1,
      debounce: 10,
      initialBackoff: 20,
      maxBackoff: 200,
      logger: pino({ level: 'silent' }),
    });
    source.onState((s) => states.push(s));
    await source.start();

    // First snapshot: after every resource synced (CCNP absent counts as synced, empty).
    const first = source.state()!;
    expect(first.policy.policies.map((p) => p.ref.key)).toEqual([
      'CiliumNetworkPolicy/default/demo1-default-deny',
    ]);
    expect(first.inventory.lookup('100.64.1.197')?.identity).toBe(76513);
    expect(first.inventory.lookup('100.64.1.197')?.identitySource).toBe('cilium');
    expect(first.inventory.spiffeId('100.64.1.197')).toBe('spiffe://spiffe.cilium/identity/76513');
    expect((first.inventory.lookup('100.64.0.124')?.identity ?? 0) >> 16).toBe(1); // derived, cluster id 1
    expect(verdict(first, '100.64.1.197', '100.64.0.124').verdict).toBe('deny');
    expect(api.count('pods', 'list').map((s) => s.query.get('continue'))).toEqual([null, 'page2']);

    // The CNP watch adds client2's authenticated allow; the pod watch adds client2.
    const withAuth = await until('client2 allowed with auth', () => {
      const s = source!.state()!;
      if (s.inventory.lookup('100.64.0.77') === undefined) return undefined;
      const v = verdict(s, '100.64.0.77', '100.64.0.124');
      return v.verdict === 'allow' && v.authRequired ? s : undefined;
    });
    expect(withAuth.policy.policies).toHaveLength(2);

    // Dropped connection → re-watch from the bookmark's version; ERROR 410 → relist → watch from 300.
    await until('watch from 300 after the relist', () =>
      api!.count('pods', 'watch').find((s) => s.query.get('resourceVersion') === '300'),
    );
    const watches = api.count('pods', 'watch');
    expect(watches.slice(0, 3).map((s) => s.query.get('resourceVersion'))).toEqual(['100', '150', '300']);
    for (const w of watches) expect(w.query.get('allowWatchBookmarks')).toBe('true');
    expect(api.count('pods', 'list').length).toBe(3); // 2 pages, then the relist
    await until('client3 from the relist', () => source!.state()!.inventory.lookup('100.64.1.150'));
    expect(verdict(source.state()!, '100.64.1.150', '100.64.0.124').verdict).toBe('deny');
    const pods = source.reflectors.get('pods')!;
    expect(pods.stats.relists).toBe(1);
    expect(pods.stats.bookmarks).toBe(1);
    expect(pods.stats.reconnects).toBeGreaterThanOrEqual(1);
    expect(source.reflectors.get('ciliumclusterwidenetworkpolicies')!.present).toBe(false);
    expect(api.seen.every((s) => s.auth === 'Bearer test-token')).toBe(true);

    // Every published state is internally consistent: inventory and policy of the same revision.
    for (const s of states) expect(s.inventory.revision).toBe(s.policy.revision);
  });

  it('backs off and retries when the API server refuses, then syncs', async () => {
    api = new FakeApiServer();
    let refusals = 0;
    api.lists.set('namespaces', [
      () => {
        refusals++;
        return { status: 500, body: status(500, 'InternalError', 'etcd is unhappy') };
      },
      () => {
        refusals++;
        return { status: 500, body: status(500, 'InternalError', 'etcd is unhappy') };
      },
      () => list('NamespaceList', '7', [{ metadata: { name: 'default' } }]),
    ]);
    const server = await api.listen();
    source = createKubernetesSource({
      conn: { server, dispatcher: new Agent(), authorization: () => undefined },
      clusterName: 'default',
      clusterId: 0,
      debounce: 5,
      initialBackoff: 10,
      maxBackoff: 50,
      logger: pino({ level: 'silent' }),
    });
    await source.start();
    expect(refusals).toBe(2);
    expect(source.reflectors.get('namespaces')!.resourceVersion).toBe('7');
    expect(source.reflectors.get('namespaces')!.stats.reconnects).toBe(2);
  });
});
