// Validation: every bad manifest is rejected on its own with an error naming file, document and field
// path (issue 4 §1; reference §4.2, §7, §8.2a; CRD schemas in src/policy/crd).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadManifests } from '../../../src/policy/manifest.ts';
import { cnp, errorsOf, knp, parseYaml } from './helpers.ts';

const sel = 'endpointSelector: { matchLabels: { app: server } }\n';

interface Bad {
  ref: string;
  name: string;
  yaml: string;
  path: string;
  message: RegExp;
}

const bad: Bad[] = [
  {
    ref: 'CRD',
    name: 'bad operator',
    yaml: cnp(
      'p',
      'default',
      `endpointSelector: { matchExpressions: [{ key: app, operator: in, values: [a] }] }\ningress: [{}]`,
    ),
    path: 'spec.endpointSelector.matchExpressions[0].operator',
    message: /must be one of "In", "NotIn"/,
  },
  {
    ref: '§1.4',
    name: 'In without values',
    yaml: cnp(
      'p',
      'default',
      `endpointSelector: { matchExpressions: [{ key: app, operator: In }] }\ningress: [{}]`,
    ),
    path: 'spec.endpointSelector.matchExpressions[0].values',
    message: /must be specified when operator is In/,
  },
  {
    ref: '§1.4',
    name: 'Exists with values',
    yaml: cnp(
      'p',
      'default',
      `${sel}ingress: [{ fromEndpoints: [{ matchExpressions: [{ key: app, operator: Exists, values: [x] }] }] }]`,
    ),
    path: 'spec.ingress[0].fromEndpoints[0].matchExpressions[0].values',
    message: /may not be specified/,
  },
  {
    ref: '§7',
    name: 'port out of range',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "70000" }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].port',
    message: /out of range|must match/,
  },
  {
    ref: '§7',
    name: 'port not a number nor a name',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "80-90" }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].port',
    message: /neither a number|must match/,
  },
  {
    ref: '§7',
    name: 'port as a number instead of a string',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: 80 }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].port',
    message: /must be of type string/,
  },
  {
    ref: '§7',
    name: 'endPort below port',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "100", endPort: 90 }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].endPort',
    message: /endPort 90 must be greater than or equal to port 100/,
  },
  {
    ref: '§7',
    name: 'endPort above 65535',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "100", endPort: 70000 }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].endPort',
    message: /at most 65535/,
  },
  {
    ref: '§7',
    name: 'bad protocol',
    yaml: cnp('p', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "80", protocol: tcp }] }] }]`),
    path: 'spec.ingress[0].toPorts[0].ports[0].protocol',
    message: /must be one of/,
  },
  {
    ref: 'CRD',
    name: 'unknown field in an element',
    yaml: cnp('p', 'default', `${sel}ingress: [{ fromEndpoint: [{}] }]`),
    path: 'spec.ingress[0].fromEndpoint',
    message: /unknown field "fromEndpoint"/,
  },
  {
    ref: 'CRD',
    name: 'unknown top-level field',
    yaml: cnp('p', 'default', `${sel}ingres: [{}]`),
    path: 'spec.ingres',
    message: /unknown field/,
  },
  {
    ref: '§8.1',
    name: 'authentication on a deny element',
    yaml: cnp(
      'p',
      'default',
      `${sel}ingressDeny: [{ fromEntities: [world], authentication: { mode: required } }]`,
    ),
    path: 'spec.ingressDeny[0].authentication',
    message: /unknown field "authentication"/,
  },
  {
    ref: '§8.1',
    name: 'bad authentication mode',
    yaml: cnp('p', 'default', `${sel}ingress: [{ fromEntities: [world], authentication: { mode: strict } }]`),
    path: 'spec.ingress[0].authentication.mode',
    message: /must be one of "disabled", "required", "test-always-fail"/,
  },
  {
    ref: '§8.2a',
    name: 'conflicting explicit modes for the same selector and port',
    yaml: cnp(
      'p',
      'default',
      `${sel}ingress:\n  - fromEndpoints: [{ matchLabels: { app: c } }]\n    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n    authentication: { mode: required }\n  - fromEndpoints: [{ matchLabels: { app: c } }]\n    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n    authentication: { mode: disabled }`,
    ),
    path: 'spec.ingress[1].authentication.mode',
    message: /cannot merge conflicting authentication types/,
  },
  {
    ref: '§6.1',
    name: 'unknown entity',
    yaml: cnp('p', 'default', `${sel}ingress: [{ fromEntities: [internet] }]`),
    path: 'spec.ingress[0].fromEntities[0]',
    message: /must be one of "all", "world"/,
  },
  {
    ref: '§6.2',
    name: 'bad CIDR',
    yaml: cnp('p', 'default', `${sel}egress: [{ toCIDR: [10.0.0.0/33] }]`),
    path: 'spec.egress[0].toCIDR[0]',
    message: /CIDR/,
  },
  {
    ref: '§6.2',
    name: 'CIDR without prefix',
    yaml: cnp('p', 'default', `${sel}egress: [{ toCIDR: [10.0.0.1] }]`),
    path: 'spec.egress[0].toCIDR[0]',
    message: /CIDR/,
  },
  {
    ref: '§6.2',
    name: 'except outside the cidr',
    yaml: cnp(
      'p',
      'default',
      `${sel}egress: [{ toCIDRSet: [{ cidr: 10.0.0.0/8, except: [192.168.0.0/16] }] }]`,
    ),
    path: 'spec.egress[0].toCIDRSet[0].except[0]',
    message: /does not contain exclude CIDR/,
  },
  {
    ref: '§4.2',
    name: 'a rule with all four sections empty',
    yaml: cnp('p', 'default', `${sel}ingress: []`),
    path: 'spec',
    message: /rule must have at least one of Ingress, IngressDeny, Egress, EgressDeny/,
  },
  {
    ref: '§4.2',
    name: 'egress: null (the drifted example) has no section',
    yaml: cnp('p', 'default', `${sel}egress:`),
    path: 'spec',
    message: /must have at least one of|rule must have/,
  },
  {
    ref: '§3.1',
    name: 'neither spec nor specs',
    yaml: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: p, namespace: default }\n',
    path: 'spec',
    message: /neither spec nor specs/,
  },
  {
    ref: '§3.1',
    name: 'endpointSelector and nodeSelector together',
    yaml: cnp('p', 'default', `${sel}nodeSelector: {}\ningress: [{}]`),
    path: 'spec',
    message: /exactly one of: endpointSelector, nodeSelector/,
  },
  {
    ref: '§3.1',
    name: 'no endpointSelector',
    yaml: cnp('p', 'default', `ingress: [{}]`),
    path: 'spec',
    message: /exactly one of/,
  },
  {
    ref: 'meta',
    name: 'bad name',
    yaml: cnp('Bad_Name', 'default', `${sel}ingress: [{}]`),
    path: 'metadata.name',
    message: /DNS-1123 subdomain/,
  },
  {
    ref: 'meta',
    name: 'unknown metadata field',
    yaml: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: { name: p, labelz: {} }\nspec: { endpointSelector: {}, ingress: [{}] }\n',
    path: 'metadata.labelz',
    message: /unknown field/,
  },
  {
    ref: '§12.7',
    name: 'fromRequires is not supported',
    yaml: cnp('p', 'default', `${sel}ingress: [{ fromRequires: [{ matchLabels: { env: prod } }] }]`),
    path: 'spec.ingress[0].fromRequires',
    message: /not supported/,
  },
  {
    ref: 'kind',
    name: 'wrong apiVersion',
    yaml: 'apiVersion: cilium.io/v1\nkind: CiliumNetworkPolicy\nmetadata: { name: p }\nspec: {}\n',
    path: 'apiVersion',
    message: /must be cilium.io\/v2/,
  },
  {
    ref: '§9',
    name: 'KNP endPort without port',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ ports: [{ endPort: 90 }] }]'),
    path: 'spec.ingress[0].ports[0].endPort',
    message: /may not be specified when port is not/,
  },
  {
    ref: '§9',
    name: 'KNP endPort with a named port',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ ports: [{ port: http, endPort: 90 }] }]'),
    path: 'spec.ingress[0].ports[0].endPort',
    message: /named port/,
  },
  {
    ref: '§9',
    name: 'KNP endPort below port',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ ports: [{ port: 100, endPort: 90 }] }]'),
    path: 'spec.ingress[0].ports[0].endPort',
    message: /greater than or equal/,
  },
  {
    ref: '§9',
    name: 'KNP port 0',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ ports: [{ port: 0 }] }]'),
    path: 'spec.ingress[0].ports[0].port',
    message: /between 1 and 65535/,
  },
  {
    ref: '§9',
    name: 'KNP bad protocol',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ ports: [{ port: 80, protocol: ICMP }] }]'),
    path: 'spec.ingress[0].ports[0].protocol',
    message: /TCP|UDP|SCTP|Invalid/,
  },
  {
    ref: '§9',
    name: 'KNP ipBlock with podSelector',
    yaml: knp(
      'k',
      'default',
      'podSelector: {}\ningress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/8 }, podSelector: {} }] }]',
    ),
    path: 'spec.ingress[0].from[0]',
    message: /both ipBlock/,
  },
  {
    ref: '§9',
    name: 'KNP empty peer',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ from: [{}] }]'),
    path: 'spec.ingress[0].from[0]',
    message: /must specify a peer/,
  },
  {
    ref: '§9',
    name: 'KNP except not a strict subset',
    yaml: knp(
      'k',
      'default',
      'podSelector: {}\ningress: [{ from: [{ ipBlock: { cidr: 10.0.0.0/8, except: [10.0.0.0/8] } }] }]',
    ),
    path: 'spec.ingress[0].from[0].ipBlock.except[0]',
    message: /strict subset/,
  },
  {
    ref: '§9',
    name: 'KNP unknown field',
    yaml: knp('k', 'default', 'podSelector: {}\ningress: [{ form: [] }]'),
    path: 'spec.ingress[0]',
    message: /form|Unrecognized/,
  },
  {
    ref: '§9',
    name: 'KNP missing podSelector',
    yaml: knp('k', 'default', 'ingress: []'),
    path: 'spec.podSelector',
    message: /.+/,
  },
  {
    ref: '§9',
    name: 'KNP bad policyTypes value',
    yaml: knp('k', 'default', 'podSelector: {}\npolicyTypes: [ingress]'),
    path: 'spec.policyTypes[0]',
    message: /.+/,
  },
  {
    ref: '§9',
    name: 'KNP bad label key',
    yaml: knp('k', 'default', 'podSelector: { matchLabels: { "bad key": x } }'),
    path: 'spec.podSelector.matchLabels.bad key',
    message: /qualified name/,
  },
];

describe('manifest validation (table)', () => {
  it.each(bad.map((b) => [`${b.ref} ${b.name}`, b] as const))('rejects: %s', (_n, b) => {
    const errors = errorsOf(b.yaml);
    expect(errors.length, 'expected at least one error').toBeGreaterThan(0);
    const hit = errors.find((e) => e.path === b.path && b.message.test(e.message));
    expect(
      hit,
      `no matching error at ${b.path}; got ${errors.map((e) => `${e.path}: ${e.message}`).join(' | ')}`,
    ).toBeDefined();
    expect(hit!.file).toBe('test.yaml');
    // The policy is rejected: nothing of it is enforced.
    expect(parseYaml(b.yaml).policies).toHaveLength(0);
  });

  it('accepts every valid form the semantics tests use, without errors', () => {
    const ok = cnp(
      'p',
      'default',
      `${sel}ingress:\n  - fromEndpoints: [{}]\n    toPorts: [{ ports: [{ port: "http" }, { port: "80", endPort: 90, protocol: TCP }] }]\n    authentication: { mode: required }\negressDeny: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }] }]\nenableDefaultDeny: { egress: false }`,
    );
    expect(errorsOf(ok)).toEqual([]);
    expect(parseYaml(ok).policies).toHaveLength(1);
  });

  it('names the document index in a multi-document file and keeps the valid ones', () => {
    const text = [
      cnp('good1', 'default', `${sel}ingress: [{}]`),
      cnp('bad', 'default', `${sel}ingress: [{ toPorts: [{ ports: [{ port: "99999" }] }] }]`),
      cnp('good2', 'default', `${sel}egress: [{}]`),
    ].join('');
    const { policies, issues } = parseYaml(text);
    expect(policies.map((p) => p.ref.name).sort()).toEqual(['good1', 'good2']);
    const e = issues.filter((i) => i.severity === 'error');
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({
      file: 'test.yaml',
      document: 1,
      path: 'spec.ingress[0].toPorts[0].ports[0].port',
      policy: 'CiliumNetworkPolicy/default/bad',
    });
  });

  it('reports YAML syntax errors with the document index', () => {
    const { issues } = parseYaml(`${cnp('a', 'default', `${sel}ingress: [{}]`)}kind: [unclosed\n`);
    expect(
      issues.some((i) => i.document === 1 && i.severity === 'error' && /not valid YAML/.test(i.message)),
    ).toBe(true);
  });

  it('reports a duplicate policy name and keeps the first by file order', () => {
    const { policies, issues } = parseYaml(
      cnp('a', 'default', `${sel}ingress: [{}]`) + cnp('a', 'default', `${sel}egress: [{}]`),
    );
    expect(policies).toHaveLength(1);
    expect(policies[0]!.rules[0]!.ingress).toHaveLength(1);
    expect(issues.find((i) => /defined twice/.test(i.message))?.document).toBe(1);
  });

  it('warns about, and skips, documents of other kinds', () => {
    const { policies, issues } = parseYaml('apiVersion: v1\nkind: Service\nmetadata: { name: s }\n');
    expect(policies).toHaveLength(0);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.severity).toBe('warning');
  });

  it('warns when a CNP endpointSelector names another namespace (§2.1)', () => {
    const { issues } = parseYaml(
      cnp(
        'p',
        'default',
        'endpointSelector: { matchLabels: { "k8s:io.kubernetes.pod.namespace": prod } }\ningress: [{}]',
      ),
    );
    expect(
      issues.some((i) => i.severity === 'warning' && /replaced by the policy's namespace/.test(i.message)),
    ).toBe(true);
  });

  it('expands kind: List items', () => {
    const { policies } = parseYaml(`apiVersion: v1
kind: List
items:
  - apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: { name: a, namespace: default }
    spec: { endpointSelector: {}, ingress: [{}] }
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: { name: b, namespace: default }
    spec: { podSelector: {} }
`);
    expect(policies.map((p) => p.ref.key).sort()).toEqual([
      'CiliumNetworkPolicy/default/a',
      'NetworkPolicy/default/b',
    ]);
  });
});

describe('loading files and directories', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('reads YAML and JSON files of a directory tree, skipping hidden and editor files', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-pol-'));
    writeFileSync(join(dir, 'a.yaml'), cnp('a', 'default', `${sel}ingress: [{}]`));
    writeFileSync(
      join(dir, 'b.json'),
      JSON.stringify({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'b', namespace: 'x' },
        spec: { podSelector: {} },
      }),
    );
    writeFileSync(join(dir, '.hidden.yaml'), 'garbage: [');
    writeFileSync(join(dir, 'c.yaml~'), 'garbage: [');
    const { policies, issues } = await loadManifests([dir]);
    expect(policies.map((p) => p.ref.key).sort()).toEqual([
      'CiliumNetworkPolicy/default/a',
      'NetworkPolicy/x/b',
    ]);
    expect(issues).toEqual([]);
  });

  it('names the file of an invalid JSON document', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ward-pol-'));
    writeFileSync(join(dir, 'bad.json'), '{"kind": ');
    const { issues } = await loadManifests([dir]);
    expect(issues[0]).toMatchObject({ file: join(dir, 'bad.json'), document: 0, severity: 'error' });
  });

  it('validates the seed example without errors', async () => {
    const { policies, issues } = await loadManifests([
      new URL('../../../examples/seed/policies', import.meta.url).pathname,
    ]);
    expect(issues).toEqual([]);
    expect(policies.map((p) => p.ref.name).sort()).toEqual([
      'demo1-default-deny',
      'demo2-allow-client1',
      'demo3-allow-client2-mutual-auth',
    ]);
  });
});
