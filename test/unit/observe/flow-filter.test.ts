import { describe, expect, it } from 'vitest';
import {
  checkFlowFilter,
  EMPTY_FILTER,
  type FlowFilter,
  FlowFilterError,
  flowFilterQuery,
  flowMatches,
  parseFlowFilter,
} from '../../../src/observe/flow-filter.ts';
import { flow } from './fixtures.ts';

const f = (over: Partial<FlowFilter>): FlowFilter => ({ ...EMPTY_FILTER, ...over });

describe('flow filters (hubble observe semantics)', () => {
  const drop = flow();
  const allowed = flow({ verdict: 'FORWARDED', drop_reason_desc: undefined });
  it.each<[string, FlowFilter, boolean]>([
    ['no filter', EMPTY_FILTER, true],
    ['from-label app=client2', f({ fromLabels: ['app=client2'] }), true],
    ['from-label with its source', f({ fromLabels: ['k8s:app=client2'] }), true],
    ['from-label of another source', f({ fromLabels: ['reserved:app=client2'] }), false],
    ['from-label, a bare key', f({ fromLabels: ['app'] }), true],
    ['from-label, another value', f({ fromLabels: ['app=client1'] }), false],
    ['from-label, a value prefix is no match', f({ fromLabels: ['app=client'] }), false],
    ['from-label, all must match', f({ fromLabels: ['app=client2', 'tier=web'] }), false],
    ['to-label', f({ toLabels: ['app=demodeployment'] }), true],
    ['to-label on the source side is no match', f({ toLabels: ['app=client2'] }), false],
    ['from-pod ns/name', f({ fromPod: 'default/client2' }), true],
    ['from-pod name, default namespace', f({ fromPod: 'client2' }), true],
    ['from-pod prefix', f({ fromPod: 'default/client' }), true],
    ['from-pod other namespace', f({ fromPod: 'kube-system/client2' }), false],
    ['to-pod', f({ toPod: 'default/demo' }), true],
    ['to-pod other', f({ toPod: 'default/client2' }), false],
    ['verdict DROPPED', f({ verdict: 'DROPPED' }), true],
    ['verdict FORWARDED', f({ verdict: 'FORWARDED' }), false],
    ['everything at once', f({ fromLabels: ['app=client2'], toPod: 'demo-0', verdict: 'DROPPED' }), true],
  ])('%s', (_name, filter, matches) => {
    expect(flowMatches(filter, drop)).toBe(matches);
  });

  it('matches a FORWARDED flow only without a DROPPED verdict filter', () => {
    expect(flowMatches(f({ verdict: 'FORWARDED' }), allowed)).toBe(true);
    expect(flowMatches(f({ verdict: 'DROPPED' }), allowed)).toBe(false);
  });

  it('a pod filter never matches an endpoint that is no pod (world)', () => {
    const world = flow({ source: { identity: 2, labels: ['reserved:world'] } });
    expect(flowMatches(f({ fromPod: 'client2' }), world)).toBe(false);
    expect(flowMatches(f({ fromLabels: ['reserved:world'] }), world)).toBe(true);
  });

  it('travels as query parameters and back', () => {
    const filter = f({
      fromLabels: ['app=client2', 'k8s:tier'],
      toLabels: ['app=demodeployment'],
      fromPod: 'default/client2',
      toPod: 'demo',
      verdict: 'DROPPED',
    });
    const q = flowFilterQuery(filter);
    expect(q.toString()).toBe(
      'from_label=app%3Dclient2&from_label=k8s%3Atier&to_label=app%3Ddemodeployment&from_pod=default%2Fclient2&to_pod=demo&verdict=DROPPED',
    );
    expect(parseFlowFilter(q)).toEqual(filter);
    expect(parseFlowFilter(new URLSearchParams('verdict=dropped')).verdict).toBe('DROPPED');
  });

  it.each([
    ['verdict=ALLOWED', /verdict must be FORWARDED or DROPPED/],
    ['from_label=app%3D%3Dx', /not a label selector/],
    ['to_label=', /not a label selector/],
    ['from_pod=Default%2FX', /not \[namespace\/\]pod-name/],
    ['to_pod=a%2Fb%2Fc', /not \[namespace\/\]pod-name/],
  ])('refuses %s', (query, why) => {
    expect(() => parseFlowFilter(new URLSearchParams(query))).toThrow(FlowFilterError);
    expect(() => parseFlowFilter(new URLSearchParams(query))).toThrow(why);
  });

  it('checks filters built from flags with the same rules', () => {
    expect(() => checkFlowFilter(f({ fromPod: 'no spaces' }))).toThrow(FlowFilterError);
    expect(checkFlowFilter(f({ fromPod: 'ns/pod' }))).toEqual(f({ fromPod: 'ns/pod' }));
  });
});
