// What ward checks at start: the kernel settings that broke TPROXY for Istio users (rp_filter,
// src_valid_mark) are tried one by one — ward either works or refuses with an explanation — and
// RLIMIT_NOFILE is raised to what proxy.maxConnections needs, or ward refuses saying why.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { Lab, type LabNode } from '../../src/lab/lab.ts';
import { WARD_MAIN } from '../../src/lab/ward-entry.ts';
import { nofileWanted } from '../../src/proxy/rlimit.ts';
import { getNofileLimit } from '../../src/proxy/socket-options.ts';
import { labName, peer, servePeer } from './helpers.ts';

let lab: Lab;
let server: { stop: () => void };
let to: string;

function setAll(node: LabNode, key: string, value: string): void {
  for (const i of node.exec(['ls', '/proc/sys/net/ipv4/conf']).split('\n').filter(Boolean)) {
    node.exec(['sysctl', '-qw', `net.ipv4.conf.${i}.${key}=${value}`]);
  }
}

beforeAll(async () => {
  lab = await Lab.create({
    name: labName(),
    nodes: [
      { name: 'a', pods: ['client'] },
      { name: 'b', pods: ['server'] },
    ],
    startWards: false,
  });
  server = await servePeer(lab.pod('server'), ['serve', '--port', '8080']);
  to = `${lab.pod('server').ip}:8080`;
}, 60_000);

afterAll(async () => {
  server?.stop();
  await lab?.destroy();
});

describe('sysctls that break TPROXY', () => {
  for (const rp of ['1', '2', '0']) {
    it(`rp_filter=${rp} (src_valid_mark=0): ward starts and captured traffic flows`, async () => {
      const a = lab.node('a');
      setAll(a, 'src_valid_mark', '0');
      setAll(a, 'rp_filter', rp);
      const ward = await a.startWard();
      try {
        const res = await peer(lab.pod('client'), ['send', '--to', to, '--bytes', '10000'], 20_000);
        expect(res).toMatchObject({ ok: true });
        expect(ward.accessLog().some((l) => l.reason === 'completed')).toBe(true);
      } finally {
        await ward.stop();
      }
    });
  }

  for (const where of ['all', 'eth0', 'default']) {
    it(`src_valid_mark=1 on ${where}: ward refuses to start, naming the setting and why`, async () => {
      const a = lab.node('a');
      setAll(a, 'src_valid_mark', '0');
      a.exec(['sysctl', '-qw', `net.ipv4.conf.${where}.src_valid_mark=1`]);
      try {
        const ward = await a.startWard({}, { wait: false });
        const code = await Promise.race([
          ward.exited,
          new Promise((r) => setTimeout(() => r('running'), 20_000)),
        ]);
        expect(code).toBe(1);
        const err = ward.stderr();
        expect(err).toContain('PXY_SYSCTL');
        expect(err).toContain(`net.ipv4.conf.${where}.src_valid_mark=1`);
        expect(err).toContain('martian');
        // Nothing was installed.
        expect(a.ruleset()).not.toContain('WARD_PREROUTING');
      } finally {
        setAll(a, 'src_valid_mark', '0');
      }
    });
  }

  it('and with src_valid_mark=1 traffic would indeed hang: the reason the check exists', async () => {
    const a = lab.node('a');
    const ward = await a.startWard();
    try {
      a.exec(['sysctl', '-qw', 'net.ipv4.conf.all.src_valid_mark=1']);
      const res = await peer(lab.pod('client'), ['probe', '--to', to, '--timeout', '3000'], 20_000);
      expect(res.outcome).toBe('timeout');
      a.exec(['sysctl', '-qw', 'net.ipv4.conf.all.src_valid_mark=0']);
      const ok = await peer(lab.pod('client'), ['send', '--to', to, '--bytes', '1000'], 20_000);
      expect(ok).toMatchObject({ ok: true });
    } finally {
      setAll(a, 'src_valid_mark', '0');
      await ward.stop();
    }
  });
});

describe('RLIMIT_NOFILE', () => {
  it('is raised at start: to what proxy.maxConnections needs, or at least to the hard limit with a warning', async () => {
    const a = lab.node('a');
    const [, hard] = getNofileLimit();
    const ward = await a.startWard({ proxy: { maxConnections: 50_000 } });
    try {
      const limits = readFileSync(`/proc/${ward.pid}/limits`, 'utf8');
      const m = /Max open files\s+(\d+)\s+(\d+)/.exec(limits);
      const want = nofileWanted(50_000);
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(hard < 0 ? want : Math.min(want, hard));
      const line = ward.lines().find((l) => String(l.msg).startsWith('RLIMIT_NOFILE'));
      expect(line).toBeDefined();
      // Without CAP_SYS_RESOURCE (a container) the hard limit stays: ward says how many connections fit.
      if (Number(m?.[1]) < want) expect(line).toMatchObject({ code: 'PXY_RLIMIT_NOFILE', level: 'warn' });
    } finally {
      await ward.stop();
    }
  });

  it('when it cannot be raised far enough, ward refuses to start and says what to change', async () => {
    const a = lab.node('a');
    a.exec(['true']);
    writeFileSync(a.configPath, YAML.stringify(a.wardConfig({ proxy: { maxConnections: 100_000 } })));
    // A hard limit of 1024 that ward may not raise: no CAP_SYS_RESOURCE in its bounding set.
    const res = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        a.ns,
        'prlimit',
        '--nofile=1024:1024',
        'setpriv',
        '--bounding-set=-sys_resource',
        '--inh-caps=-sys_resource',
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        WARD_MAIN,
        'run',
        '--config',
        a.configPath,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('PXY_RLIMIT_NOFILE');
    expect(res.stderr).toContain('fewer than 1024');
    expect(res.stderr).toContain('LimitNOFILE');
    expect(a.ruleset()).not.toContain('WARD_PREROUTING');
  });
});
