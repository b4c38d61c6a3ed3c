import { describe, expect, it } from 'vitest';
import { buildConfig, ConfigError } from '../../../src/config/load.ts';

const base = { capture: { podCidrs: ['10.0.0.0/24'] } };

function problems(doc: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    buildConfig({ ...base, ...doc }, 'test.yaml', env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('the observe section', () => {
  it('defaults to ztunnel’s ports: metrics 15020, readiness 15021, on every address', () => {
    expect(buildConfig(base, 'test.yaml').observe).toEqual({
      metricsEnabled: true,
      metricsAddress: '0.0.0.0',
      metricsPort: 15020,
      readinessEnabled: true,
      readinessAddress: '0.0.0.0',
      readinessPort: 15021,
      livenessMaxLag: 5000,
      livenessWindow: 30_000,
    });
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    [
      'metrics on a listener port',
      { observe: { metricsPort: 15001 } },
      ['observe.metricsPort: port 15001 is already used by listeners.outboundPort'],
    ],
    [
      'readiness on the admin port',
      { observe: { readinessPort: 15000 } },
      ['observe.readinessPort: port 15000 is already used by admin.port'],
    ],
    [
      'metrics and readiness together',
      { observe: { metricsPort: 9000, readinessPort: 9000 } },
      ['observe.readinessPort: port 9000 is already used by observe.metricsPort'],
    ],
    ['a disabled server takes no port', { observe: { metricsEnabled: false, metricsPort: 15001 } }, []],
    [
      'a lag limit below timer jitter',
      { observe: { livenessMaxLag: '50ms' } },
      ['observe.livenessMaxLag: must be at least 100ms (timer jitter alone can reach it)'],
    ],
    [
      'a window shorter than the lag',
      { observe: { livenessMaxLag: '10s', livenessWindow: '5s' } },
      ['observe.livenessWindow: must be at least observe.livenessMaxLag'],
    ],
    ['an unknown field', { observe: { metricPort: 1 } }, ['observe.metricPort: unknown field']],
  ])('%s', (_name, doc, want) => {
    expect(problems(doc)).toEqual(want);
  });

  it('takes WARD_OBSERVE_* overrides', () => {
    const c = buildConfig(base, 'test.yaml', {
      WARD_OBSERVE_METRICS_PORT: '9102',
      WARD_OBSERVE_LIVENESS_MAX_LAG: '2s',
    });
    expect(c.observe.metricsPort).toBe(9102);
    expect(c.observe.livenessMaxLag).toBe(2000);
  });
});
