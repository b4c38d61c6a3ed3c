// ward's capture rules: iptables mangle PREROUTING TPROXY into ward's listeners, the socket-match rule
// that keeps established flows on ward's transparent sockets, and the policy route that delivers marked
// packets locally. Everything lives in ward's own chains so install is atomic and removal is exact.
//
// Packet path in the node namespace (kernel Documentation/networking/tproxy.rst):
//   1. bypass mark → RETURN: packets of ward's own upstream sockets are never captured again.
//   2. -m socket --transparent → mark + ACCEPT: packets of connections ward already holds (its accepted
//      sockets and its source-preserving upstream sockets) are routed to the local stack.
//   3. SYN from a local pod CIDR → TPROXY :outbound.
//   4. SYN to a local pod CIDR, port 15008 (HBONE) → TPROXY :tunnel.
//   5. SYN to a local pod CIDR → TPROXY :inbound-plaintext.
//   ip rule fwmark <tproxyMark>/<mask> lookup <table>; table: local default dev lo.
// Only SYNs are diverted: packets of flows that predate ward's start keep their path instead of being
// reset, and packets of flows ward holds are matched by step 2.
import { execFileSync, spawnSync } from 'node:child_process';
import { type Cidr, type Family, formatCidr, parseCidr } from '../net/address.ts';
import { CaptureRulesError } from './errors.ts';

export interface CaptureSpec {
  readonly podCidrs: readonly string[];
  readonly tproxyMark: number;
  readonly bypassMark: number;
  readonly markMask: number;
  readonly routeTable: number;
  readonly rulePriority: number;
  readonly chainPrefix: string;
  readonly outboundPort: number;
  readonly inboundPlaintextPort: number;
  readonly inboundTunnelPort: number;
}

export type IptablesBackend = 'iptables-nft' | 'iptables-legacy';

/** The HBONE port on the wire (what a peer dials); ward's tunnel listener may listen elsewhere. */
export const HBONE_PORT = 15008;

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

export function chainNames(spec: Pick<CaptureSpec, 'chainPrefix'>): { prerouting: string; divert: string } {
  return { prerouting: `${spec.chainPrefix}_PREROUTING`, divert: `${spec.chainPrefix}_DIVERT` };
}

function cidrsOf(spec: CaptureSpec, family: Family): Cidr[] {
  return spec.podCidrs.map((c) => parseCidr(c)).filter((c) => c.family === family);
}

export function familiesOf(spec: CaptureSpec): Family[] {
  return ([4, 6] as const).filter((f) => cidrsOf(spec, f).length > 0);
}

/** The `iptables-restore --noflush` input for one family: ward's chains, created or replaced whole. */
export function renderChains(spec: CaptureSpec, family: Family): string {
  const { prerouting, divert } = chainNames(spec);
  const mark = `${hex(spec.tproxyMark)}/${hex(spec.markMask)}`;
  const onIp = family === 4 ? '0.0.0.0' : '::';
  const tproxy = (port: number) => `-j TPROXY --on-port ${port} --on-ip ${onIp} --tproxy-mark ${mark}`;
  const lines = [
    '*mangle',
    `:${prerouting} - [0:0]`,
    `:${divert} - [0:0]`,
    `-A ${prerouting} -m mark --mark ${hex(spec.bypassMark)}/${hex(spec.markMask)} -m comment --comment "ward: own upstream sockets" -j RETURN`,
    `-A ${prerouting} -p tcp -m socket --transparent -m comment --comment "ward: flows held by ward" -j ${divert}`,
  ];
  const cidrs = cidrsOf(spec, family).map(formatCidr);
  for (const c of cidrs) {
    lines.push(
      `-A ${prerouting} -s ${c} -p tcp -m tcp --syn -m comment --comment "ward: outbound" ${tproxy(spec.outboundPort)}`,
    );
  }
  for (const c of cidrs) {
    lines.push(
      `-A ${prerouting} -d ${c} -p tcp -m tcp --dport ${HBONE_PORT} --syn -m comment --comment "ward: inbound tunnel" ${tproxy(spec.inboundTunnelPort)}`,
    );
  }
  for (const c of cidrs) {
    lines.push(
      `-A ${prerouting} -d ${c} -p tcp -m tcp --syn -m comment --comment "ward: inbound plaintext" ${tproxy(spec.inboundPlaintextPort)}`,
    );
  }
  lines.push(`-A ${divert} -j MARK --set-xmark ${mark}`, `-A ${divert} -j ACCEPT`, 'COMMIT', '');
  return lines.join('\n');
}

/** The `ip` commands (argv after `ip`) that install the policy route for one family. */
export function renderRouteCommands(spec: CaptureSpec, family: Family): string[][] {
  const f = family === 4 ? '-4' : '-6';
  return [
    [
      f,
      'rule',
      'add',
      'pref',
      String(spec.rulePriority),
      'fwmark',
      `${hex(spec.tproxyMark)}/${hex(spec.markMask)}`,
      'lookup',
      String(spec.routeTable),
    ],
    [
      f,
      'route',
      'replace',
      'local',
      family === 4 ? '0.0.0.0/0' : '::/0',
      'dev',
      'lo',
      'table',
      String(spec.routeTable),
    ],
  ];
}

/** Runs system commands; replaced in unit tests that only check what would run. */
export interface CommandRunner {
  /** Runs argv; returns exit status, stdout and stderr; never throws for a non-zero exit. */
  run(argv: readonly string[], input?: string): { status: number; stdout: string; stderr: string };
}

export const systemRunner: CommandRunner = {
  run(argv, input) {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new CaptureRulesError('empty command');
    const res = spawnSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    if (res.error !== undefined) {
      const code = (res.error as NodeJS.ErrnoException).code;
      return { status: 127, stdout: '', stderr: code === 'ENOENT' ? `${cmd}: not found` : res.error.message };
    }
    return { status: res.status ?? 1, stdout: res.stdout, stderr: res.stderr };
  },
};

function binary(backend: IptablesBackend, family: Family, tool: '' | '-save' | '-restore'): string {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  const flavour = backend === 'iptables-nft' ? 'nft' : 'legacy';
  return `${base}-${flavour}${tool}`;
}

/**
 * Which iptables the host uses, decided the way kube-proxy's and Cilium's iptables-wrapper decide:
 * kubelet's hint chains first, then whichever backend holds more rules; nft when both are empty.
 */
export function detectBackend(runner: CommandRunner = systemRunner): IptablesBackend {
  const count = (backend: IptablesBackend): { rules: number; hint: boolean } => {
    const res = runner.run([binary(backend, 4, '-save')]);
    if (res.status !== 0) return { rules: -1, hint: false };
    const lines = res.stdout.split('\n');
    return {
      rules: lines.filter((l) => l.startsWith('-A ')).length,
      hint: lines.some((l) => l.startsWith(':KUBE-IPTABLES-HINT') || l.startsWith(':KUBE-KUBELET-CANARY')),
    };
  };
  const nft = count('iptables-nft');
  const legacy = count('iptables-legacy');
  if (nft.hint !== legacy.hint) return nft.hint ? 'iptables-nft' : 'iptables-legacy';
  if (nft.rules < 0 && legacy.rules < 0) {
    throw new CaptureRulesError(
      'neither iptables-nft-save nor iptables-legacy-save runs: install the iptables package',
    );
  }
  return legacy.rules > nft.rules ? 'iptables-legacy' : 'iptables-nft';
}

function must(runner: CommandRunner, argv: readonly string[], input?: string): string {
  const res = runner.run(argv, input);
  if (res.status !== 0) {
    const hint = /Permission denied|not permitted/i.test(res.stderr) ? ' (needs CAP_NET_ADMIN)' : '';
    throw new CaptureRulesError(
      `${argv.join(' ')} failed${hint}: ${res.stderr.trim() || `exit ${res.status}`}`,
    );
  }
  return res.stdout;
}

function ipRuleExists(runner: CommandRunner, spec: CaptureSpec, family: Family): boolean {
  const out = runner.run([
    'ip',
    family === 4 ? '-4' : '-6',
    'rule',
    'show',
    'pref',
    String(spec.rulePriority),
  ]);
  return out.status === 0 && out.stdout.includes(`lookup ${spec.routeTable}`);
}

/**
 * Installs (or replaces) ward's rules. Running it twice leaves one copy: the chains are replaced whole,
 * the jump and the ip rule are added only when missing, the route is `replace`d.
 */
export function installRules(
  spec: CaptureSpec,
  backend: IptablesBackend,
  runner: CommandRunner = systemRunner,
): void {
  const { prerouting } = chainNames(spec);
  for (const family of familiesOf(spec)) {
    must(runner, [binary(backend, family, '-restore'), '--noflush', '--wait'], renderChains(spec, family));
    const jump = ['-t', 'mangle', '-C', 'PREROUTING', '-j', prerouting];
    if (runner.run([binary(backend, family, ''), '--wait', ...jump]).status !== 0) {
      must(runner, [
        binary(backend, family, ''),
        '--wait',
        '-t',
        'mangle',
        '-I',
        'PREROUTING',
        '1',
        '-j',
        prerouting,
      ]);
    }
    const [rule, route] = renderRouteCommands(spec, family);
    if (!ipRuleExists(runner, spec, family) && rule !== undefined) must(runner, ['ip', ...rule]);
    if (route !== undefined) must(runner, ['ip', ...route]);
  }
}

/** Removes every trace of ward's rules from one backend; absent pieces are fine. Returns what it removed. */
export function removeRules(
  spec: CaptureSpec,
  backend: IptablesBackend,
  runner: CommandRunner = systemRunner,
): string[] {
  const { prerouting, divert } = chainNames(spec);
  const removed: string[] = [];
  for (const family of [4, 6] as const) {
    const ipt = binary(backend, family, '');
    for (let i = 0; i < 64; i++) {
      const res = runner.run([ipt, '--wait', '-t', 'mangle', '-D', 'PREROUTING', '-j', prerouting]);
      if (res.status !== 0) break;
      removed.push(`${ipt} mangle PREROUTING -j ${prerouting}`);
    }
    for (const chain of [prerouting, divert]) {
      if (runner.run([ipt, '--wait', '-t', 'mangle', '-F', chain]).status === 0)
        removed.push(`${ipt} mangle chain ${chain}`);
    }
    for (const chain of [prerouting, divert]) runner.run([ipt, '--wait', '-t', 'mangle', '-X', chain]);
  }
  return removed;
}

/** Removes the policy routes of both families. */
export function removeRoutes(spec: CaptureSpec, runner: CommandRunner = systemRunner): string[] {
  const removed: string[] = [];
  for (const family of [4, 6] as const) {
    const f = family === 4 ? '-4' : '-6';
    for (let i = 0; i < 64 && ipRuleExists(runner, spec, family); i++) {
      if (runner.run(['ip', f, 'rule', 'del', 'pref', String(spec.rulePriority)]).status !== 0) break;
      removed.push(`ip ${f} rule pref ${spec.rulePriority}`);
    }
    const table = runner.run(['ip', f, 'route', 'show', 'table', String(spec.routeTable)]);
    if (table.status === 0 && table.stdout.trim() !== '') {
      runner.run(['ip', f, 'route', 'flush', 'table', String(spec.routeTable)]);
      removed.push(`ip ${f} route table ${spec.routeTable}`);
    }
  }
  return removed;
}

/** Removes ward's rules from both iptables backends (where each exists) and the policy routes. */
export function cleanAll(spec: CaptureSpec, runner: CommandRunner = systemRunner): string[] {
  return [
    ...removeRules(spec, 'iptables-nft', runner),
    ...removeRules(spec, 'iptables-legacy', runner),
    ...removeRoutes(spec, runner),
  ];
}

/** The mangle table as iptables-save prints it, for `ward rules show` and tests. */
export function showMangle(backend: IptablesBackend, family: Family = 4): string {
  return execFileSync(binary(backend, family, '-save'), ['-t', 'mangle'], { encoding: 'utf8' });
}
