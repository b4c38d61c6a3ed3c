import { describe, expect, it } from 'vitest';
import { ConfigError, envOverrideNames, parseConfigText } from '../../src/config/load.ts';

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

describe('config: defaults', () => {
  it('fills safe defaults around the one required field and freezes the result', () => {
    const c = parseConfigText(minimal, 'test.yaml');
    expect(c.listeners).toMatchObject({
      outboundPort: 15001,
      inboundPlaintextPort: 15006,
      inboundTunnelPort: 15008,
    });
    expect(c.capture).toMatchObject({
      tproxyMark: 0x10,
      bypassMark: 0x20,
      markMask: 0xf0,
      routeTable: 15001,
    });
    expect(c.admin).toMatchObject({ address: '127.0.0.1', port: 15000 });
    expect(c.proxy.workers).toBe('auto');
    expect(c.log).toEqual({ level: 'info', accessLog: true, flows: false });
    expect(Object.isFrozen(c.capture)).toBe(true);
    expect(Object.isFrozen(c.capture.podCidrs)).toBe(true);
  });

  it('reads durations in units and marks in hex', () => {
    const c = parseConfigText(
      `${minimal}  tproxyMark: "0x40"\n  markMask: 0xf0\nproxy:\n  idleTimeout: 10m\n  connectTimeout: 250ms\nshutdown:\n  drainTimeout: 1.5s\n`,
      'test.yaml',
    );
    expect(c.capture.tproxyMark).toBe(0x40);
    expect(c.proxy.idleTimeout).toBe(600_000);
    expect(c.proxy.connectTimeout).toBe(250);
    expect(c.shutdown.drainTimeout).toBe(1500);
  });

  it('an empty document fails only on the missing pod CIDRs', () => {
    expect(problemsOf('')).toEqual(['capture: Invalid input: expected object, received undefined']);
  });
});

describe('config: each bad input gets its field path and reason', () => {
  const cases: [string, string, string][] = [
    [
      'a pod CIDR with a bad prefix',
      'capture:\n  podCidrs: [198.19.1.0/33]\n',
      'capture.podCidrs.0: not a CIDR (prefix must be 0-32): 198.19.1.0/33',
    ],
    [
      'a pod CIDR that is no address',
      'capture:\n  podCidrs: [pods]\n',
      'capture.podCidrs.0: not a CIDR (bad address): pods',
    ],
    [
      'no pod CIDRs',
      'capture:\n  podCidrs: []\n',
      'capture.podCidrs: at least one pod CIDR of this node is needed',
    ],
    ['an unknown field', `${minimal}  bogus: 1\n`, 'capture.bogus: unknown field'],
    ['an unknown section', `${minimal}sidecar: {}\n`, 'sidecar: unknown field'],
    [
      'zero workers',
      `${minimal}proxy:\n  workers: 0\n`,
      'proxy.workers: Too small: expected number to be >=1',
    ],
    [
      'a bad duration',
      `${minimal}proxy:\n  idleTimeout: 5x\n`,
      'proxy.idleTimeout: must be a duration like 500ms, 5s, 10m, 1h or milliseconds (got "5x")',
    ],
    [
      'a port out of range',
      `${minimal}listeners:\n  outboundPort: 70000\n`,
      'listeners.outboundPort: Too big: expected number to be <=65535',
    ],
    [
      'two listeners on one port',
      `${minimal}listeners:\n  inboundPlaintextPort: 15001\n`,
      'listeners.inboundPlaintextPort: port 15001 is already used by listeners.outboundPort',
    ],
    [
      'the admin port on a listener port',
      `${minimal}admin:\n  port: 15006\n`,
      'admin.port: port 15006 is already used by listeners.inboundPlaintextPort',
    ],
    [
      'an admin address off loopback',
      `${minimal}admin:\n  address: 0.0.0.0\n`,
      'admin.address: Invalid option: expected one of "127.0.0.1"|"::1"',
    ],
    [
      'a mark outside the mask',
      `${minimal}  tproxyMark: 0x100\n`,
      'capture.tproxyMark: 0x100 has bits outside markMask 0xf0',
    ],
    [
      'equal marks',
      `${minimal}  bypassMark: 0x10\n`,
      'capture.bypassMark: must differ from capture.tproxyMark',
    ],
    [
      'a mark that is not a number',
      `${minimal}  tproxyMark: lots\n`,
      'capture.tproxyMark: must be an integer 0..0xffffffff (got "lots")',
    ],
    [
      'a lower-case chain prefix',
      `${minimal}  chainPrefix: ward\n`,
      'capture.chainPrefix: must be 1-16 upper-case letters, digits or _ and start with a letter',
    ],
    [
      'an unknown backend',
      `${minimal}  backend: ebpf\n`,
      'capture.backend: Invalid option: expected one of "auto"|"iptables-nft"|"iptables-legacy"',
    ],
    [
      'a bad log level',
      `${minimal}log:\n  level: loud\n`,
      'log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"',
    ],
    [
      'flow lines asked for with a word',
      `${minimal}log:\n  flows: yes please\n`,
      'log.flows: Invalid input: expected boolean, received string',
    ],
    ['a list as the document', '- a\n- b\n', '(document): the configuration must be a mapping of sections'],
    [
      'broken YAML',
      'capture: [\n',
      '(document): YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 2, column 1:',
    ],
  ];
  for (const [what, text, expected] of cases) {
    it(what, () => {
      const problems = problemsOf(text).map((p) => (p.startsWith(': ') ? `(document)${p}` : p));
      expect(problems).toContain(expected);
    });
  }
});

describe('config: environment overrides', () => {
  it('names one variable per field', () => {
    const names = [...envOverrideNames().keys()];
    expect(names).toContain('WARD_PROXY_WORKERS');
    expect(names).toContain('WARD_CAPTURE_POD_CIDRS');
    expect(names).toContain('WARD_LISTENERS_INBOUND_PLAINTEXT_PORT');
  });

  it('overrides the file, lists comma-separated', () => {
    const c = parseConfigText(minimal, 'test.yaml', {
      WARD_PROXY_WORKERS: '3',
      WARD_CAPTURE_POD_CIDRS: '198.19.7.0/24, fd00::/64',
      WARD_LOG_LEVEL: 'debug',
      WARD_PROXY_CONNECT_TIMEOUT: '2s',
    });
    expect(c.proxy.workers).toBe(3);
    expect(c.capture.podCidrs).toEqual(['198.19.7.0/24', 'fd00::/64']);
    expect(c.log.level).toBe('debug');
    expect(c.proxy.connectTimeout).toBe(2000);
  });

  it('a bad override names the variable', () => {
    expect(problemsOf(minimal, { WARD_PROXY_WORKRS: '2' })).toEqual([
      'env WARD_PROXY_WORKRS: no such configuration field',
    ]);
    expect(problemsOf(minimal, { WARD_PROXY_WORKERS: 'many' })).toEqual([
      'proxy.workers: must be "auto" or a number 1-256',
    ]);
  });

  it('ignores variables of other programs that share the prefix loosely', () => {
    expect(problemsOf(minimal, { WARD_LAB_NAME: 'x', WARDEN: 'y' })).toEqual([]);
  });
});
