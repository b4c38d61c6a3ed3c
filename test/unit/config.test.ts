import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../src/config/load.ts';

const minimal = 'capture:\n  podCidrs: [198.19.1.0/24]\n';

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, 'test.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  return [];
}

describe('config', () => {
  it('fills safe defaults around the one required field', () => {
    const c = parseConfigText(minimal, 'test.yaml');
    expect(c.listeners.outboundPort).toBe(15001);
    expect(c.capture.markMask).toBe(0xf0);
    expect(Object.isFrozen(c.capture)).toBe(true);
  });
});
