// Compiles src/ to dist/ ahead of time (tsc with tsconfig.build.json) and copies the files the code reads
// at run time (the gRPC protos). bin/ward runs dist/: a Node.js that loads no TypeScript strips no types
// at run time, which saves the ~18 MiB of resident memory the type stripper costs in every thread
// (bench/README.md, "Idle memory"). `npm ci` runs this (package.json "install"); so does `npm run build`.
// The build goes to a temporary directory first, so an interrupted build never leaves half a dist/.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const dist = join(root, 'dist');
const tmp = join(root, `dist.tmp-${process.pid}`);

if (!existsSync(join(root, 'src', 'cli', 'main.ts'))) {
  console.error(`build-dist: no ${join(root, 'src')} to build`);
  process.exit(1);
}
rmSync(tmp, { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', tmp], {
  stdio: 'inherit',
});
if (r.status !== 0) {
  rmSync(tmp, { recursive: true, force: true });
  console.error('build-dist: tsc failed; dist/ was left as it was');
  process.exit(1);
}
cpSync(join(root, 'src', 'svid', 'proto'), join(tmp, 'svid', 'proto'), { recursive: true });
// The stamp: bin/ward and the lab compare src/ against it to catch a dist/ older than the sources.
writeFileSync(join(tmp, 'BUILD'), `${new Date().toISOString()}\n`);
rmSync(dist, { recursive: true, force: true });
renameSync(tmp, dist);
