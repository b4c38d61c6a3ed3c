// How a cost grows with scale, fitted from measurements, two ways:
//   - the log-log slope: least squares of ln y on ln n, y ∝ n^slope over the measured range (the number to
//     extrapolate a power law with);
//   - the named growth: which of constant, log n, n, n log n, n², 1/n fits best as y = c·f(n), by least
//     squares on relative error (every point weighs by its own size). A fixed part, y = a + c·f(n) with
//     a, c ≥ 0, is named only when the pure models misfit (relative RMS above 5 %), the fixed part halves
//     that residual and is at least a tenth of the smallest size's value, and every series has four points
//     or more (with two parameters, three noisy points fit almost any shape). It matters: 8 ms + 0.03 ms per
//     policy has a log-log slope near 0.5 over 100..1,000, but grows linearly.
// Series may come as groups (the rows of a grid) that share a shape but not a scale: each group gets its
// own a and c, and the slope is the pooled within-group slope.

export type GrowthModel = '1' | 'log n' | 'n' | 'n log n' | 'n^2' | '1/n';

/** In order of preference: on a tie the earlier (simpler) model is named. */
export const GROWTH_MODELS: Readonly<Record<GrowthModel, { label: string; f: (n: number) => number }>> = {
  '1': { label: 'constant', f: () => 1 },
  'log n': { label: 'logarithmic (log n)', f: (n) => Math.log(n) },
  n: { label: 'linear (n)', f: (n) => n },
  'n log n': { label: 'n log n', f: (n) => n * Math.log(n) },
  'n^2': { label: 'quadratic (n²)', f: (n) => n * n },
  '1/n': { label: 'decreasing (1/n)', f: (n) => 1 / n },
};

export interface Point {
  readonly n: number;
  readonly y: number;
}

export interface GrowthFit {
  /** y ∝ n^slope over the measured range (least squares on log-log). */
  readonly slope: number;
  /** ln of the power law's factor: y ≈ exp(logFactor)·n^slope (single series only; NaN for groups). */
  readonly logFactor: number;
  /** R² of the log-log line. */
  readonly r2: number;
  readonly model: GrowthModel;
  readonly label: string;
  /** The best model's fixed part a and factor c (single series only; NaN for groups). */
  readonly fixed: number;
  readonly factor: number;
  /** Whether the named model has a fixed part a (see the rules above). */
  readonly withFixedPart: boolean;
  /** The fixed part's share of the smallest size's value (median over groups): how much is not growth. */
  readonly fixedShare: number;
  /** RMS of the relative residuals (y − a − c·f(n)) / y of the best model, and of every model. */
  readonly relRms: number;
  readonly relRmsByModel: Readonly<Record<GrowthModel, number>>;
  /** Points used (finite, n > 1, y > 0). */
  readonly points: number;
}

const usable = (ps: readonly Point[]): Point[] =>
  ps.filter((p) => Number.isFinite(p.n) && Number.isFinite(p.y) && p.n > 1 && p.y > 0);

/** Fits one series. Needs at least two points with n > 1 and y > 0 (RangeError otherwise). */
export function fitGrowth(points: readonly Point[]): GrowthFit {
  return fitGrowthGroups([points]);
}

interface ModelFit {
  readonly a: number;
  readonly c: number;
  readonly ss: number;
}

/**
 * Least squares of Σ ((y − a − c·f) / y)² = Σ (1 − a·u − c·v)² with u = 1/y, v = f/y, a, c ≥ 0; with
 * `fixed` false, a = 0.
 */
function fitModel(
  g: readonly Point[],
  f: (n: number) => number,
  constant: boolean,
  fixed: boolean,
): ModelFit {
  const u = g.map((p) => 1 / p.y);
  const v = g.map((p) => f(p.n) / p.y);
  const ss = (a: number, c: number): number => u.reduce((s, ui, i) => s + (1 - a * ui - c * v[i]!) ** 2, 0);
  const only = (w: readonly number[]): number => {
    const den = w.reduce((s, x) => s + x * x, 0);
    return den === 0 ? 0 : Math.max(0, w.reduce((s, x) => s + x, 0) / den);
  };
  if (constant) {
    const a = only(u);
    return { a, c: 0, ss: ss(a, 0) };
  }
  if (!fixed) {
    const c = only(v);
    return { a: 0, c, ss: ss(0, c) };
  }
  let suu = 0;
  let suv = 0;
  let svv = 0;
  let su = 0;
  let sv = 0;
  u.forEach((ui, i) => {
    const vi = v[i]!;
    suu += ui * ui;
    suv += ui * vi;
    svv += vi * vi;
    su += ui;
    sv += vi;
  });
  const det = suu * svv - suv * suv;
  let a = det === 0 ? Number.NaN : (su * svv - sv * suv) / det;
  let c = det === 0 ? Number.NaN : (suu * sv - suv * su) / det;
  if (!(a >= 0 && c >= 0)) {
    // On the boundary: the better of "no fixed part" and "nothing but the fixed part".
    const c0 = only(v);
    const a0 = only(u);
    [a, c] = ss(0, c0) <= ss(a0, 0) ? [0, c0] : [a0, 0];
  }
  return { a, c, ss: ss(a, c) };
}

/** Fits several series that share a shape but not a scale. */
export function fitGrowthGroups(groups: readonly (readonly Point[])[]): GrowthFit {
  const gs = groups.map(usable).filter((g) => g.length >= 2);
  const total = gs.reduce((s, g) => s + g.length, 0);
  if (total < 2) throw new RangeError('a growth fit needs at least two points of one series');
  const fixedAllowed = gs.every((g) => g.length >= 4);
  // Slope: pooled within-group regression of ln y on ln n (each group centred on its own means).
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  let single = { mx: Number.NaN, my: Number.NaN };
  for (const g of gs) {
    const xs = g.map((p) => Math.log(p.n));
    const ys = g.map((p) => Math.log(p.y));
    const mx = mean(xs);
    const my = mean(ys);
    single = { mx, my };
    xs.forEach((x, i) => {
      const dy = (ys[i] ?? 0) - my;
      sxy += (x - mx) * dy;
      sxx += (x - mx) ** 2;
      syy += dy * dy;
    });
  }
  const slope = sxx === 0 ? Number.NaN : sxy / sxx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  const models = Object.keys(GROWTH_MODELS) as GrowthModel[];
  const fitAll = (fixed: boolean) => {
    const byModel = {} as Record<GrowthModel, { fits: ModelFit[]; relRms: number; share: number }>;
    let best: GrowthModel = '1';
    for (const m of models) {
      const fits = gs.map((g) => fitModel(g, GROWTH_MODELS[m].f, m === '1', fixed));
      const relRms = Math.sqrt(fits.reduce((s, f) => s + f.ss, 0) / total);
      // The fixed part's share of each group's smallest-size value; the median over groups.
      const shares = gs
        .map((g, i) => (fits[i]?.a ?? 0) / g.reduce((lo, p) => (p.n < lo.n ? p : lo)).y)
        .sort((x, y) => x - y);
      byModel[m] = {
        fits,
        relRms,
        share: m === '1' ? 1 : (shares[Math.floor((shares.length - 1) / 2)] ?? 0),
      };
      // Strictly better by a margin only, so exact data and noise-free ties keep the simpler model.
      if (relRms < byModel[best].relRms - 1e-9) best = m;
    }
    return { byModel, best };
  };
  const pure = fitAll(false);
  let chosen = pure;
  let withFixedPart = false;
  if (fixedAllowed && pure.byModel[pure.best].relRms > 0.05) {
    const fixed = fitAll(true);
    const f = fixed.byModel[fixed.best];
    if (fixed.best !== '1' && f.relRms < 0.5 * pure.byModel[pure.best].relRms && f.share >= 0.1) {
      chosen = fixed;
      withFixedPart = true;
    }
  }
  const best = chosen.best;
  const relRmsByModel = Object.fromEntries(models.map((m) => [m, chosen.byModel[m].relRms])) as Record<
    GrowthModel,
    number
  >;
  const one = gs.length === 1 ? chosen.byModel[best].fits[0] : undefined;
  const fixedShare = withFixedPart ? chosen.byModel[best].share : 0;
  return {
    slope,
    logFactor: gs.length === 1 ? single.my - slope * single.mx : Number.NaN,
    r2,
    model: best,
    label: GROWTH_MODELS[best].label,
    fixed: one?.a ?? Number.NaN,
    factor: one?.c ?? Number.NaN,
    withFixedPart,
    fixedShare,
    relRms: relRmsByModel[best],
    relRmsByModel,
    points: total,
  };
}

/** The power law's value at n (an extrapolation outside the measured range). */
export function predictPower(fit: GrowthFit, n: number): number {
  return Math.exp(fit.logFactor + fit.slope * Math.log(n));
}

/** The named model's value at n: a + c·f(n) (single series only). */
export function predictModel(fit: GrowthFit, n: number): number {
  return fit.fixed + fit.factor * GROWTH_MODELS[fit.model].f(n);
}

export interface LinearFit {
  /** y ≈ intercept + perUnit · n */
  readonly intercept: number;
  readonly perUnit: number;
  readonly r2: number;
}

/** Ordinary least squares of y on n: the marginal cost per unit (a memory figure's per-item cost). */
export function fitLinear(points: readonly Point[]): LinearFit {
  const ps = points.filter((p) => Number.isFinite(p.n) && Number.isFinite(p.y));
  if (ps.length < 2) throw new RangeError('a linear fit needs at least two points');
  const mx = mean(ps.map((p) => p.n));
  const my = mean(ps.map((p) => p.y));
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (const p of ps) {
    sxy += (p.n - mx) * (p.y - my);
    sxx += (p.n - mx) ** 2;
    syy += (p.y - my) ** 2;
  }
  const perUnit = sxx === 0 ? Number.NaN : sxy / sxx;
  return { intercept: my - perUnit * mx, perUnit, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

export interface Power2Fit {
  /** y ≈ exp(logFactor) · a^expA · b^expB */
  readonly expA: number;
  readonly expB: number;
  readonly logFactor: number;
  readonly r2: number;
}

/** Least squares of ln y = k + α ln a + β ln b: how a cost grows along both axes of a grid. */
export function fitPower2(points: readonly { a: number; b: number; y: number }[]): Power2Fit {
  const ps = points.filter((p) => p.a > 0 && p.b > 0 && p.y > 0 && Number.isFinite(p.y));
  if (ps.length < 3) throw new RangeError('a two-axis fit needs at least three points');
  const X = ps.map((p) => [1, Math.log(p.a), Math.log(p.b)] as const);
  const Y = ps.map((p) => Math.log(p.y));
  // Normal equations XᵀX β = XᵀY, solved by Cramer's rule (3×3).
  const m = [0, 1, 2].map((i) => [0, 1, 2].map((j) => X.reduce((s, r) => s + r[i]! * r[j]!, 0)));
  const v = [0, 1, 2].map((i) => X.reduce((s, r, k) => s + r[i]! * Y[k]!, 0));
  const det3 = (a: number[][]): number =>
    a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) -
    a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) +
    a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det3(m);
  if (Math.abs(d) < 1e-9) throw new RangeError('a two-axis fit needs points spread along both axes');
  const col = (c: number): number => det3(m.map((row, i) => row.map((x, j) => (j === c ? v[i]! : x)))) / d;
  const [k, alpha, beta] = [col(0), col(1), col(2)];
  const my = mean(Y);
  let ssRes = 0;
  let ssTot = 0;
  X.forEach((r, i) => {
    ssRes += (Y[i]! - (k + alpha * r[1] + beta * r[2])) ** 2;
    ssTot += (Y[i]! - my) ** 2;
  });
  return { expA: alpha, expB: beta, logFactor: k, r2: ssTot === 0 ? 1 : 1 - ssRes / ssTot };
}

/** "linear (n) + fixed part (40 % at the smallest size), log-log slope 0.52": what the reports print. */
export function describeGrowth(fit: GrowthFit): string {
  const fixed = fit.withFixedPart
    ? ` + fixed part (${Math.round(fit.fixedShare * 100)} % at the smallest size)`
    : '';
  return `${fit.label}${fixed}, log-log slope ${fit.slope.toFixed(2)}`;
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}
