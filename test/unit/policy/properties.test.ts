// Property tests (fast-check): monotonicity of allows and denies, and independence from the order of
// policies and documents. Policies come from a small vocabulary so that rules and peers often meet.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide, type PolicyPeer, type Verdict } from '../../../src/policy/decide.ts';
import { parseDocuments, type RawDocument } from '../../../src/policy/manifest.ts';
import type { Protocol } from '../../../src/policy/model.ts';
import { compileSnapshot, type PolicySnapshot } from '../../../src/policy/snapshot.ts';
import { pod, reserved, world } from './helpers.ts';

const APPS = ['a', 'b', 'c'];
const NSS = ['x', 'y'];

const peers: PolicyPeer[] = [
  ...APPS.flatMap((a) => NSS.map((ns) => pod({ ns, labels: { app: a } }))),
  world('10.1.2.3'),
  world('8.8.8.8'),
  reserved('host'),
];
const ports: [number, Protocol][] = [
  [80, 'TCP'],
  [443, 'TCP'],
  [8080, 'TCP'],
  [80, 'UDP'],
];

const selector = fc.oneof(
  fc.constant({}),
  fc.constantFrom(...APPS).map((a) => ({ matchLabels: { app: a } })),
  fc.constantFrom(...NSS).map((ns) => ({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': ns } })),
);

const l3 = (dir: 'from' | 'to') =>
  fc.oneof(
    fc.constant({}),
    fc.array(selector, { minLength: 1, maxLength: 2 }).map((s) => ({ [`${dir}Endpoints`]: s })),
    fc
      .subarray(['world', 'cluster', 'all', 'host'], { minLength: 1 })
      .map((e) => ({ [`${dir}Entities`]: e })),
    fc.constant({ [`${dir}CIDRSet`]: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] }] }),
    fc.constant({ [`${dir}CIDR`]: ['8.8.8.0/24'] }),
  );

const toPorts = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    [{ ports: [{ port: '80', protocol: 'TCP' }] }],
    [{ ports: [{ port: '0', protocol: 'TCP' }] }],
    [{ ports: [{ port: '80', endPort: 443 }] }],
    [
      {
        ports: [
          { port: '80', protocol: 'UDP' },
          { port: '8080', protocol: 'TCP' },
        ],
      },
    ],
  ),
);

const allowElement = (dir: 'from' | 'to', withAuth: boolean) =>
  fc
    .record({
      l3: l3(dir),
      toPorts,
      auth: withAuth ? fc.constantFrom(undefined, 'required', 'disabled') : fc.constant(undefined),
    })
    .map(({ l3, toPorts, auth }) => ({
      ...l3,
      ...(toPorts === undefined ? {} : { toPorts }),
      ...(auth === undefined ? {} : { authentication: { mode: auth } }),
    }));

const denyElement = (dir: 'from' | 'to') =>
  fc
    .record({ l3: l3(dir), toPorts })
    .map(({ l3, toPorts }) => ({ ...l3, ...(toPorts === undefined ? {} : { toPorts }) }));

const spec = fc
  .record({
    subject: selector,
    ingress: fc.array(allowElement('from', true), { maxLength: 2 }),
    egress: fc.array(allowElement('to', true), { maxLength: 2 }),
    ingressDeny: fc.array(denyElement('from'), { maxLength: 1 }),
    egressDeny: fc.array(denyElement('to'), { maxLength: 1 }),
  })
  .filter((s) => s.ingress.length + s.egress.length + s.ingressDeny.length + s.egressDeny.length > 0)
  .map((s) => {
    const out: Record<string, unknown> = { endpointSelector: s.subject };
    for (const k of ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const)
      if (s[k].length > 0) out[k] = s[k];
    return out;
  });

interface Manifest {
  kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';
  ns: string;
  spec: Record<string, unknown>;
}
const manifest = fc.record({
  kind: fc.constantFrom('CiliumNetworkPolicy' as const, 'CiliumClusterwideNetworkPolicy' as const),
  ns: fc.constantFrom(...NSS),
  spec,
});

function docs(ms: readonly Manifest[], names?: readonly string[]): RawDocument[] {
  return ms.map((m, i) => ({
    file: `f${names?.[i] ?? i}.yaml`,
    document: 0,
    prefix: '',
    value: {
      apiVersion: 'cilium.io/v2',
      kind: m.kind,
      metadata: m.kind === 'CiliumNetworkPolicy' ? { name: `p${i}`, namespace: m.ns } : { name: `p${i}` },
      spec: m.spec,
    },
  }));
}

function compile(ms: readonly Manifest[]): PolicySnapshot {
  const parsed = parseDocuments(docs(ms));
  return compileSnapshot(parsed.policies, { issues: parsed.issues });
}

function allVerdicts(s: PolicySnapshot): Verdict[] {
  const out: Verdict[] = [];
  for (const src of peers)
    for (const dst of peers)
      for (const [dport, protocol] of ports) out.push(decide({ src, dst, dport, protocol }, s));
  return out;
}

function summary(v: Verdict) {
  const keys = (d: Verdict['egress']) => d.matched.map((m) => `${m.policy} ${m.path} ${m.effect}`).sort();
  return { verdict: v.verdict, auth: v.authRequired, egress: keys(v.egress), ingress: keys(v.ingress) };
}

const RUNS = 40;

describe('policy properties', () => {
  it('adding an allow rule (a policy that leaves default deny alone) never turns an allow into a deny', () => {
    fc.assert(
      fc.property(
        fc.array(manifest, { maxLength: 4 }),
        fc.constantFrom('ingress', 'egress'),
        selector,
        allowElement('from', true),
        allowElement('to', true),
        (base, dir, subject, inEl, egEl) => {
          const extra: Manifest = {
            kind: 'CiliumNetworkPolicy',
            ns: 'x',
            spec: {
              endpointSelector: subject,
              enableDefaultDeny: { ingress: false, egress: false },
              [dir]: [dir === 'ingress' ? inEl : egEl],
            },
          };
          const before = allVerdicts(compile(base));
          const after = allVerdicts(compile([...base, extra]));
          before.forEach((b, i) => {
            if (b.verdict === 'allow') expect(after[i]!.verdict).toBe('allow');
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('adding an allow element to a section that already has one never turns an allow into a deny', () => {
    fc.assert(
      fc.property(
        fc.array(manifest, { minLength: 1, maxLength: 4 }),
        fc.nat(),
        allowElement('from', false),
        (base, pick, el) => {
          const i = pick % base.length;
          const target = base[i]!;
          const ing = target.spec.ingress as unknown[] | undefined;
          fc.pre(ing !== undefined && ing.length > 0);
          const changed = base.map((m, j) =>
            j === i ? { ...m, spec: { ...m.spec, ingress: [...ing!, el] } } : m,
          );
          const before = allVerdicts(compile(base));
          const after = allVerdicts(compile(changed));
          before.forEach((b, k) => {
            if (b.verdict === 'allow') expect(after[k]!.verdict).toBe('allow');
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('adding a deny rule never turns a deny into an allow', () => {
    fc.assert(
      fc.property(
        fc.array(manifest, { maxLength: 4 }),
        fc.constantFrom('ingressDeny', 'egressDeny'),
        selector,
        denyElement('from'),
        denyElement('to'),
        (base, section, subject, inEl, egEl) => {
          const extra: Manifest = {
            kind: 'CiliumClusterwideNetworkPolicy',
            ns: '',
            spec: { endpointSelector: subject, [section]: [section === 'ingressDeny' ? inEl : egEl] },
          };
          const before = allVerdicts(compile(base));
          const after = allVerdicts(compile([...base, extra]));
          before.forEach((b, i) => {
            if (b.verdict === 'deny') expect(after[i]!.verdict).toBe('deny');
          });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('the result does not depend on the order of policies or documents', () => {
    fc.assert(
      fc.property(
        fc
          .array(manifest, { minLength: 1, maxLength: 5 })
          .chain((ms) =>
            fc.tuple(
              fc.constant(ms),
              fc.shuffledSubarray([...ms.keys()], { minLength: ms.length, maxLength: ms.length }),
            ),
          ),
        ([ms, perm]) => {
          const a = compile(ms);
          // Same policies, other document order and other file names.
          const reordered = perm.map((i) => ms[i]!);
          const names = perm.map((i) => `z${ms.length - i}`);
          const parsed = parseDocuments(
            docs(reordered, names).map((d, j) => ({
              ...d,
              value: {
                ...(d.value as object),
                metadata: { ...(d.value as { metadata: object }).metadata, name: `p${perm[j]}` },
              },
            })),
          );
          const b = compileSnapshot([...parsed.policies].reverse(), { issues: parsed.issues });
          const va = allVerdicts(a).map(summary);
          const vb = allVerdicts(b).map(summary);
          expect(vb).toEqual(va);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
