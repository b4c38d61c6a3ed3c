import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ExpositionError, parseExposition, sampleSum, sampleValue } from '../../../src/observe/prom-text.ts';

describe('the Prometheus text parser', () => {
  it('reads back what prom-client writes: counters, gauges, histograms, escaped label values', async () => {
    const r = new Registry();
    const c = new Counter({ name: 'x_total', help: 'a counter', labelNames: ['a'], registers: [r] });
    c.inc({ a: 'one' }, 3);
    c.inc({ a: 'quote " back \\ slash\nnewline' }, 1.5);
    const g = new Gauge({ name: 'y', help: 'a gauge', registers: [r] });
    g.set(-2);
    const h = new Histogram({
      name: 'z_seconds',
      help: 'a histogram',
      buckets: [0.1, 1],
      labelNames: ['role'],
      registers: [r],
    });
    h.observe({ role: 'client' }, 0.05);
    h.observe({ role: 'client' }, 0.5);
    h.observe({ role: 'client' }, 7);
    const m = parseExposition(await r.metrics());
    expect(m.get('x_total')).toMatchObject({ type: 'counter', help: 'a counter' });
    expect(sampleValue(m, 'x_total', { a: 'one' })).toBe(3);
    expect(sampleValue(m, 'x_total', { a: 'quote " back \\ slash\nnewline' })).toBe(1.5);
    expect(sampleValue(m, 'y')).toBe(-2);
    expect(m.get('z_seconds')?.type).toBe('histogram');
    expect(sampleValue(m, 'z_seconds_bucket', { role: 'client', le: '0.1' })).toBe(1);
    expect(sampleValue(m, 'z_seconds_bucket', { role: 'client', le: '1' })).toBe(2);
    expect(sampleValue(m, 'z_seconds_bucket', { role: 'client', le: '+Inf' })).toBe(3);
    expect(sampleValue(m, 'z_seconds_count', { role: 'client' })).toBe(3);
    expect(sampleValue(m, 'z_seconds_sum', { role: 'client' })).toBeCloseTo(7.55);
    expect(sampleSum(m, 'x_total')).toBe(4.5);
    expect(sampleValue(m, 'x_total', { a: 'absent' })).toBeUndefined();
    expect(() => sampleValue(m, 'x_total')).toThrow(/matches 2 samples/);
  });

  it('reads special values, timestamps, comments and blank lines', () => {
    const m = parseExposition(
      '# a comment\n\n# TYPE a gauge\na{l="1"} +Inf\na{l="2"} -Inf 1700000000000\na{l="3"} NaN\nb 1e3\nc{} .5\n',
    );
    expect(sampleValue(m, 'a', { l: '1' })).toBe(Number.POSITIVE_INFINITY);
    expect(m.get('a')?.samples[1]).toMatchObject({
      value: Number.NEGATIVE_INFINITY,
      timestamp: 1700000000000,
    });
    expect(sampleValue(m, 'a', { l: '3' })).toBeNaN();
    expect(sampleValue(m, 'b')).toBe(1000);
    expect(sampleValue(m, 'c')).toBe(0.5);
    expect(m.get('b')?.type).toBe('untyped');
  });

  it.each([
    ['a{l="x} 1', /unterminated/],
    ['a{l=x} 1', /expected "/],
    ['a{1l="x"} 1', /bad label name/],
    ['a{l="x" m="y"} 1', /expected , or \}/],
    ['a{l="\\q"} 1', /bad escape/],
    ['a{l="x",l="y"} 1', /given twice/],
    ['a one', /bad value/],
    ['a', /expected a value/],
    ['a 1 2 3', /expected a value/],
    ['1a 1', /bad metric name/],
    ['# TYPE a meter', /unknown type/],
    ['a 1\n# TYPE a gauge', /TYPE for a after its samples/],
  ])('rejects %j', (text, why) => {
    expect(() => parseExposition(text)).toThrow(ExpositionError);
    expect(() => parseExposition(text)).toThrow(why);
  });
});
