// The socket addon, on real sockets: IP_TRANSPARENT, SO_MARK, SO_REUSEPORT and binding a connecting
// socket to a non-local source. Needs root (CAP_NET_ADMIN); the last test drops the capability.
import { spawnSync } from 'node:child_process';
import { type AddressInfo, createServer, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { addNamespace, deleteNamespace, execIn, ipIn } from '../../src/lab/netns.ts';
import { createListenFd, createUpstreamFd, getMark, isTransparent } from '../../src/proxy/socket-options.ts';
import { labName } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('socket addon', () => {
  it('a transparent, reuse-port listener: two sockets share a port and both are transparent', async () => {
    const first = createListenFd(
      { family: 4, ip: '127.0.0.1', port: 0 },
      { transparent: true, reusePort: true },
    );
    const a = createServer();
    await new Promise<void>((r) => a.listen({ fd: first }, r));
    const port = (a.address() as AddressInfo).port;
    const second = createListenFd(
      { family: 4, ip: '127.0.0.1', port },
      { transparent: true, reusePort: true },
    );
    const b = createServer();
    await new Promise<void>((r) => b.listen({ fd: second }, r));
    expect((b.address() as AddressInfo).port).toBe(port);
    expect(isTransparent(a, 4)).toBe(true);
    a.close();
    b.close();
  });

  it('without SO_REUSEPORT the second bind fails with EADDRINUSE, named', () => {
    const fd = createListenFd(
      { family: 4, ip: '127.0.0.1', port: 0 },
      { transparent: false, reusePort: false },
    );
    const a = createServer();
    a.listen({ fd });
    const port = (a.address() as AddressInfo | null)?.port ?? 0;
    expect(() =>
      createListenFd({ family: 4, ip: '127.0.0.1', port }, { transparent: false, reusePort: false }),
    ).toThrow(/bind 127\.0\.0\.1:\d+: Address already in use/);
    a.close();
  });

  it('an upstream socket carries its mark and connects', async () => {
    const server = createServer((s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const fd = createUpstreamFd({ family: 4, mark: 0x20 });
    const s = new Socket({ fd, manualStart: true } as ConstructorParameters<typeof Socket>[0]);
    expect(getMark(s)).toBe(0x20);
    s.connect((server.address() as AddressInfo).port, '127.0.0.1');
    const data = await new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.toString())));
    expect(data).toBe('hi');
    s.destroy();
    server.close();
  });

  it('binds a connecting socket to a non-local source address, which the server then sees', async () => {
    // In a namespace of our own: the server listens on 198.18.99.1 and the client claims 198.18.77.7,
    // an address no interface has and no local route covers. Replies reach the client the way they
    // reach ward: a socket-match mark and a policy route to the local table.
    const ns = `ward-${labName()}-sockopt`;
    addNamespace(ns);
    try {
      ipIn(ns, 'addr', 'add', '198.18.99.1/32', 'dev', 'lo');
      ipIn(ns, 'route', 'add', '198.18.77.0/24', 'dev', 'lo');
      ipIn(ns, 'rule', 'add', 'fwmark', '0x1', 'lookup', '100');
      ipIn(ns, 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100');
      execIn(ns, [
        'iptables',
        '-t',
        'mangle',
        '-A',
        'PREROUTING',
        '-p',
        'tcp',
        '-m',
        'socket',
        '--transparent',
        '-j',
        'MARK',
        '--set-mark',
        '1',
      ]);
      const script = `
        import { connect, createServer, Socket } from 'node:net';
        import { createUpstreamFd } from '${ROOT}src/proxy/socket-options.ts';
        const server = createServer((c) => { c.end(c.remoteAddress); });
        server.listen(9000, '198.18.99.1', () => {
          // Node alone cannot: the address is not local.
          const plain = connect({ port: 9000, host: '198.18.99.1', localAddress: '198.18.77.7' });
          plain.on('error', (e) => {
            const fd = createUpstreamFd({ family: 4, mark: 0x20, source: { ip: '198.18.77.7', port: 0 } });
            const s = new Socket({ fd, manualStart: true });
            s.connect(9000, '198.18.99.1');
            s.on('data', (d) => { console.log(JSON.stringify({ plain: e.code, seen: d.toString(), local: s.localAddress })); s.destroy(); server.close(); });
          });
        });`;
      const out = execIn(ns, [process.execPath, '--input-type=module', '-e', script]);
      expect(JSON.parse(out)).toEqual({ plain: 'EADDRNOTAVAIL', seen: '198.18.77.7', local: '198.18.77.7' });
    } finally {
      deleteNamespace(ns);
    }
  });

  it('without CAP_NET_ADMIN the error names the capability', () => {
    const script = `
      import { createListenFd } from '${ROOT}src/proxy/socket-options.ts';
      try { createListenFd({ family: 4, ip: '127.0.0.1', port: 0 }, { transparent: true, reusePort: true }); console.log('allowed'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    // IP_TRANSPARENT is allowed with CAP_NET_ADMIN or CAP_NET_RAW: drop both, for this process only.
    const res = spawnSync(
      'setpriv',
      [
        '--bounding-set=-net_admin,-net_raw',
        '--inh-caps=-net_admin,-net_raw',
        process.execPath,
        '--input-type=module',
        '-e',
        script,
      ],
      { encoding: 'utf8' },
    );
    const out = JSON.parse(res.stdout) as { code: string; message: string };
    expect(out.code).toBe('PXY_CAP_NET_ADMIN');
    expect(out.message).toContain('IP_TRANSPARENT');
    expect(out.message).toContain('needs CAP_NET_ADMIN');
  });
});
