// Table-driven checks of the reference semantics (shared/reference/cnp-semantics.md). Each case names
// the section it checks; the expected answers are the reference's, not the implementation's.
import { describe, expect, it } from 'vitest';
import { decide, type PolicyPeer } from '../../../src/policy/decide.ts';
import type { Protocol } from '../../../src/policy/model.ts';
import type { PolicySnapshot } from '../../../src/policy/snapshot.ts';
import { app, ccnp, cnp, knp, pod, reserved, snap, world } from './helpers.ts';

interface Case {
  /** The reference section this case checks. */
  ref: string;
  name: string;
  policy: PolicySnapshot;
  from: PolicyPeer;
  to: PolicyPeer;
  dport?: number;
  proto?: Protocol;
  verdict: 'allow' | 'deny';
  auth?: boolean;
  egress?: 'allow' | 'deny';
  ingress?: 'allow' | 'deny';
  /** Keys of the policies expected in the deciding direction's matched list (order-insensitive). */
  matched?: string[];
}

// ---- policy sets shared by several cases ------------------------------------------------------------
const onlyIngressFrom = (sel: string, ns = 'default') =>
  snap(
    cnp(
      'p',
      ns,
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints:
${sel}
`,
    ),
  );

const server = app('server');
const serverProd = app('server', 'prod');
const client = app('client');

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

// §1.1 identity labels
{
  const sa = snap(
    cnp(
      'sa',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: [{ matchLabels: { io.cilium.k8s.policy.serviceaccount: frontend } }]
`,
    ),
  );
  add({
    ref: '§1.1',
    name: 'service account label selects the pod',
    policy: sa,
    from: pod({ labels: { app: 'x' }, sa: 'frontend' }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.1',
    name: 'other service account is not selected',
    policy: sa,
    from: pod({ labels: { app: 'x' }, sa: 'backend' }),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§1.1',
    name: 'missing serviceAccountName means "default"',
    policy: sa,
    from: pod({ labels: { app: 'x' } }),
    to: server,
    verdict: 'deny',
  });
  const cl = snap(
    ccnp(
      'cl',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: [{ matchLabels: { k8s:io.cilium.k8s.policy.cluster: default } }]
`,
    ),
  );
  add({
    ref: '§1.1',
    name: 'cluster label is default when unnamed',
    policy: cl,
    from: client,
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.1',
    name: 'pod of another cluster name is not selected',
    policy: cl,
    from: pod({ labels: { app: 'client' }, cluster: 'other' }),
    to: server,
    verdict: 'deny',
  });
  const nsl = snap(
    ccnp(
      'nsl',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: [{ matchLabels: { io.cilium.k8s.namespace.labels.team: web } }]
`,
    ),
  );
  add({
    ref: '§1.1',
    name: 'namespace labels become io.cilium.k8s.namespace.labels.*',
    policy: nsl,
    from: pod({ ns: 'web', labels: { app: 'c' }, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.1',
    name: 'namespace without the label is not selected',
    policy: nsl,
    from: pod({ ns: 'db', labels: { app: 'c' }, nsLabels: { team: 'db' } }),
    to: server,
    verdict: 'deny',
  });
  const meta = snap(
    ccnp(
      'meta',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: [{ matchLabels: { io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name: web } }]
`,
    ),
  );
  add({
    ref: '§1.1',
    name: 'kubernetes.io/metadata.name always exists as a namespace label',
    policy: meta,
    from: app('c', 'web'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.1',
    name: 'metadata.name of another namespace does not match',
    policy: meta,
    from: app('c', 'api'),
    to: server,
    verdict: 'deny',
  });
}

// §1.2 reserved identities
{
  const p = onlyIngressFrom('      - {}');
  add({
    ref: '§1.2',
    name: 'world is not a pod: fromEndpoints {} never matches it',
    policy: p,
    from: world('8.8.8.8'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§1.2',
    name: 'host is not a pod: fromEndpoints {} never matches it',
    policy: p,
    from: reserved('host'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§1.2',
    name: 'remote-node is not matched by fromEndpoints {}',
    policy: p,
    from: reserved('remote-node'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§10',
    name: 'a world destination enforces no ingress policy',
    policy: p,
    from: client,
    to: world('1.1.1.1'),
    verdict: 'allow',
  });
}

// §1.3 selector key sources
{
  for (const key of ['app', 'any:app', 'k8s:app']) {
    add({
      ref: '§1.3',
      name: `key "${key}" matches the k8s pod label app`,
      policy: onlyIngressFrom(`      - matchLabels: { "${key}": client }`),
      from: client,
      to: server,
      verdict: 'allow',
    });
  }
  add({
    ref: '§1.3',
    name: 'key "k8s.app" is any:k8s.app and does not match the pod label app',
    policy: onlyIngressFrom('      - matchLabels: { "k8s.app": client }'),
    from: client,
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§1.3',
    name: 'key "reserved:app" does not match a k8s label',
    policy: onlyIngressFrom('      - matchLabels: { "reserved:app": client }'),
    from: client,
    to: server,
    verdict: 'deny',
  });
  const worldSel = snap(
    ccnp(
      'w',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEntities: [world]
`,
    ),
  );
  add({
    ref: '§1.3',
    name: 'reserved:world selects external peers',
    policy: worldSel,
    from: world('9.9.9.9'),
    to: server,
    verdict: 'allow',
  });
}

// §1.4 selector semantics
{
  const both = onlyIngressFrom(`      - matchLabels: { app: client }
        matchExpressions: [{ key: tier, operator: In, values: [web] }]`);
  add({
    ref: '§1.4',
    name: 'matchLabels AND matchExpressions: both hold',
    policy: both,
    from: pod({ labels: { app: 'client', tier: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'matchLabels AND matchExpressions: one fails',
    policy: both,
    from: pod({ labels: { app: 'client', tier: 'db' } }),
    to: server,
    verdict: 'deny',
  });
  const notIn = onlyIngressFrom('      - matchExpressions: [{ key: tier, operator: NotIn, values: [db] }]');
  add({
    ref: '§1.4',
    name: 'NotIn: value outside the set',
    policy: notIn,
    from: pod({ labels: { tier: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'NotIn: value inside the set',
    policy: notIn,
    from: pod({ labels: { tier: 'db' } }),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§1.4',
    name: 'NotIn: a missing key satisfies NotIn',
    policy: notIn,
    from: pod({ labels: {} }),
    to: server,
    verdict: 'allow',
  });
  const ex = onlyIngressFrom('      - matchExpressions: [{ key: tier, operator: Exists }]');
  add({
    ref: '§1.4',
    name: 'Exists: key present',
    policy: ex,
    from: pod({ labels: { tier: '' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'Exists: key absent',
    policy: ex,
    from: pod({ labels: {} }),
    to: server,
    verdict: 'deny',
  });
  const dne = onlyIngressFrom('      - matchExpressions: [{ key: tier, operator: DoesNotExist }]');
  add({
    ref: '§1.4',
    name: 'DoesNotExist: key absent',
    policy: dne,
    from: pod({ labels: { app: 'a' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'DoesNotExist: key present',
    policy: dne,
    from: pod({ labels: { tier: 'x' } }),
    to: server,
    verdict: 'deny',
  });
  const inSet = onlyIngressFrom('      - matchExpressions: [{ key: app, operator: In, values: [a, b] }]');
  add({
    ref: '§1.4',
    name: 'In: value in the set',
    policy: inSet,
    from: app('b'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'In: value not in the set',
    policy: inSet,
    from: app('c'),
    to: server,
    verdict: 'deny',
  });
  const list = onlyIngressFrom(`      - matchLabels: { app: a }
      - matchLabels: { app: b }`);
  add({
    ref: '§1.4',
    name: 'a list of selectors is OR (first)',
    policy: list,
    from: app('a'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'a list of selectors is OR (second)',
    policy: list,
    from: app('b'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§1.4',
    name: 'a list of selectors is OR (neither)',
    policy: list,
    from: app('c'),
    to: server,
    verdict: 'deny',
  });
}

// §2.1 endpointSelector forced to the policy namespace
{
  const forced = snap(
    cnp(
      'f',
      'default',
      `
endpointSelector: { matchLabels: { app: server, "k8s:io.kubernetes.pod.namespace": prod } }
ingress: [{}]
`,
    ),
  );
  add({
    ref: '§2.1',
    name: 'a CNP in default naming namespace prod selects pods in default',
    policy: forced,
    from: client,
    to: server,
    verdict: 'deny',
    ingress: 'deny',
  });
  add({
    ref: '§2.1',
    name: '…and does not select pods in prod',
    policy: forced,
    from: client,
    to: serverProd,
    verdict: 'allow',
  });
  const unprefixed = snap(
    cnp(
      'u',
      'default',
      `
endpointSelector: { matchLabels: { app: server, "io.kubernetes.pod.namespace": prod } }
ingress: [{}]
`,
    ),
  );
  add({
    ref: '§2.1',
    name: 'an unprefixed namespace key ANDs with the forced one: selects nothing in default',
    policy: unprefixed,
    from: client,
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.1',
    name: 'an unprefixed namespace key ANDs with the forced one: selects nothing in prod',
    policy: unprefixed,
    from: client,
    to: serverProd,
    verdict: 'allow',
  });
}

// §2.2 CNP peer selectors scoped to the policy namespace
{
  const any = onlyIngressFrom('      - {}');
  add({
    ref: '§2.2',
    name: 'fromEndpoints [{}] admits pods of the policy namespace',
    policy: any,
    from: app('x'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.2',
    name: 'fromEndpoints [{}] does not admit other namespaces',
    policy: any,
    from: app('x', 'prod'),
    to: server,
    verdict: 'deny',
  });
  const scoped = onlyIngressFrom('      - matchLabels: { app: client }');
  add({
    ref: '§2.2',
    name: 'app=client from another namespace is not admitted',
    policy: scoped,
    from: app('client', 'prod'),
    to: server,
    verdict: 'deny',
  });
  const cross = onlyIngressFrom(
    '      - matchLabels: { "k8s:io.kubernetes.pod.namespace": ns2, name: luke }',
  );
  add({
    ref: '§2.2',
    name: 'naming k8s:io.kubernetes.pod.namespace crosses namespaces',
    policy: cross,
    from: pod({ ns: 'ns2', labels: { name: 'luke' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.2',
    name: '…and no longer admits the policy namespace',
    policy: cross,
    from: pod({ labels: { name: 'luke' } }),
    to: server,
    verdict: 'deny',
  });
  const expr = onlyIngressFrom(
    '      - matchExpressions: [{ key: io.kubernetes.pod.namespace, operator: Exists }]',
  );
  add({
    ref: '§2.2',
    name: 'a namespace Exists expression crosses namespaces',
    policy: expr,
    from: app('x', 'prod'),
    to: server,
    verdict: 'allow',
  });
  const exprIn = onlyIngressFrom(
    '      - matchExpressions: [{ key: "k8s:io.kubernetes.pod.namespace", operator: In, values: [a, b] }]',
  );
  add({
    ref: '§2.2',
    name: 'a namespace In expression crosses namespaces',
    policy: exprIn,
    from: app('x', 'b'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.2',
    name: 'a namespace In expression excludes the others',
    policy: exprIn,
    from: app('x', 'c'),
    to: server,
    verdict: 'deny',
  });
  const nsLabels = onlyIngressFrom('      - matchLabels: { "k8s:io.cilium.k8s.namespace.labels.team": web }');
  add({
    ref: '§2.2',
    name: 'current main: a namespace-labels key lifts the namespace restriction',
    policy: nsLabels,
    from: pod({ ns: 'web', labels: {}, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  const eg = snap(
    cnp(
      'eg',
      'default',
      `
endpointSelector: { matchLabels: { app: client } }
egress:
  - toEndpoints: [{}]
`,
    ),
  );
  add({
    ref: '§2.2',
    name: 'toEndpoints [{}] allows egress to the same namespace',
    policy: eg,
    from: client,
    to: server,
    verdict: 'allow',
    egress: 'allow',
  });
  add({
    ref: '§2.2',
    name: 'toEndpoints [{}] denies egress to another namespace',
    policy: eg,
    from: client,
    to: serverProd,
    verdict: 'deny',
    egress: 'deny',
  });
  add({
    ref: '§2.2',
    name: 'toEndpoints [{}] denies egress to the world',
    policy: eg,
    from: client,
    to: world('8.8.8.8'),
    verdict: 'deny',
    egress: 'deny',
  });
}

// §2.3 CCNP
{
  const all = snap(
    ccnp(
      'all',
      `
endpointSelector: {}
ingress:
  - fromEndpoints: [{}]
`,
    ),
  );
  add({
    ref: '§2.3',
    name: 'CCNP endpointSelector {} selects every namespace; fromEndpoints {} admits all pods',
    policy: all,
    from: app('a', 'x'),
    to: app('b', 'y'),
    verdict: 'allow',
  });
  add({
    ref: '§2.3',
    name: 'CCNP fromEndpoints {} does not admit world',
    policy: all,
    from: world('8.8.4.4'),
    to: app('b', 'y'),
    verdict: 'deny',
  });
  add({
    ref: '§2.3',
    name: 'CCNP fromEndpoints {} does not admit host',
    policy: all,
    from: reserved('host'),
    to: app('b', 'y'),
    verdict: 'deny',
  });
  const dne = snap(
    ccnp(
      'dne',
      `
endpointSelector: {}
ingress:
  - fromEndpoints: [{ matchExpressions: [{ key: app, operator: DoesNotExist }] }]
`,
    ),
  );
  add({
    ref: '§2.3',
    name: 'CCNP DoesNotExist peer still cannot match world',
    policy: dne,
    from: world('8.8.4.4'),
    to: app('b'),
    verdict: 'deny',
  });
  add({
    ref: '§2.3',
    name: 'CCNP DoesNotExist peer matches an unlabelled pod anywhere',
    policy: dne,
    from: pod({ ns: 'z', labels: {} }),
    to: app('b'),
    verdict: 'allow',
  });
  const narrowed = snap(
    ccnp(
      'n',
      `
endpointSelector: { matchLabels: { "k8s:io.kubernetes.pod.namespace": prod } }
ingress: [{}]
`,
    ),
  );
  add({
    ref: '§2.3',
    name: 'CCNP endpointSelector with a namespace key narrows the subject (selected)',
    policy: narrowed,
    from: client,
    to: serverProd,
    verdict: 'deny',
  });
  add({
    ref: '§2.3',
    name: 'CCNP endpointSelector with a namespace key narrows the subject (not selected)',
    policy: narrowed,
    from: client,
    to: server,
    verdict: 'allow',
  });
}

// §2.4 not scoped
{
  const ent = snap(
    cnp(
      'e',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEntities: [cluster]
`,
    ),
  );
  add({
    ref: '§2.4',
    name: 'fromEntities cluster in a CNP admits pods of other namespaces',
    policy: ent,
    from: app('x', 'prod'),
    to: server,
    verdict: 'allow',
  });
  const allEnt = snap(
    cnp(
      'a',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEntities: [all]
`,
    ),
  );
  add({
    ref: '§2.4',
    name: 'fromEntities all admits other namespaces and world',
    policy: allEnt,
    from: world('3.3.3.3'),
    to: server,
    verdict: 'allow',
  });
  const portsOnly = snap(
    cnp(
      'po',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
    ),
  );
  add({
    ref: '§2.4',
    name: 'a toPorts-only rule admits another namespace',
    policy: portsOnly,
    from: app('x', 'prod'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.4',
    name: 'a toPorts-only rule admits world',
    policy: portsOnly,
    from: world('4.4.4.4'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.4',
    name: 'a toPorts-only rule admits only its port',
    policy: portsOnly,
    from: world('4.4.4.4'),
    to: server,
    dport: 81,
    verdict: 'deny',
  });
  const cidr = snap(
    cnp(
      'c',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromCIDR: [203.0.113.0/24]
`,
    ),
  );
  add({
    ref: '§2.4',
    name: 'CIDR rules are not namespace-scoped',
    policy: cidr,
    from: world('203.0.113.9'),
    to: server,
    verdict: 'allow',
  });
}

// §2.5 Kubernetes NetworkPolicy scoping
{
  const podOnly = snap(
    knp(
      'k',
      'default',
      `
podSelector: { matchLabels: { app: server } }
ingress:
  - from: [{ podSelector: { matchLabels: { app: client } } }]
`,
    ),
  );
  add({
    ref: '§2.5',
    name: 'KNP podSelector peer: same namespace admitted',
    policy: podOnly,
    from: client,
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.5',
    name: 'KNP podSelector peer: other namespace refused',
    policy: podOnly,
    from: app('client', 'prod'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§2.5',
    name: 'KNP subject is podSelector plus namespace: prod server unaffected',
    policy: podOnly,
    from: app('z', 'prod'),
    to: serverProd,
    verdict: 'allow',
  });
  const nsSel = snap(
    knp(
      'k',
      'default',
      `
podSelector: { matchLabels: { app: server } }
ingress:
  - from: [{ namespaceSelector: { matchLabels: { team: web } } }]
`,
    ),
  );
  add({
    ref: '§2.5',
    name: 'KNP namespaceSelector maps to namespace labels',
    policy: nsSel,
    from: pod({ ns: 'w', labels: {}, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.5',
    name: 'KNP namespaceSelector excludes other namespaces',
    policy: nsSel,
    from: pod({ ns: 'w', labels: {}, nsLabels: { team: 'db' } }),
    to: server,
    verdict: 'deny',
  });
  const allNs = snap(
    knp(
      'k',
      'default',
      `
podSelector: { matchLabels: { app: server } }
ingress:
  - from: [{ namespaceSelector: {} }]
`,
    ),
  );
  add({
    ref: '§2.5',
    name: 'KNP empty namespaceSelector = all namespaces',
    policy: allNs,
    from: app('x', 'anything'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§2.5',
    name: 'KNP empty namespaceSelector never matches world',
    policy: allNs,
    from: world('5.5.5.5'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§2.5',
    name: 'KNP peers carry the local cluster: another cluster is refused',
    policy: allNs,
    from: pod({ ns: 'x', labels: {}, cluster: 'remote' }),
    to: server,
    verdict: 'deny',
  });
}

// §3.1 spec and specs
{
  const both = snap(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: multi, namespace: default }
spec:
  endpointSelector: { matchLabels: { app: server } }
  ingress: [{ fromEndpoints: [{ matchLabels: { app: a } }] }]
specs:
  - endpointSelector: { matchLabels: { app: server } }
    ingress: [{ fromEndpoints: [{ matchLabels: { app: b } }] }]
  - endpointSelector: { matchLabels: { app: client } }
    egress: [{ toEndpoints: [{ matchLabels: { app: server } }] }]
`);
  add({ ref: '§3.1', name: 'spec rule applies', policy: both, from: app('a'), to: server, verdict: 'allow' });
  add({
    ref: '§3.1',
    name: 'specs[0] rule applies together with spec',
    policy: both,
    from: app('b'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§3.1',
    name: 'specs[1] adds an egress rule for another subject',
    policy: both,
    from: client,
    to: app('a'),
    verdict: 'deny',
    egress: 'deny',
  });
  add({
    ref: '§3.1',
    name: 'client → server allowed by specs[1] egress and needs an ingress allow too',
    policy: both,
    from: client,
    to: server,
    verdict: 'deny',
    egress: 'allow',
    ingress: 'deny',
  });
}

// §3.2 L3 OR, L3 AND L4
{
  const p = snap(
    cnp(
      'p',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: [{ matchLabels: { app: client } }]
    fromCIDR: [198.51.100.0/24]
    fromEntities: [host]
    toPorts: [{ ports: [{ port: "443", protocol: TCP }] }]
`,
    ),
  );
  add({
    ref: '§3.2',
    name: 'peer in fromEndpoints and port matches',
    policy: p,
    from: client,
    to: server,
    dport: 443,
    verdict: 'allow',
  });
  add({
    ref: '§3.2',
    name: 'peer in fromCIDR (OR) and port matches',
    policy: p,
    from: world('198.51.100.7'),
    to: server,
    dport: 443,
    verdict: 'allow',
  });
  add({
    ref: '§3.2',
    name: 'peer in fromEntities (OR) and port matches',
    policy: p,
    from: reserved('host'),
    to: server,
    dport: 443,
    verdict: 'allow',
  });
  add({
    ref: '§3.2',
    name: 'peer matches but the port does not (AND)',
    policy: p,
    from: client,
    to: server,
    dport: 80,
    verdict: 'deny',
  });
  add({
    ref: '§3.2',
    name: 'port matches but the peer does not (AND)',
    policy: p,
    from: app('other'),
    to: server,
    dport: 443,
    verdict: 'deny',
  });
}

// §3.3 missing vs empty
{
  const empty = snap(
    cnp('e', 'default', 'endpointSelector: { matchLabels: { app: server } }\ningress: [{}]'),
  );
  add({
    ref: '§3.3',
    name: 'ingress [{}] allows nothing (same namespace)',
    policy: empty,
    from: client,
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§3.3',
    name: 'ingress [{}] allows nothing (world)',
    policy: empty,
    from: world('7.7.7.7'),
    to: server,
    verdict: 'deny',
  });
  const emptyEg = snap(
    cnp('e', 'default', 'endpointSelector: { matchLabels: { app: client } }\negress: [{}]'),
  );
  add({
    ref: '§3.3',
    name: 'egress [{}] denies all egress',
    policy: emptyEg,
    from: client,
    to: server,
    verdict: 'deny',
    egress: 'deny',
  });
  const emptyList = snap(
    cnp(
      'e',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEndpoints: []
    toPorts: [{ ports: [{ port: "80" }] }]
`,
    ),
  );
  add({
    ref: '§3.3',
    name: 'fromEndpoints: [] selects no identity even with toPorts',
    policy: emptyList,
    from: client,
    to: server,
    verdict: 'deny',
  });
  const emptyEnt = snap(
    cnp(
      'e',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingress:
  - fromEntities: []
    toPorts: [{ ports: [{ port: "80" }] }]
`,
    ),
  );
  add({
    ref: '§3.3',
    name: 'fromEntities: [] selects no identity',
    policy: emptyEnt,
    from: world('1.2.3.4'),
    to: server,
    verdict: 'deny',
  });
  const l3only = onlyIngressFrom('      - matchLabels: { app: client }');
  add({
    ref: '§3.3',
    name: 'an L3-only rule allows every port (80)',
    policy: l3only,
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
  });
  add({
    ref: '§3.3',
    name: 'an L3-only rule allows every port (9999/UDP)',
    policy: l3only,
    from: client,
    to: server,
    dport: 9999,
    proto: 'UDP',
    verdict: 'allow',
  });
}

// §3.4 union and both sides
{
  const union = snap(
    cnp(
      'a',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: a } }] }]',
    ) +
      ccnp(
        'b',
        'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: b } }] }]',
      ) +
      knp(
        'c',
        'default',
        'podSelector: { matchLabels: { app: server } }\ningress: [{ from: [{ podSelector: { matchLabels: { app: c } } }] }]',
      ),
  );
  add({
    ref: '§3.4',
    name: 'CNP allow joins the union',
    policy: union,
    from: app('a'),
    to: server,
    verdict: 'allow',
    matched: ['CiliumNetworkPolicy/default/a'],
  });
  add({
    ref: '§3.4',
    name: 'CCNP allow joins the union',
    policy: union,
    from: app('b', 'other'),
    to: server,
    verdict: 'allow',
    matched: ['CiliumClusterwideNetworkPolicy/b'],
  });
  add({
    ref: '§3.4',
    name: 'KNP allow joins the union',
    policy: union,
    from: app('c'),
    to: server,
    verdict: 'allow',
    matched: ['NetworkPolicy/default/c'],
  });
  add({
    ref: '§3.4',
    name: 'no member of the union allows d',
    policy: union,
    from: app('d'),
    to: server,
    verdict: 'deny',
  });
  const sides = snap(
    cnp(
      'eg',
      'default',
      'endpointSelector: { matchLabels: { app: client } }\negress: [{ toEndpoints: [{ matchLabels: { app: other } }] }]',
    ) +
      cnp(
        'in',
        'default',
        'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: client } }] }]',
      ),
  );
  add({
    ref: '§3.4',
    name: 'ingress allows but egress at the source denies',
    policy: sides,
    from: client,
    to: server,
    verdict: 'deny',
    egress: 'deny',
    ingress: 'allow',
  });
}

// §4 default deny
{
  const ingressOnly = snap(
    cnp(
      'i',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: a } }] }]',
    ),
  );
  add({
    ref: '§4.1',
    name: 'an endpoint no rule selects allows everything',
    policy: ingressOnly,
    from: client,
    to: app('unselected'),
    verdict: 'allow',
  });
  add({
    ref: '§4.2',
    name: 'an ingress-only policy does not touch egress',
    policy: ingressOnly,
    from: server,
    to: client,
    verdict: 'allow',
    egress: 'allow',
  });
  add({
    ref: '§4.2',
    name: 'an ingress policy makes ingress default-deny',
    policy: ingressOnly,
    from: client,
    to: server,
    verdict: 'deny',
    ingress: 'deny',
  });
  const denyOnly = snap(
    cnp(
      'd',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
ingressDeny:
  - fromEndpoints: [{ matchLabels: { app: client } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
    ),
  );
  add({
    ref: '§4.2',
    name: 'a deny-only policy denies its port',
    policy: denyOnly,
    from: client,
    to: server,
    dport: 80,
    verdict: 'deny',
  });
  add({
    ref: '§4.2',
    name: 'a deny-only policy also turns on default deny: port 81 denied',
    policy: denyOnly,
    from: client,
    to: server,
    dport: 81,
    verdict: 'deny',
  });
  const off = snap(
    cnp(
      'o',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
enableDefaultDeny: { ingress: false }
ingress: [{ fromEndpoints: [{ matchLabels: { app: a } }], toPorts: [{ ports: [{ port: "53" }] }] }]
`,
    ),
  );
  add({
    ref: '§4.3',
    name: 'enableDefaultDeny false: unmentioned traffic stays allowed',
    policy: off,
    from: client,
    to: server,
    verdict: 'allow',
  });
  const offDeny = snap(
    cnp(
      'o',
      'default',
      `
endpointSelector: { matchLabels: { app: server } }
enableDefaultDeny: { ingress: false }
ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: client } }], toPorts: [{ ports: [{ port: "22" }] }] }]
`,
    ),
  );
  add({
    ref: '§4.3',
    name: 'enableDefaultDeny false still contributes its denies',
    policy: offDeny,
    from: client,
    to: server,
    dport: 22,
    verdict: 'deny',
  });
  add({
    ref: '§4.3',
    name: 'enableDefaultDeny false: other ports stay allowed',
    policy: offDeny,
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
  });
  const offPlusOther = snap(
    cnp(
      'o',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\nenableDefaultDeny: { ingress: false }\ningress: [{ fromEndpoints: [{ matchLabels: { app: a } }] }]',
    ) +
      cnp(
        'dd',
        'default',
        'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: b } }] }]',
      ),
  );
  add({
    ref: '§4.3',
    name: 'another selecting rule with default deny still isolates',
    policy: offPlusOther,
    from: client,
    to: server,
    verdict: 'deny',
    matched: ['CiliumNetworkPolicy/default/dd'],
  });
  add({
    ref: '§4.3',
    name: 'the non-default-deny rule still contributes allows',
    policy: offPlusOther,
    from: app('a'),
    to: server,
    verdict: 'allow',
  });
  const egOn = snap(
    cnp(
      'x',
      'default',
      'endpointSelector: { matchLabels: { app: client } }\nenableDefaultDeny: { egress: true }\ningress: [{ fromEndpoints: [{}] }]',
    ),
  );
  add({
    ref: '§4.2',
    name: 'explicit enableDefaultDeny.egress true isolates egress without egress rules',
    policy: egOn,
    from: client,
    to: server,
    verdict: 'deny',
    egress: 'deny',
  });
}

// §5 deny precedence
{
  const p = snap(
    cnp(
      'allow',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEntities: [all] }]',
    ) +
      ccnp(
        'deny',
        `
endpointSelector: { matchLabels: { app: server } }
ingressDeny:
  - fromEndpoints: [{ matchLabels: { app: client } }]
    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]
`,
      ),
  );
  add({
    ref: '§5',
    name: 'a matching deny wins over an allow (across CNP and CCNP)',
    policy: p,
    from: client,
    to: server,
    dport: 80,
    verdict: 'deny',
    matched: ['CiliumClusterwideNetworkPolicy/deny'],
  });
  add({
    ref: '§5',
    name: 'a deny scoped to one port leaves other allowed ports open',
    policy: p,
    from: client,
    to: server,
    dport: 443,
    verdict: 'allow',
  });
  add({
    ref: '§5',
    name: 'the deny does not match other peers',
    policy: p,
    from: app('other'),
    to: server,
    dport: 80,
    verdict: 'allow',
  });
  const eg = snap(
    cnp(
      'egress-deny',
      'default',
      `
endpointSelector: { matchLabels: { app: client } }
egress: [{ toEntities: [all] }]
egressDeny: [{ toEndpoints: [{ matchLabels: { app: backend } }] }]
`,
    ),
  );
  add({
    ref: '§5',
    name: 'egress-deny example: backend denied',
    policy: eg,
    from: client,
    to: app('backend'),
    verdict: 'deny',
    egress: 'deny',
  });
  add({
    ref: '§5',
    name: 'egress-deny example: everything else allowed',
    policy: eg,
    from: client,
    to: world('8.8.8.8'),
    verdict: 'allow',
  });
  const authDeny = snap(
    cnp(
      'a',
      'default',
      'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: client } }], authentication: { mode: required } }]',
    ) +
      knp('k', 'default', 'podSelector: { matchLabels: { app: server } }\ningress: [{}]') +
      cnp(
        'd',
        'default',
        'endpointSelector: { matchLabels: { app: server } }\ningressDeny: [{ fromEndpoints: [{ matchLabels: { app: client } }] }]',
      ),
  );
  add({
    ref: '§5',
    name: 'deny wins over a required-auth allow and a KNP allow; no auth on denied traffic',
    policy: authDeny,
    from: client,
    to: server,
    verdict: 'deny',
    auth: false,
  });
}

// §6.1 entities
{
  const ent = (e: string) =>
    snap(
      cnp(
        'e',
        'default',
        `endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEntities: [${e}] }]`,
      ),
    );
  add({
    ref: '§6.1',
    name: 'world admits an external IPv4 address',
    policy: ent('world'),
    from: world('8.8.8.8'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'world admits an external IPv6 address',
    policy: ent('world'),
    from: world('2001:db8::1'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'world never admits pods',
    policy: ent('world'),
    from: client,
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§6.1',
    name: 'cluster admits local pods of any namespace',
    policy: ent('cluster'),
    from: app('x', 'kube-system'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'cluster admits host',
    policy: ent('cluster'),
    from: reserved('host'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'cluster admits remote-node',
    policy: ent('cluster'),
    from: reserved('remote-node'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'cluster does not admit world',
    policy: ent('cluster'),
    from: world('8.8.8.8'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§6.1',
    name: 'all admits world',
    policy: ent('all'),
    from: world('8.8.8.8'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'all admits pods',
    policy: ent('all'),
    from: app('x', 'y'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'host admits only the host',
    policy: ent('host'),
    from: reserved('remote-node'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§6.1',
    name: 'host admits the host',
    policy: ent('host'),
    from: reserved('host'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'remote-node admits remote nodes',
    policy: ent('remote-node'),
    from: reserved('remote-node'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'kube-apiserver admits kube-apiserver',
    policy: ent('kube-apiserver'),
    from: reserved('kube-apiserver'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.1',
    name: 'none admits nothing',
    policy: ent('none'),
    from: reserved('host'),
    to: server,
    verdict: 'deny',
  });
}

// §6.2 CIDR
{
  const p = snap(
    cnp(
      'c',
      'default',
      `
endpointSelector: { matchLabels: { app: client } }
egress:
  - toCIDRSet: [{ cidr: 10.0.0.0/8, except: [10.96.0.0/12] }]
  - toCIDR: [2001:db8::/32]
`,
    ),
  );
  add({
    ref: '§6.2',
    name: 'an address in the cidr is allowed',
    policy: p,
    from: client,
    to: world('10.1.2.3'),
    verdict: 'allow',
  });
  add({
    ref: '§6.2',
    name: 'an address in the except prefix is not',
    policy: p,
    from: client,
    to: world('10.96.0.10'),
    verdict: 'deny',
  });
  add({
    ref: '§6.2',
    name: 'an address outside the cidr is not',
    policy: p,
    from: client,
    to: world('11.0.0.1'),
    verdict: 'deny',
  });
  add({
    ref: '§6.2',
    name: 'an IPv6 cidr matches an IPv6 address',
    policy: p,
    from: client,
    to: world('2001:db8:1::5'),
    verdict: 'allow',
  });
  add({
    ref: '§6.2',
    name: 'CIDR rules never select pods, even when the pod IP is inside',
    policy: p,
    from: client,
    to: pod({ labels: { app: 'x' }, ip: '10.1.2.3' }),
    verdict: 'deny',
  });
  add({
    ref: '§6.2',
    name: 'CIDR rules never select nodes',
    policy: p,
    from: client,
    to: reserved('remote-node', '10.1.1.1'),
    verdict: 'deny',
  });
  const ipb = snap(
    knp(
      'k',
      'default',
      `
podSelector: { matchLabels: { app: server } }
ingress: [{ from: [{ ipBlock: { cidr: 172.16.0.0/12, except: [172.16.1.0/24] } }] }]
`,
    ),
  );
  add({
    ref: '§6.2',
    name: 'KNP ipBlock admits an external address in the block',
    policy: ipb,
    from: world('172.17.0.1'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§6.2',
    name: 'KNP ipBlock except is refused',
    policy: ipb,
    from: world('172.16.1.9'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§6.2',
    name: 'KNP ipBlock never matches a pod IP (differs from upstream)',
    policy: ipb,
    from: pod({ labels: {}, ip: '172.17.0.1' }),
    to: server,
    verdict: 'deny',
  });
}

// §7 ports and protocols
{
  const ports = (body: string) =>
    snap(
      cnp(
        'p',
        'default',
        `endpointSelector: { matchLabels: { app: server } }\ningress:\n  - fromEndpoints: [{ matchLabels: { app: client } }]\n    toPorts: [{ ports: [${body}] }]`,
      ),
    );
  add({
    ref: '§7',
    name: 'port 0 means every port of the protocol',
    policy: ports('{ port: "0", protocol: TCP }'),
    from: client,
    to: server,
    dport: 31337,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'port 0 TCP does not allow UDP',
    policy: ports('{ port: "0", protocol: TCP }'),
    from: client,
    to: server,
    dport: 53,
    proto: 'UDP',
    verdict: 'deny',
  });
  const range = ports('{ port: "80", endPort: 444, protocol: TCP }');
  add({
    ref: '§7',
    name: 'endPort range includes its start',
    policy: range,
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'endPort range is inclusive of its end',
    policy: range,
    from: client,
    to: server,
    dport: 444,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'endPort range: inside',
    policy: range,
    from: client,
    to: server,
    dport: 300,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'endPort range: one past the end',
    policy: range,
    from: client,
    to: server,
    dport: 445,
    verdict: 'deny',
  });
  add({
    ref: '§7',
    name: 'endPort range: one before the start',
    policy: range,
    from: client,
    to: server,
    dport: 79,
    verdict: 'deny',
  });
  const noProto = ports('{ port: "53" }');
  add({
    ref: '§7',
    name: 'omitted protocol allows TCP',
    policy: noProto,
    from: client,
    to: server,
    dport: 53,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'omitted protocol allows UDP too',
    policy: noProto,
    from: client,
    to: server,
    dport: 53,
    proto: 'UDP',
    verdict: 'allow',
  });
  const anyProto = ports('{ port: "53", protocol: ANY }');
  add({
    ref: '§7',
    name: 'protocol ANY allows UDP',
    policy: anyProto,
    from: client,
    to: server,
    dport: 53,
    proto: 'UDP',
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'protocol ANY allows SCTP',
    policy: anyProto,
    from: client,
    to: server,
    dport: 53,
    proto: 'SCTP',
    verdict: 'allow',
  });
  const udp = ports('{ port: "53", protocol: UDP }');
  add({
    ref: '§7',
    name: 'a UDP rule does not allow TCP',
    policy: udp,
    from: client,
    to: server,
    dport: 53,
    verdict: 'deny',
  });
  const named = ports('{ port: "HTTP", protocol: TCP }');
  add({
    ref: '§7',
    name: 'a named port (lower-cased) resolves against the destination pod',
    policy: named,
    from: client,
    to: pod({ labels: { app: 'server' }, ports: { http: 8080 } }),
    dport: 8080,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'a named port does not match another port number',
    policy: named,
    from: client,
    to: pod({ labels: { app: 'server' }, ports: { http: 8080 } }),
    dport: 80,
    verdict: 'deny',
  });
  add({
    ref: '§7',
    name: 'a named port the pod does not declare matches nothing',
    policy: named,
    from: client,
    to: server,
    dport: 80,
    verdict: 'deny',
  });
  const multi = ports('{ port: "80", protocol: TCP }, { port: "443", protocol: TCP }');
  add({
    ref: '§7',
    name: 'ports entries within an element are ORed',
    policy: multi,
    from: client,
    to: server,
    dport: 443,
    verdict: 'allow',
  });
  const kp = (body: string) =>
    snap(
      knp('k', 'default', `podSelector: { matchLabels: { app: server } }\ningress:\n  - ports: [${body}]`),
    );
  add({
    ref: '§7',
    name: 'KNP protocol defaults to TCP (TCP allowed)',
    policy: kp('{ port: 53 }'),
    from: client,
    to: server,
    dport: 53,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'KNP protocol defaults to TCP (UDP refused), unlike a CNP',
    policy: kp('{ port: 53 }'),
    from: client,
    to: server,
    dport: 53,
    proto: 'UDP',
    verdict: 'deny',
  });
  add({
    ref: '§7',
    name: 'KNP missing port means all ports of the protocol',
    policy: kp('{ protocol: UDP }'),
    from: client,
    to: server,
    dport: 5000,
    proto: 'UDP',
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'KNP endPort is inclusive',
    policy: kp('{ port: 1000, endPort: 2000 }'),
    from: client,
    to: server,
    dport: 2000,
    verdict: 'allow',
  });
  add({
    ref: '§7',
    name: 'KNP endPort: past the end refused',
    policy: kp('{ port: 1000, endPort: 2000 }'),
    from: client,
    to: server,
    dport: 2001,
    verdict: 'deny',
  });
  add({
    ref: '§9.6',
    name: 'KNP SCTP rule does not allow TCP',
    policy: kp('{ port: 5000, protocol: SCTP }'),
    from: client,
    to: server,
    dport: 5000,
    verdict: 'deny',
  });
}

// §8 authentication
{
  const base = 'endpointSelector: { matchLabels: { app: server } }\ningress:\n';
  const c2 = '  - fromEndpoints: [{ matchLabels: { app: client } }]\n';
  const p80 = '    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n';
  const p8080 = '    toPorts: [{ ports: [{ port: "8080", protocol: TCP }] }]\n';
  const req = '    authentication: { mode: required }\n';
  const dis = '    authentication: { mode: disabled }\n';
  const s = (...bodies: string[]) => snap(bodies.map((b, i) => cnp(`p${i}`, 'default', base + b)).join(''));
  add({
    ref: '§8.1',
    name: 'mode required → authentication required',
    policy: s(c2 + p80 + req),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.1',
    name: 'mode disabled → no authentication',
    policy: s(c2 + p80 + dis),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.1',
    name: 'authentication omitted → no authentication',
    policy: s(c2 + p80),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.2a',
    name: 'same selector and port: silent + required ⇒ required',
    policy: s(c2 + p80, c2 + p80 + req),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2b',
    name: 'same key, two explicit modes in different policies: higher (required) wins',
    policy: s(c2 + p80 + dis, c2 + p80 + req),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2b',
    name: 'same key through different selectors: explicit beats default',
    policy: s(
      c2 + p80,
      '  - fromEndpoints: [{ matchExpressions: [{ key: app, operator: In, values: [client] }] }]\n' +
        p80 +
        req,
    ),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2c',
    name: 'L3-only required + silent :80 rule: :80 inherits required',
    policy: s(c2 + req, c2 + p80),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2c',
    name: 'explicit disabled on the narrower :80 rule opts out',
    policy: s(c2 + req, c2 + p80 + dis),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.2c',
    name: '…while :8080, covered only by the L3-only rule, still requires it',
    policy: s(c2 + req, c2 + p80 + dis),
    from: client,
    to: server,
    dport: 8080,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2c',
    name: 'a required rule on another port adds no requirement',
    policy: s(c2 + p8080 + req, c2 + p80),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.3',
    name: 'a required rule for another peer adds no requirement',
    policy: s(`  - fromEndpoints: [{ matchLabels: { app: other } }]\n${p80}${req}`, c2 + p80),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.2d',
    name: 'wildcard L4-only required + identity :80 silent, tie → identity chosen, greater wildcard type applies',
    policy: s(`  - toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n${req}`, c2 + p80),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  add({
    ref: '§8.2d',
    name: 'identity :80 explicit disabled beats wildcard required on a tie',
    policy: s(`  - toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n${req}`, c2 + p80 + dis),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: false,
  });
  add({
    ref: '§8.2d',
    name: 'wildcard required, longer prefix, wins over an L3-only silent identity entry',
    policy: s(`  - toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]\n${req}`, c2),
    from: client,
    to: server,
    dport: 80,
    verdict: 'allow',
    auth: true,
  });
  const eg = snap(
    cnp(
      'e',
      'default',
      'endpointSelector: { matchLabels: { app: client } }\negress: [{ toEndpoints: [{ matchLabels: { app: server } }], authentication: { mode: required } }]',
    ),
  );
  add({
    ref: '§8.2e',
    name: 'required on the egress side alone makes the connection require auth',
    policy: eg,
    from: client,
    to: server,
    verdict: 'allow',
    auth: true,
  });
  const both = snap(
    cnp(
      'e',
      'default',
      'endpointSelector: { matchLabels: { app: client } }\negress: [{ toEndpoints: [{ matchLabels: { app: server } }], authentication: { mode: required } }]',
    ) +
      cnp(
        'i',
        'default',
        'endpointSelector: { matchLabels: { app: server } }\ningress: [{ fromEndpoints: [{ matchLabels: { app: other } }] }]',
      ),
  );
  add({
    ref: '§8.2e',
    name: 'egress requires auth but ingress denies: denied, no auth',
    policy: both,
    from: client,
    to: server,
    verdict: 'deny',
    auth: false,
  });
  add({
    ref: '§8.1',
    name: 'test-always-fail counts as requiring authentication',
    policy: s(`${c2}    authentication: { mode: test-always-fail }\n`),
    from: client,
    to: server,
    verdict: 'allow',
    auth: true,
  });
  const ccnpAuth = snap(
    ccnp('c', 'endpointSelector: {}\ningress: [{ fromEndpoints: [{}], authentication: { mode: required } }]'),
  );
  add({
    ref: '§8.1',
    name: 'authentication works in a CCNP too',
    policy: ccnpAuth,
    from: app('a', 'x'),
    to: app('b', 'y'),
    verdict: 'allow',
    auth: true,
  });
}

// §9 Kubernetes NetworkPolicy
{
  const k = (spec: string) =>
    snap(knp('k', 'default', `podSelector: { matchLabels: { app: server } }\n${spec}`));
  add({
    ref: '§9.1',
    name: 'a selected pod is isolated for ingress',
    policy: k('ingress: [{ from: [{ podSelector: { matchLabels: { app: a } } }] }]'),
    from: client,
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§9.2',
    name: 'policyTypes omitted, no rules: ingress isolated (deny all)',
    policy: k(''),
    from: client,
    to: server,
    verdict: 'deny',
    ingress: 'deny',
  });
  add({
    ref: '§9.2',
    name: 'policyTypes omitted, no egress rules: egress not isolated',
    policy: k(''),
    from: server,
    to: client,
    verdict: 'allow',
    egress: 'allow',
  });
  add({
    ref: '§9.2',
    name: 'policyTypes [Egress] without rules isolates egress',
    policy: k('policyTypes: [Egress]'),
    from: server,
    to: client,
    verdict: 'deny',
    egress: 'deny',
  });
  add({
    ref: '§9.2',
    name: 'policyTypes [Egress] leaves ingress open',
    policy: k('policyTypes: [Egress]'),
    from: client,
    to: server,
    verdict: 'allow',
    ingress: 'allow',
  });
  add({
    ref: '§9.2',
    name: 'egress rules without policyTypes also isolate ingress',
    policy: k('egress: [{ to: [{ podSelector: {} }] }]'),
    from: client,
    to: server,
    verdict: 'deny',
    ingress: 'deny',
  });
  add({
    ref: '§9.2',
    name: 'Cilium translates ingress rules even with policyTypes [Egress] (isolates ingress)',
    policy: k('policyTypes: [Egress]\ningress: [{ from: [{ podSelector: { matchLabels: { app: a } } }] }]'),
    from: client,
    to: server,
    verdict: 'deny',
    ingress: 'deny',
  });
  add({
    ref: '§9.3',
    name: 'ingress [{}] allows all sources, world included',
    policy: k('ingress: [{}]'),
    from: world('8.8.8.8'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.3',
    name: 'ingress [] with Ingress in policyTypes denies all',
    policy: k('policyTypes: [Ingress]\ningress: []'),
    from: client,
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§9.3',
    name: 'from peers OR: second peer matches',
    policy: k(
      'ingress: [{ from: [{ podSelector: { matchLabels: { app: a } } }, { podSelector: { matchLabels: { app: client } } }] }]',
    ),
    from: client,
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.3',
    name: 'peers AND ports: right peer, wrong port',
    policy: k(
      'ingress: [{ from: [{ podSelector: { matchLabels: { app: client } } }], ports: [{ port: 443 }] }]',
    ),
    from: client,
    to: server,
    dport: 80,
    verdict: 'deny',
  });
  const and = k(
    'ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: web } }, podSelector: { matchLabels: { app: client } } }] }]',
  );
  add({
    ref: '§9.4',
    name: 'namespaceSelector AND podSelector in one peer: both hold',
    policy: and,
    from: pod({ ns: 'w', labels: { app: 'client' }, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.4',
    name: 'namespaceSelector AND podSelector: right namespace, wrong pod',
    policy: and,
    from: pod({ ns: 'w', labels: { app: 'x' }, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§9.4',
    name: 'namespaceSelector AND podSelector: right pod in the policy namespace only',
    policy: and,
    from: client,
    to: server,
    verdict: 'deny',
  });
  const or = k(
    'ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: web } } }, { podSelector: { matchLabels: { app: client } } }] }]',
  );
  add({
    ref: '§9.4',
    name: 'two peers OR: any pod of a web namespace',
    policy: or,
    from: pod({ ns: 'w', labels: { app: 'x' }, nsLabels: { team: 'web' } }),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.4',
    name: 'two peers OR: client in the policy namespace',
    policy: or,
    from: client,
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.4',
    name: 'two peers OR: client in another namespace without the label',
    policy: or,
    from: app('client', 'other'),
    to: server,
    verdict: 'deny',
  });
  const podAll = k('ingress: [{ from: [{ podSelector: {} }] }]');
  add({
    ref: '§9.5',
    name: 'podSelector {} alone = all pods of the policy namespace',
    policy: podAll,
    from: app('anything'),
    to: server,
    verdict: 'allow',
  });
  add({
    ref: '§9.5',
    name: 'podSelector {} alone denies other namespaces',
    policy: podAll,
    from: app('anything', 'other'),
    to: server,
    verdict: 'deny',
  });
  add({
    ref: '§9.5',
    name: 'namespaceSelector {} = all namespaces',
    policy: k('ingress: [{ from: [{ namespaceSelector: {} }] }]'),
    from: app('x', 'far'),
    to: server,
    verdict: 'allow',
  });
}

// §11 the seed scenario
{
  const deny = cnp(
    'demo1-default-deny',
    'default',
    'endpointSelector: { matchLabels: { app: demodeployment } }\ningress:\n  - {}',
  );
  const allow1 = cnp(
    'allow-client1',
    'default',
    'endpointSelector: { matchLabels: { app: demodeployment } }\ningress:\n  - fromEndpoints: [{ matchLabels: { app: client1 } }]\n    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]',
  );
  const allow2 = cnp(
    'allow-client2',
    'default',
    'endpointSelector: { matchLabels: { app: demodeployment } }\ningress:\n  - fromEndpoints: [{ matchLabels: { app: client2 } }]\n    authentication: { mode: required }\n    toPorts: [{ ports: [{ port: "80", protocol: TCP }] }]',
  );
  const only = snap(deny);
  const all3 = snap(deny + allow1 + allow2);
  const demo = app('demodeployment');
  for (const c of ['client1', 'client2', 'client3']) {
    add({
      ref: '§11',
      name: `default deny only: ${c} → demo:80 denied at ingress`,
      policy: only,
      from: app(c),
      to: demo,
      dport: 80,
      verdict: 'deny',
      egress: 'allow',
      ingress: 'deny',
      matched: ['CiliumNetworkPolicy/default/demo1-default-deny'],
    });
  }
  add({
    ref: '§11',
    name: 'client1 → demo:80 allowed, no authentication',
    policy: all3,
    from: app('client1'),
    to: demo,
    dport: 80,
    verdict: 'allow',
    auth: false,
    matched: ['CiliumNetworkPolicy/default/allow-client1'],
  });
  add({
    ref: '§11',
    name: 'client2 → demo:80 allowed, authentication required',
    policy: all3,
    from: app('client2'),
    to: demo,
    dport: 80,
    verdict: 'allow',
    auth: true,
    matched: ['CiliumNetworkPolicy/default/allow-client2'],
  });
  add({
    ref: '§11',
    name: 'client3 → demo:80 denied (default deny remains)',
    policy: all3,
    from: app('client3'),
    to: demo,
    dport: 80,
    verdict: 'deny',
  });
  add({
    ref: '§11',
    name: 'client1 → demo:8080 denied (the rule is port-scoped)',
    policy: all3,
    from: app('client1'),
    to: demo,
    dport: 8080,
    verdict: 'deny',
  });
  add({
    ref: '§11',
    name: 'app=client1 from namespace prod denied (peer scoped to default)',
    policy: all3,
    from: app('client1', 'prod'),
    to: demo,
    dport: 80,
    verdict: 'deny',
  });
  add({
    ref: '§11',
    name: 'client egress stays allowed: no policy selects the clients',
    policy: all3,
    from: app('client3'),
    to: app('client1'),
    dport: 80,
    verdict: 'allow',
  });
}

describe('reference semantics (table)', () => {
  it('has at least 100 cases, each citing a section', () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    for (const c of cases) expect(c.ref).toMatch(/^§\d+(\.\d+)?[a-e]?$/);
  });

  it.each(cases.map((c) => [`${c.ref} ${c.name}`, c] as const))('%s', (_name, c) => {
    const v = decide({ src: c.from, dst: c.to, dport: c.dport ?? 80, protocol: c.proto ?? 'TCP' }, c.policy);
    expect(v.verdict).toBe(c.verdict);
    if (c.auth !== undefined) expect(v.authRequired).toBe(c.auth);
    if (c.egress !== undefined) expect(v.egress.verdict).toBe(c.egress);
    if (c.ingress !== undefined) expect(v.ingress.verdict).toBe(c.ingress);
    if (c.matched !== undefined) {
      const dir =
        v.verdict === 'deny'
          ? v.direction === 'egress'
            ? v.egress
            : v.ingress
          : v.ingress.matched.length > 0
            ? v.ingress
            : v.egress;
      expect([...new Set(dir.matched.map((m) => m.policy))].sort()).toEqual([...c.matched].sort());
    }
    if (v.verdict === 'deny') expect(v.authRequired).toBe(false);
  });
});
