import { describe, expect, it } from 'vitest';
import { LoopMonitor } from '../../../src/observe/loop-monitor.ts';

describe('the event-loop monitor', () => {
  function monitor() {
    let t = 1_000_000;
    const m = new LoopMonitor({ intervalMs: 250, maxLagMs: 1000, windowMs: 10_000, now: () => t });
    m.start();
    m.stop(); // ticks are driven by hand below; start() only set the first expectation
    return { m, advance: (ms: number) => (t += ms) };
  }

  it('is live while ticks come on time, and records the lag of the last one', () => {
    const { m, advance } = monitor();
    for (let i = 0; i < 8; i++) {
      advance(260);
      m.tick();
    }
    expect(m.lastLagSeconds).toBeCloseTo(0.01);
    expect(m.status()).toMatchObject({ live: true, thresholdMs: 1000 });
  });

  it('fails after a stall longer than the limit, until the stall is older than the window', () => {
    const { m, advance } = monitor();
    advance(250 + 3000); // the tick came 3 s late: the loop was blocked
    m.tick();
    expect(m.status()).toMatchObject({ live: false, maxLagMs: 3000 });
    expect(m.status().lastStallAt).toBeDefined();
    for (let i = 0; i < 20; i++) {
      advance(250);
      m.tick();
    }
    expect(m.status().live).toBe(false); // 5 s later: still within the window
    for (let i = 0; i < 30; i++) {
      advance(250);
      m.tick();
    }
    expect(m.status()).toMatchObject({ live: true, maxLagMs: 0 });
  });

  it('a lag at the limit is no stall', () => {
    const { m, advance } = monitor();
    advance(1250);
    m.tick();
    expect(m.status().live).toBe(true);
  });
});
