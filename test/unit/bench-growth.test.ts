import { describe, expect, it } from 'vitest';
import {
  describeGrowth,
  fitGrowth,
  fitGrowthGroups,
  fitLinear,
  fitPower2,
  type GrowthModel,
  predictModel,
  predictPower,
} from '../../bench/lib/growth.ts';

const SIZES = [100, 500, 1000, 2500, 5000];
const series = (f: (n: number) => number, sizes = SIZES) => sizes.map((n) => ({ n, y: f(n) }));

describe('fitGrowth names the growth of exact data', () => {
  const cases: [string, (n: number) => number, GrowthModel][] = [
    ['constant', () => 42, '1'],
    ['log n', (n) => 3 * Math.log(n), 'log n'],
    ['n', (n) => 0.25 * n, 'n'],
    ['n log n', (n) => 0.01 * n * Math.log(n), 'n log n'],
    ['n²', (n) => 2e-6 * n * n, 'n^2'],
    ['1/n', (n) => 500 / n, '1/n'],
    ['a fixed part plus n', (n) => 8 + 0.03 * n, 'n'],
    ['a fixed part plus n log n', (n) => 50 + 0.002 * n * Math.log(n), 'n log n'],
    ['a fixed part plus n²', (n) => 1 + 1e-7 * n * n, 'n^2'],
  ];
  for (const [name, f, model] of cases) {
    it(`${name} → ${model}`, () => {
      expect(fitGrowth(series(f)).model).toBe(model);
    });
  }

  it('gives the log-log slope of a power law and extrapolates it', () => {
    const fit = fitGrowth(series((n) => 3 * n ** 1.5));
    expect(fit.slope).toBeCloseTo(1.5, 9);
    expect(fit.r2).toBeCloseTo(1, 9);
    expect(predictPower(fit, 50_000)).toBeCloseTo(3 * 50_000 ** 1.5, 0);
  });

  it('recovers the fixed part and the factor, and says how much of the smallest size is fixed', () => {
    const fit = fitGrowth(series((n) => 8 + 0.03 * n));
    expect(fit.fixed).toBeCloseTo(8, 6);
    expect(fit.factor).toBeCloseTo(0.03, 9);
    expect(fit.fixedShare).toBeCloseTo(8 / 11, 6);
    expect(predictModel(fit, 50_000)).toBeCloseTo(1508, 6);
    expect(describeGrowth(fit)).toMatch(
      /^linear \(n\) \+ fixed part \(73 % at the smallest size\), log-log slope 0\.\d\d$/,
    );
  });

  it('names no fixed part with fewer than four points, where two parameters fit almost any shape', () => {
    const fit = fitGrowth(series((n) => 8 + 0.03 * n, [100, 500, 1000]));
    expect(fit.withFixedPart).toBe(false);
    expect(fit.model).toBe('log n');
    expect(fitGrowth(series((n) => 2 * n, [100, 1000])).model).toBe('n');
  });

  it('names no fixed part when the pure model already fits within noise', () => {
    const noise = [1.03, 0.97, 1.02, 0.98, 1.01];
    const fit = fitGrowth(SIZES.map((n, i) => ({ n, y: (5 + n) * noise[i]! })));
    expect(fit.withFixedPart).toBe(false);
    expect(fit.model).toBe('n');
  });

  it('ignores points it cannot take the log of, and refuses fewer than two', () => {
    expect(fitGrowth([...series((n) => n), { n: 10, y: 0 }, { n: 20, y: Number.NaN }]).points).toBe(5);
    expect(() => fitGrowth([{ n: 100, y: 1 }])).toThrow(RangeError);
  });

  it('prefers n over n log n under small noise', () => {
    const noise = [1.03, 0.97, 1.02, 0.98, 1.01];
    expect(fitGrowth(SIZES.map((n, i) => ({ n, y: 0.5 * n * noise[i]! }))).model).toBe('n');
  });
});

describe('fitGrowthGroups', () => {
  it('fits one shape to rows of different scale', () => {
    const rows = [1, 10, 100].map((k) => series((n) => k * n * n));
    const fit = fitGrowthGroups(rows);
    expect(fit.model).toBe('n^2');
    expect(fit.slope).toBeCloseTo(2, 9);
    expect(Number.isNaN(fit.logFactor)).toBe(true);
  });
});

describe('fitLinear and fitPower2', () => {
  it('gives the marginal cost per unit', () => {
    const f = fitLinear(series((n) => 300 + 20 * n));
    expect(f.perUnit).toBeCloseTo(20, 9);
    expect(f.intercept).toBeCloseTo(300, 6);
  });

  it('gives the exponent of each axis of a grid', () => {
    const pts = [100, 1000, 5000].flatMap((a) =>
      [1000, 10_000, 50_000].map((b) => ({ a, b, y: 2 * a * b ** -0.5 })),
    );
    const f = fitPower2(pts);
    expect(f.expA).toBeCloseTo(1, 6);
    expect(f.expB).toBeCloseTo(-0.5, 6);
    expect(f.r2).toBeCloseTo(1, 9);
  });
});
