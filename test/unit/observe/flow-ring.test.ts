import { describe, expect, it } from 'vitest';
import { FlowRing } from '../../../src/observe/flow.ts';
import { flow } from './fixtures.ts';

const ports = (fs: readonly { l4: { TCP: { source_port: number } } }[]) =>
  fs.map((f) => f.l4.TCP.source_port);
const flowFrom = (port: number) =>
  flow({ l4: { TCP: { source_port: port, destination_port: 80, flags: { SYN: true } } } });

describe('FlowRing', () => {
  it('holds what was pushed, oldest first, until it is full', () => {
    const ring = new FlowRing(4);
    expect(ring.recent()).toEqual([]);
    for (const p of [1, 2, 3]) ring.push(flowFrom(p));
    expect(ports(ring.recent())).toEqual([1, 2, 3]);
    expect(ports(ring.recent(2))).toEqual([2, 3]);
    expect(ports(ring.recent(10))).toEqual([1, 2, 3]);
    expect(ring.recent(0)).toEqual([]);
  });

  it('keeps the last `capacity` flows in order as it wraps, many times over', () => {
    const ring = new FlowRing(5);
    for (let p = 1; p <= 23; p++) ring.push(flowFrom(p));
    expect(ports(ring.recent())).toEqual([19, 20, 21, 22, 23]);
    expect(ports(ring.recent(3))).toEqual([21, 22, 23]);
    ring.push(flowFrom(24));
    expect(ports(ring.recent())).toEqual([20, 21, 22, 23, 24]);
  });

  it('tells subscribers of each push until they unsubscribe', () => {
    const ring = new FlowRing(2);
    const seen: number[] = [];
    const off = ring.subscribe((f) => seen.push(f.l4.TCP.source_port));
    ring.push(flowFrom(7));
    ring.push(flowFrom(8));
    off();
    ring.push(flowFrom(9));
    expect(seen).toEqual([7, 8]);
  });

  it('refuses a capacity that holds nothing', () => {
    expect(() => new FlowRing(0)).toThrow(/capacity 0/);
  });
});
