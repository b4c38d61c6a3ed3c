// The Helm chart and the plain manifests rendered from it: lint, render with default and non-default
// values, validate every object against the Kubernetes schemas, and check the DaemonSet against the code
// it runs (RBAC = WATCHED_RESOURCES, the mounts the rendered config expects, ward's config validation).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../../src/config/load.ts';
import { WATCHED_RESOURCES } from '../../../src/policy/kube/resources.ts';
import { CHART, type K8sObject, parseObjects, ROOT, render, renderText, tool } from './tools.ts';

const NON_DEFAULT = [
  'image.repository=registry.example/ward',
  'image.tag=1.2.3',
  'trustDomain=prod.example',
  'idScheme=ns-sa',
  'spire.agentSocketDir=/var/run/spire-agent',
  'spire.adminSocketName=delegated.sock',
  'spire.selectors={cilium:mutual-auth,k8s:ns:default}',
  'ports.outbound=16001',
  'ports.inboundPlaintext=16006',
  'ports.inboundTunnel=16008',
  'ports.admin=16000',
  'capture.tproxyMark=0x40',
  'capture.bypassMark=0x80',
  'capture.markMask=0xc0',
  'capture.podCidrs={10.244.7.0/24,fd00:7::/64}',
  'proxy.workers=3',
  'drainTimeoutSeconds=45',
  'log.level=debug',
  'resources.limits.cpu=4',
  'resources.limits.memory=1Gi',
  'cluster.name=east',
  'cluster.id=7',
  'metrics.serviceMonitor.enabled=true',
  'createNamespace=true',
];

type Validatable = { validate(): void };
const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/DaemonSet': DaemonSet,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
};

function one(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered objects are walked by path in assertions
type Any = any;

function podSpec(objs: K8sObject[]): Any {
  return (one(objs, 'DaemonSet') as Any).spec.template.spec;
}

function wardContainer(objs: K8sObject[]): Any {
  return podSpec(objs).containers.find((c: Any) => c.name === 'ward');
}

/** The rendered config as the ward container sees it: the ConfigMap's file plus the container's env. */
function renderedConfig(objs: K8sObject[]) {
  const cm = one(objs, 'ConfigMap') as Any;
  const env: Record<string, string> = { WARD_NODE_NAME: 'node-1' };
  // The init container's output, when there is one (pod-cidrs.test.ts checks what it writes).
  if (podSpec(objs).initContainers?.some((c: Any) => c.name === 'pod-cidrs')) {
    env.WARD_CAPTURE_POD_CIDRS = '10.0.3.0/24';
  }
  return parseConfigText(cm.data['ward.yaml'], 'rendered ConfigMap ward.yaml', env);
}

function rbacRules(objs: K8sObject[], name: string): string[] {
  const role = one(objs, 'ClusterRole', name) as Any;
  return role.rules
    .flatMap((r: Any) =>
      r.apiGroups.flatMap((g: string) =>
        r.resources.flatMap((res: string) => r.verbs.map((v: string) => `${g}/${res}:${v}`)),
      ),
    )
    .sort();
}

describe.each([
  ['default values', [] as string[]],
  ['non-default values', NON_DEFAULT],
])('the chart with %s', (_label, sets) => {
  const objs = render(sets);

  it('lints', () => {
    const res = tool('helm', ['lint', '--strict', CHART, ...sets.flatMap((s) => ['--set', s])]);
    expect(res.stderr + res.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(res.status).toBe(0);
  });

  it('renders objects that validate against the Kubernetes schemas', () => {
    expect(objs.length).toBeGreaterThanOrEqual(7);
    for (const o of objs) {
      if (o.kind === 'ServiceMonitor') continue; // a CRD: checked below
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `no schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
      if (o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')) {
        expect(o.metadata.namespace, `${o.kind} namespace`).toBe('ward-system');
      }
    }
  });

  it('grants exactly the verbs and resources the Kubernetes source lists and watches', () => {
    const want = WATCHED_RESOURCES.flatMap((r) => r.verbs.map((v) => `${r.group}/${r.resource}:${v}`)).sort();
    expect(rbacRules(objs, 'ward')).toEqual(want);
    const binding = one(objs, 'ClusterRoleBinding', 'ward') as Any;
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: 'ward',
    });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'ward', namespace: 'ward-system' }]);
    expect(podSpec(objs).serviceAccountName).toBe('ward');
  });

  it("renders a config that passes ward's own validation", () => {
    const c = renderedConfig(objs);
    expect(c.svid.source).toBe('delegated');
    expect(c.policy.source).toBe('kubernetes');
    expect(c.inventory.source).toBe('kubernetes');
    expect(c.node.name).toBe('node-1');
  });

  it('mounts what the rendered config expects: the config file and the SPIRE agent socket directory', () => {
    const c = renderedConfig(objs);
    const ward = wardContainer(objs);
    const volumes = new Map<string, Any>(podSpec(objs).volumes.map((v: Any) => [v.name, v]));
    const mountOf = (path: string) =>
      ward.volumeMounts.find((m: Any) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
    // The command runs the file the ConfigMap is mounted as.
    const cmd = ward.command.join(' ');
    const configPath = /--config (\S+?)'?$/.exec(cmd)?.[1];
    expect(configPath).toBe('/etc/ward/ward.yaml');
    const cfgMount = mountOf(configPath!);
    expect(volumes.get(cfgMount.name).configMap.name).toBe(one(objs, 'ConfigMap').metadata.name);
    expect(Object.keys((one(objs, 'ConfigMap') as Any).data)).toContain(
      configPath!.slice(cfgMount.mountPath.length + 1),
    );
    // The SPIRE agent's admin socket: its directory comes from the host.
    const sock = c.svid.delegatedSocket.replace(/^unix:\/\//, '');
    const sockMount = mountOf(sock);
    expect(sockMount.mountPath).toBe(dirname(sock));
    expect(volumes.get(sockMount.name).hostPath.path).toBe(dirname(sock));
    // Every mount has a volume.
    for (const m of ward.volumeMounts) expect(volumes.has(m.name), m.name).toBe(true);
  });

  it('runs on every node in the host network with NET_ADMIN and NET_RAW only, on a read-only root', () => {
    const ds = one(objs, 'DaemonSet') as Any;
    const spec = podSpec(objs);
    expect(spec.hostNetwork).toBe(true);
    expect(spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(spec.priorityClassName).toBe('system-node-critical');
    expect(spec.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(ds.spec.updateStrategy.type).toBe('RollingUpdate');
    const sc = wardContainer(objs).securityContext;
    expect(sc.privileged).toBeUndefined();
    expect(sc.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] });
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.readOnlyRootFilesystem).toBe(true);
    for (const init of spec.initContainers ?? []) {
      expect(init.securityContext.capabilities).toEqual({ drop: ['ALL'] });
      expect(init.securityContext.runAsNonRoot).toBe(true);
    }
  });

  it('gives ward longer than its drain deadline to stop', () => {
    const c = renderedConfig(objs);
    expect(podSpec(objs).terminationGracePeriodSeconds * 1000).toBeGreaterThan(c.shutdown.drainTimeout);
  });

  it('probes readiness on 15021 /healthz/ready and exposes metrics on 15020 through a headless Service', () => {
    const ward = wardContainer(objs);
    const port = (name: string) => ward.ports.find((p: Any) => p.name === name)?.containerPort;
    expect(port('readiness')).toBe(15021);
    expect(port('metrics')).toBe(15020);
    expect(ward.readinessProbe.httpGet).toEqual({ path: '/healthz/ready', port: 'readiness' });
    const svc = one(objs, 'Service') as Any;
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.ports).toEqual([
      { name: 'metrics', port: 15020, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    const podLabels = (one(objs, 'DaemonSet') as Any).spec.template.metadata.labels;
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k]).toBe(v);
    expect(ward.resources.limits.cpu).toBeDefined();
    expect(ward.resources.requests.memory).toBeDefined();
  });
});

describe('values reach the objects', () => {
  it('non-default values land in the config, the image, the mounts and the grace period', () => {
    const objs = render(NON_DEFAULT);
    const c = renderedConfig(objs);
    expect(c.svid).toMatchObject({
      trustDomain: 'prod.example',
      idScheme: 'ns-sa',
      delegatedSocket: '/var/run/spire-agent/delegated.sock',
      selectors: ['cilium:mutual-auth', 'k8s:ns:default'],
    });
    expect(c.capture).toMatchObject({
      tproxyMark: 0x40,
      bypassMark: 0x80,
      markMask: 0xc0,
      podCidrs: ['10.244.7.0/24', 'fd00:7::/64'],
    });
    expect(c.listeners).toMatchObject({
      outboundPort: 16001,
      inboundPlaintextPort: 16006,
      inboundTunnelPort: 16008,
    });
    expect(c.admin.port).toBe(16000);
    expect(c.proxy.workers).toBe(3);
    expect(c.log.level).toBe('debug');
    expect(c.cluster).toEqual({ name: 'east', id: 7 });
    expect(c.shutdown.drainTimeout).toBe(45_000);
    const spec = podSpec(objs);
    expect(spec.terminationGracePeriodSeconds).toBe(65);
    expect(wardContainer(objs).image).toBe('registry.example/ward:1.2.3');
    expect(wardContainer(objs).resources.limits).toEqual({ cpu: 4, memory: '1Gi' });
    // Listed pod CIDRs: no init container, and no RBAC for reading nodes.
    expect(spec.initContainers).toBeUndefined();
    expect(objs.some((o) => o.metadata.name === 'ward-pod-cidrs')).toBe(false);
    expect(one(objs, 'Namespace').metadata.name).toBe('ward-system');
    const sm = one(objs, 'ServiceMonitor') as Any;
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.spec.endpoints[0].port).toBe((one(objs, 'Service') as Any).spec.ports[0].name);
    expect(sm.spec.selector.matchLabels).toEqual((one(objs, 'Service') as Any).spec.selector);
  });

  it('by default an init container finds the pod CIDRs, with get on nodes and ciliumnodes only', () => {
    const objs = render();
    const init = podSpec(objs).initContainers.find((c: Any) => c.name === 'pod-cidrs');
    expect(init.command).toContain('/app/dist/init/pod-cidrs.js');
    expect(init.command.join(' ')).toContain('--out /run/ward/pod-cidrs.env');
    expect(wardContainer(objs).command.join(' ')).toContain('. /run/ward/pod-cidrs.env');
    expect(rbacRules(objs, 'ward-pod-cidrs')).toEqual(['/nodes:get', 'cilium.io/ciliumnodes:get']);
    // Without the init container's variable the config is incomplete: the env is what makes it valid.
    const cm = one(objs, 'ConfigMap') as Any;
    expect(() => parseConfigText(cm.data['ward.yaml'], 'cm', { WARD_NODE_NAME: 'n' })).toThrow(
      /capture\.podCidrs/,
    );
    expect(one(objs, 'ServiceAccount').metadata.name).toBe('ward');
    expect(objs.some((o) => o.kind === 'Namespace' || o.kind === 'ServiceMonitor')).toBe(false);
  });

  it('a bad value fails the render or the config validation', () => {
    const objs = render(['trustDomain=Not_A.Domain!']);
    expect(() => renderedConfig(objs)).toThrow(/svid\.trustDomain/);
  });
});

describe('deploy/kubernetes', () => {
  const header = (s: string) =>
    s
      .split('\n')
      .filter((l) => !l.startsWith('# Generated') && !/^# (kubectl|Optional)/.test(l))
      .join('\n');

  it('ward.yaml is the chart rendered with its default values (run deploy/kubernetes/render.sh)', () => {
    const file = readFileSync(`${ROOT}deploy/kubernetes/ward.yaml`, 'utf8');
    expect(header(file)).toBe(header(renderText(['createNamespace=true'])));
    const kinds = parseObjects(file)
      .map((o) => o.kind)
      .sort();
    expect(kinds).toEqual([
      'ClusterRole',
      'ClusterRole',
      'ClusterRoleBinding',
      'ClusterRoleBinding',
      'ConfigMap',
      'DaemonSet',
      'Namespace',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('servicemonitor.yaml is the chart’s optional ServiceMonitor', () => {
    const file = readFileSync(`${ROOT}deploy/kubernetes/servicemonitor.yaml`, 'utf8');
    const rendered = renderText(
      ['metrics.serviceMonitor.enabled=true'],
      ['--show-only', 'templates/servicemonitor.yaml'],
    );
    expect(header(file)).toBe(header(rendered));
  });
});

it('tools: helm and kubectl come from the npm devDependency', () => {
  const h = tool('helm', ['version', '--short']);
  expect(h.status).toBe(0);
  expect(h.stdout).toMatch(/^v\d+\.\d+\.\d+/);
  const k = spawnSync(`${ROOT}deploy/tools.sh`, ['path', 'kubectl'], { encoding: 'utf8' });
  expect(k.stdout.trim()).toMatch(/node_modules\/\.cache\/ward-deploy-tools\/kubectl\/kubectl$/);
});
