// docs/vm.md followed literally: every fenced block marked `vm-guide:<a|b|both>[:start]` runs, in the
// guide's order, inside two network namespaces that stand in for the VMs (underlay 192.168.10.1/.2),
// each with its own /etc/ward (a private bind mount). `:start` blocks are long-running (ward, the
// server) and are started in the background. The unmarked steps are done here: the install (the repo's
// bin/ward on PATH) and the copy of the server's SVID from VM a to VM b.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNamespace, deleteNamespace, ipIn, listNamespaces } from '../../src/lab/netns.ts';
import { labName, until } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const GUIDE = readFileSync(join(ROOT, 'docs/vm.md'), 'utf8');
const WORKLOAD_NAMESPACES = ['client', 'server']; // the guide's own names (global, like on a VM)

interface Block {
  readonly vms: ('a' | 'b')[];
  readonly start: boolean;
  readonly script: string;
}

function guideBlocks(): Block[] {
  const out: Block[] = [];
  for (const m of GUIDE.matchAll(/^```sh vm-guide:(a|b|both)(:start)?\n([\s\S]*?)^```$/gm)) {
    out.push({
      vms: m[1] === 'both' ? ['a', 'b'] : [m[1] as 'a' | 'b'],
      start: m[2] !== undefined,
      script: m[3]!,
    });
  }
  return out;
}

const name = labName();
const ns = { a: `ward-${name}-a`, b: `ward-${name}-b` };
const dir = mkdtempSync(join(tmpdir(), 'ward-vmguide-'));
const etc = { a: join(dir, 'a-etc-ward'), b: join(dir, 'b-etc-ward') };
const bin = join(dir, 'bin');
let createdEtcWard = false;
const background: { vm: string; child: ChildProcess; out: () => string }[] = [];

/** Runs a script as root "on" a VM: its network namespace, its /etc/ward, the host's /run/netns. */
function onVm(vm: 'a' | 'b', script: string, detached = false) {
  const argv = [
    `--net=/run/netns/${ns[vm]}`,
    'unshare',
    '--mount',
    '--propagation',
    'unchanged',
    'sh',
    '-euc',
    // A :start block is one command; exec it so that signals reach it (ward drains on SIGTERM).
    `mount --bind ${etc[vm]} /etc/ward\n${detached ? `exec ${script.trim()}` : script}`,
  ];
  const env = { ...process.env, PATH: `${bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };
  if (detached) return { child: spawn('nsenter', argv, { env, stdio: ['ignore', 'pipe', 'pipe'] }) };
  return { res: spawnSync('nsenter', argv, { env, encoding: 'utf8', timeout: 60_000 }) };
}

beforeAll(() => {
  for (const n of WORKLOAD_NAMESPACES) {
    if (listNamespaces().includes(n))
      throw new Error(`network namespace ${n} exists already; the guide creates it`);
  }
  if (!existsSync('/etc/ward')) {
    mkdirSync('/etc/ward');
    createdEtcWard = true;
  }
  mkdirSync(bin);
  symlinkSync(join(ROOT, 'bin/ward'), join(bin, 'ward'));
  for (const vm of ['a', 'b'] as const) {
    mkdirSync(join(etc[vm], 'policies'), { recursive: true });
    mkdirSync(join(etc[vm], 'svids'), { recursive: true });
    addNamespace(ns[vm]);
  }
  ipIn(ns.a, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.b);
  ipIn(ns.a, 'addr', 'add', '192.168.10.1/24', 'dev', 'eth0');
  ipIn(ns.b, 'addr', 'add', '192.168.10.2/24', 'dev', 'eth0');
  ipIn(ns.a, 'link', 'set', 'eth0', 'up');
  ipIn(ns.b, 'link', 'set', 'eth0', 'up');
});

afterAll(async () => {
  for (const b of background.reverse()) {
    b.child.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(() => {
        b.child.kill('SIGKILL');
        r(undefined);
      }, 15_000);
      b.child.once('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
  }
  for (const n of [...WORKLOAD_NAMESPACES, ns.a, ns.b]) deleteNamespace(n);
  if (createdEtcWard) rmdirSync('/etc/ward');
  rmSync(dir, { recursive: true, force: true });
});

describe('docs/vm.md, followed literally in two VM namespaces', () => {
  const blocks = guideBlocks();

  it('the guide has test-marked blocks for both VMs, the start of ward and a request', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
    expect(blocks.some((b) => b.start && b.script.includes('ward run --config /etc/ward/ward.yaml'))).toBe(
      true,
    );
    expect(blocks.at(-1)?.script).toContain('curl');
    for (const b of blocks.filter((x) => x.start)) expect(b.script.trim().split('\n')).toHaveLength(1);
  });

  it('every step succeeds, ward starts on both VMs, and the client reaches the server through both wards', async () => {
    let lastOutput = '';
    for (const [i, block] of blocks.entries()) {
      for (const vm of block.vms) {
        if (block.start) {
          const { child } = onVm(vm, block.script, true) as { child: ChildProcess };
          let out = '';
          child.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
          });
          child.stderr?.on('data', (d: Buffer) => {
            out += d.toString();
          });
          const entry = { vm, child, out: () => out };
          background.push(entry);
          if (block.script.includes('ward run')) {
            await until(
              `ward ready on ${vm}`,
              () => out.includes('"msg":"ward ready"') || (child.exitCode !== null && 'exited'),
              30_000,
            );
            expect(out, `ward on ${vm} exited:\n${out}`).toContain('"msg":"ward ready"');
          } else {
            await new Promise((r) => setTimeout(r, 1000));
            expect(child.exitCode, `block ${i} on ${vm}: ${out}`).toBeNull();
          }
          continue;
        }
        const { res } = onVm(vm, block.script) as { res: ReturnType<typeof spawnSync> };
        expect(res.status, `block ${i} on ${vm} failed:\n${block.script}\n${res.stdout}${res.stderr}`).toBe(
          0,
        );
        lastOutput = String(res.stdout);
      }
      // The unmarked copy step of section 5: the server's SVID goes from VM a to VM b.
      if (block.script.includes('--out /etc/ward/server-svid')) {
        cpSync(join(etc.a, 'server-svid'), join(etc.b, 'svids'), { recursive: true });
      }
    }
    expect(lastOutput.trim()).toBe('200');
    const access = (vm: 'a' | 'b') =>
      (background.find((b) => b.vm === vm && b.out().includes('ward ready'))?.out() ?? '')
        .split('\n')
        .filter((l) => l.includes('"component":"access"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const a = await until('access line on a', () =>
      access('a').find((l) => String(l.dst) === '10.10.2.10:8080'),
    );
    const b = await until('access line on b', () =>
      access('b').find((l) => String(l.dst) === '10.10.2.10:8080'),
    );
    // Carried in mutual TLS: each side proved the other's SPIFFE ID, and VM b's policy decided it.
    expect(a).toMatchObject({
      direction: 'outbound',
      mtls: true,
      tunnel: '10.10.2.10:15008',
      srcId: 'spiffe://spiffe.cilium/identity/1001',
      peer: 'spiffe://spiffe.cilium/identity/1002',
      reason: 'completed',
    });
    expect(b).toMatchObject({
      direction: 'inbound',
      tunnel: true,
      peer: 'spiffe://spiffe.cilium/identity/1001',
      policies: ['CiliumNetworkPolicy/default/server-from-client'],
      reason: 'completed',
    });
    expect(String(a.src)).toMatch(/^10\.10\.1\.10:/);
    // ward stops cleanly on SIGTERM and removes its rules, as under systemd.
    for (const w of background.filter((x) => x.out().includes('ward ready'))) {
      w.child.kill('SIGTERM');
      await until(`ward on ${w.vm} exit`, () => w.child.exitCode !== null || undefined, 30_000);
      expect(w.child.exitCode).toBe(0);
      const rules = onVm(w.vm as 'a' | 'b', 'iptables-save -t mangle; ip rule show') as {
        res: ReturnType<typeof spawnSync>;
      };
      expect(String(rules.res.stdout)).not.toMatch(/WARD_|lookup 15001/);
    }
  });
});
