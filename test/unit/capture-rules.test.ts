import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type CaptureSpec,
  type CommandRunner,
  detectBackend,
  installRules,
  removeRules,
  renderChains,
  renderRouteCommands,
} from '../../src/proxy/capture-rules.ts';

const spec: CaptureSpec = {
  podCidrs: ['198.19.1.0/24', 'fd00:19:1::/64'],
  tproxyMark: 0x10,
  bypassMark: 0x20,
  markMask: 0xf0,
  routeTable: 15001,
  rulePriority: 15001,
  chainPrefix: 'WARD',
  outboundPort: 15001,
  inboundPlaintextPort: 15006,
  inboundTunnelPort: 15008,
};

/** Compares with a reviewed golden file; UPDATE_GOLDEN=1 rewrites it (then review the diff). */
function golden(name: string, actual: string): void {
  const path = new URL(`./golden/${name}`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

describe('capture rules: generated text', () => {
  it('IPv4 chains match the reviewed golden text', () => {
    golden('capture-rules-v4.txt', renderChains(spec, 4));
  });

  it('IPv6 chains match the reviewed golden text', () => {
    golden('capture-rules-v6.txt', renderChains(spec, 6));
  });

  it('route commands for both families', () => {
    golden(
      'capture-routes.txt',
      `${[...renderRouteCommands(spec, 4), ...renderRouteCommands(spec, 6)]
        .map((a) => `ip ${a.join(' ')}`)
        .join('\n')}\n`,
    );
  });

  it('follows configured marks, ports, chain names and table', () => {
    const custom = {
      ...spec,
      podCidrs: ['10.244.3.0/24'],
      tproxyMark: 0x4,
      bypassMark: 0x8,
      markMask: 0xc,
      chainPrefix: 'EDGE',
      outboundPort: 25001,
    };
    const text = renderChains(custom, 4);
    expect(text).toContain(':EDGE_PREROUTING - [0:0]');
    expect(text).toContain('-A EDGE_PREROUTING -m mark --mark 0x8/0xc');
    expect(text).toContain(
      '-s 10.244.3.0/24 -p tcp -m tcp --syn -m comment --comment "ward: outbound" -j TPROXY --on-port 25001 --on-ip 0.0.0.0 --tproxy-mark 0x4/0xc',
    );
    expect(renderChains(custom, 6)).not.toContain('-s ');
  });

  it('captures only SYNs, and keeps the flows ward holds before any TPROXY rule', () => {
    const lines = renderChains(spec, 4).split('\n');
    const socketRule = lines.findIndex((l) => l.includes('-m socket --transparent'));
    const firstTproxy = lines.findIndex((l) => l.includes('-j TPROXY'));
    expect(socketRule).toBeGreaterThan(0);
    expect(socketRule).toBeLessThan(firstTproxy);
    for (const l of lines.filter((x) => x.includes('-j TPROXY'))) expect(l).toContain('--syn');
  });
});

/** Records commands and answers like a host where nothing of ward exists yet, then like one where it does. */
class FakeHost implements CommandRunner {
  readonly calls: string[] = [];
  jump = false;
  rule = false;
  saves: Record<string, string> = {};

  run(argv: readonly string[]) {
    const line = argv.join(' ');
    this.calls.push(line);
    const ok = { status: 0, stdout: '', stderr: '' };
    const no = { status: 1, stdout: '', stderr: 'not found' };
    if (line.includes(' -C PREROUTING')) return this.jump ? ok : no;
    if (line.includes(' -I PREROUTING')) {
      this.jump = true;
      return ok;
    }
    if (line.includes(' -D PREROUTING')) {
      if (!this.jump) return no;
      this.jump = false;
      return ok;
    }
    if (line.startsWith('ip -4 rule show'))
      return { ...ok, stdout: this.rule ? '15001:\tfrom all fwmark 0x10/0xf0 lookup 15001\n' : '' };
    if (line.startsWith('ip -4 rule add')) {
      this.rule = true;
      return ok;
    }
    const save = this.saves[argv[0] ?? ''];
    if (save !== undefined) return { ...ok, stdout: save };
    if (argv[0]?.endsWith('-save')) return { status: 127, stdout: '', stderr: 'not found' };
    return ok;
  }
}

describe('capture rules: install and remove', () => {
  it('installing twice adds the jump and the ip rule once', () => {
    const host = new FakeHost();
    const v4 = { ...spec, podCidrs: ['198.19.1.0/24'] };
    installRules(v4, 'iptables-nft', host);
    installRules(v4, 'iptables-nft', host);
    expect(host.calls.filter((c) => c.includes('-I PREROUTING'))).toHaveLength(1);
    expect(host.calls.filter((c) => c.startsWith('ip -4 rule add'))).toHaveLength(1);
    // The chains are replaced whole each time (restore with :CHAIN flushes it), never appended to.
    expect(host.calls.filter((c) => c.startsWith('iptables-nft-restore --noflush'))).toHaveLength(2);
  });

  it('removal deletes the jump before the chains', () => {
    const host = new FakeHost();
    host.jump = true;
    const removed = removeRules(spec, 'iptables-nft', host);
    expect(removed[0]).toBe('iptables-nft mangle PREROUTING -j WARD_PREROUTING');
    const del = host.calls.findIndex((c) => c.includes('-D PREROUTING'));
    const flush = host.calls.findIndex((c) => c.includes('-F WARD_PREROUTING'));
    const drop = host.calls.findIndex((c) => c.includes('-X WARD_PREROUTING'));
    expect(del).toBeLessThan(flush);
    expect(flush).toBeLessThan(drop);
  });

  it('a failing restore names the command and the need for CAP_NET_ADMIN', () => {
    const host: CommandRunner = {
      run: (argv) =>
        argv[0]?.endsWith('-restore')
          ? {
              status: 4,
              stdout: '',
              stderr:
                'iptables-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)',
            }
          : { status: 0, stdout: '', stderr: '' },
    };
    expect(() => installRules(spec, 'iptables-nft', host)).toThrow(
      /iptables-nft-restore --noflush --wait failed \(needs CAP_NET_ADMIN\)/,
    );
  });
});

describe('capture rules: backend detection (as kube-proxy and Cilium detect it)', () => {
  const hinted = '*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n';
  const rules = (n: number) => `*filter\n${'-A INPUT -j ACCEPT\n'.repeat(n)}COMMIT\n`;
  const cases: [string, Record<string, string>, string][] = [
    ['both empty → nft', { 'iptables-nft-save': '', 'iptables-legacy-save': '' }, 'iptables-nft'],
    [
      'kubelet hint in legacy wins over nft rules',
      { 'iptables-nft-save': rules(5), 'iptables-legacy-save': hinted },
      'iptables-legacy',
    ],
    [
      'kubelet hint in nft',
      { 'iptables-nft-save': hinted, 'iptables-legacy-save': rules(9) },
      'iptables-nft',
    ],
    [
      'more legacy rules → legacy',
      { 'iptables-nft-save': rules(1), 'iptables-legacy-save': rules(3) },
      'iptables-legacy',
    ],
    ['only nft available', { 'iptables-nft-save': rules(0) }, 'iptables-nft'],
    ['only legacy available', { 'iptables-legacy-save': rules(0) }, 'iptables-legacy'],
  ];
  for (const [what, saves, expected] of cases) {
    it(what, () => {
      const host = new FakeHost();
      host.saves = saves;
      expect(detectBackend(host)).toBe(expected);
    });
  }

  it('no iptables at all is a clear error', () => {
    expect(() => detectBackend(new FakeHost())).toThrow(/install the iptables package/);
  });
});
