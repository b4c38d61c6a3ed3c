// deploy/Dockerfile, read statically (no container engine in CI): multi-stage on the official Node 24
// slim image, the addon built and dev dependencies pruned, the network tools present, what it copies
// exists, and the .dockerignore keeps nothing out that it copies.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT } from './tools.ts';

const text = readFileSync(`${ROOT}deploy/Dockerfile`, 'utf8');
const lines = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const stages = lines.reduce<string[][]>((acc, l) => {
  if (/^FROM /i.test(l)) acc.push([l]);
  else acc.at(-1)?.push(l);
  return acc;
}, []);
const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1];

describe('deploy/Dockerfile', () => {
  it('has a build stage and a runtime stage on the official Node 24 slim image', () => {
    expect(nodeImage).toMatch(/^node:24(\.\d+)*-[a-z]+-slim$/);
    const ref = ['$', '{NODE_IMAGE}'].join(''); // the Dockerfile's ARG, spelled out
    expect(stages.map((s) => s[0])).toEqual([`FROM ${ref} AS build`, `FROM ${ref}`]);
  });

  it('builds the addon with npm ci (offline node-gyp), prunes dev dependencies and smoke-tests', () => {
    const build = stages[0]!.join('\n');
    expect(build).toMatch(/apt-get install [^\n]*g\+\+[^\n]*make[^\n]*python3/);
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm prune --omit=dev/);
    expect(build.indexOf('npm ci')).toBeLessThan(build.indexOf('npm prune'));
    expect(build).toMatch(/COPY [^\n]*binding\.gyp/);
    expect(build).toMatch(/bin\/ward --version/);
  });

  it('the runtime stage has iptables, nftables and iproute2, and no build tools or npm', () => {
    const rt = stages[1]!.join('\n');
    for (const pkg of ['iptables', 'nftables', 'iproute2'])
      expect(rt).toMatch(new RegExp(`apt-get install [^\\n]*\\b${pkg}\\b`));
    expect(rt).not.toMatch(/\bg\+\+|\bpython3\b|npm (ci|install)/);
    expect(rt).toContain('rm -rf /var/lib/apt/lists/*');
    expect(rt).toMatch(/rm -rf \/usr\/local\/lib\/node_modules\/npm/);
  });

  it('copies only built artefacts, runs as a non-root user by default, and starts ward', () => {
    const rt = stages[1]!;
    const copies = rt.filter((l) => l.startsWith('COPY'));
    expect(copies.every((l) => l.startsWith('COPY --from=build '))).toBe(true);
    expect(copies.join('\n')).toContain('build/Release/ward_socket.node');
    expect(rt).toContain('USER 65532:65532');
    expect(rt).toContain('ENTRYPOINT ["/app/bin/ward"]');
    expect(rt).toContain('CMD ["run", "--config", "/etc/ward/ward.yaml"]');
    expect(text).toMatch(/--cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW/);
    expect(text).toMatch(/--read-only/);
  });

  it('everything the build copies from the context exists and is not excluded by .dockerignore', () => {
    const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const sources = stages[0]!
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from'))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        'tsconfig.json',
        'tsconfig.build.json',
        'scripts',
        'native',
        'bin',
        'src',
      ]),
    );
    for (const s of sources) {
      expect(existsSync(`${ROOT}${s}`), s).toBe(true);
      expect(ignored.includes(s) || ignored.includes(s.split('/')[0]!), `${s} is in .dockerignore`).toBe(
        false,
      );
    }
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'build', '.git']));
  });

  it('the launcher and the init container use the Node.js 24 the image ships in node_modules', () => {
    expect(readFileSync(`${ROOT}bin/ward`, 'utf8')).toContain('node_modules/.bin/node');
    const ds = readFileSync(`${ROOT}deploy/helm/ward/templates/daemonset.yaml`, 'utf8');
    expect(ds).toContain('/app/node_modules/.bin/node, /app/dist/init/pod-cidrs.js');
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies.node).toMatch(/^24\./);
    expect(pkg.dependencies.undici).toBeDefined(); // pod-cidrs.ts needs it after the prune
  });
});
