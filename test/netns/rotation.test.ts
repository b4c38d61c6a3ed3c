// SVID rotation under open connections: the development CA (standing in for the SPIRE agent) issues
// SVIDs that live 8 s and rotates them at half-life, pushing each rotation on the Delegated Identity
// stream. Connections opened before a rotation keep flowing; connections opened after it use the new SVID.

import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../../src/lab/lab.ts';
import { holdConnection, labName, peer, servePeer, until } from './helpers.ts';

function tunnelsOpened(): number {
  const res = spawnSync(
    'ip',
    ['netns', 'exec', lab.node('a').ns, 'curl', '-sS', 'http://127.0.0.1:15000/stats'],
    { encoding: 'utf8' },
  );
  return (JSON.parse(res.stdout) as { counters: { tunnels: { opened: number } } }).counters.tunnels.opened;
}

let lab: Lab;
let server: { stop: () => void };

beforeAll(async () => {
  lab = await Lab.create({
    name: labName(),
    nodes: [
      { name: 'a', pods: ['client'] },
      { name: 'b', pods: ['server'] },
    ],
    mesh: { svidTtl: '8s' },
  });
  server = await servePeer(lab.pod('server'), ['serve', '--port', '8080']);
}, 60_000);

afterAll(async () => {
  server?.stop();
  await lab?.destroy();
});

describe('SVID rotation', () => {
  it('never cuts an open connection, and new connections use the rotated SVID', async () => {
    const to = `${lab.pod('server').ip}:8080`;
    const held = holdConnection(lab.pod('client'), to);
    await held.echoing;
    const wardA = lab.node('a').ward;
    expect(tunnelsOpened()).toBe(1);
    const rotatedBefore = wardA?.lines().filter((l) => l.msg === 'SVID rotated').length ?? 0;
    // Two rotations of the client's SVID: at about 4 s and 8 s after issue. The first SVID has then expired.
    await until(
      'two rotations',
      () => (wardA?.lines().filter((l) => l.msg === 'SVID rotated').length ?? 0) >= rotatedBefore + 4,
      30_000,
    );
    await new Promise((r) => setTimeout(r, 1000));
    // The connection made with the first SVID is still open and still echoing.
    const probe = await Promise.race([held.ended, new Promise((r) => setTimeout(() => r('open'), 300))]);
    expect(probe).toBe('open');
    const fresh = await peer(lab.pod('client'), ['send', '--to', to, '--bytes', '10000']);
    expect(fresh.ok).toBe(true);
    expect(fresh.reply).toBe(fresh.sentSha256);
    // The new connection did not reuse the tunnel made with the first SVID: it handshook with the new one.
    expect(tunnelsOpened()).toBe(2);
    held.kill();
    const outs = lab.node('a').ward?.accessLog() ?? [];
    expect(outs.filter((l) => l.reason === 'policy_changed' || l.reason === 'identity_unavailable')).toEqual(
      [],
    );
  }, 60_000);
});
