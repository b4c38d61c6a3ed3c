// How ward's cost grows with scale (issue 8, Build 4): SVIDs held per node, policy compile across a grid
// of policies × workloads, and memory per idle connection through ward. Each part writes its figures,
// the fitted growth and one SVG per plot to bench/results/scale/.
//
//   npm run bench:scale                       # = node bench/scale/run.ts: all three (conns needs root)
//   node bench/scale/run.ts --only svid,policy [--quick] [--out DIR] [--conns-reps 2] [--svid-workers 1]
//
// --quick: fewer and smaller sizes, one repetition (a minute or two; to check the code path, not to quote).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connsScale, WANTED_COUNTS } from './conns.ts';
import { policyScale } from './policy.ts';
import { type PartResult, writePart } from './report.ts';
import { svidScale } from './svid.ts';

const PARTS = ['svid', 'policy', 'conns'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'conns-reps': { type: 'string' },
    'svid-workers': { type: 'string', default: '1' },
  },
});
const quick = values.quick === true;
const only = (values.only?.split(',') ?? [...PARTS]) as Part[];
for (const p of only) if (!PARTS.includes(p)) throw new Error(`--only takes ${PARTS.join(', ')}; not ${p}`);
const outDir = values.out ?? fileURLToPath(new URL('../results/scale/', import.meta.url));

const meta = () => ({
  date: new Date().toISOString(),
  quick,
  node: process.version,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cpus: cpus().length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadavg: loadavg().map((x) => Number(x.toFixed(2))),
  },
});

async function runPart(part: Part, tmp: string): Promise<PartResult> {
  switch (part) {
    case 'svid':
      return svidScale({
        sizes: quick ? [100, 500, 1000] : [100, 500, 1000, 2500, 5000],
        reps: quick ? 1 : 3,
        spread: quick ? 2 : 3,
        workers: Number(values['svid-workers']),
        tmp,
      });
    case 'policy':
      return policyScale({
        policies: quick ? [100, 1000] : [100, 500, 1000, 2500, 5000],
        workloads: quick ? [1000, 10_000] : [1000, 10_000, 50_000],
        reps: quick ? 1 : 3,
        seconds: quick ? 0.2 : 0.5,
      });
    case 'conns':
      return connsScale({
        counts: quick ? [500, 1000] : WANTED_COUNTS,
        reps: Number(values['conns-reps'] ?? (quick ? 1 : 3)),
      });
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'ward-scale-'));
  const failed: string[] = [];
  try {
    for (const part of only) {
      if (part === 'conns' && process.getuid?.() !== 0) {
        const why = 'conns: skipped, the namespace lab needs root';
        process.stderr.write(`${why}\n`);
        if (values.only !== undefined) failed.push(why);
        continue;
      }
      const t0 = Date.now();
      const m0 = meta();
      try {
        const r = await runPart(part, tmp);
        const seconds = Math.round((Date.now() - t0) / 1000);
        const m = { ...m0, wallSeconds: seconds, loadavgAtEnd: loadavg().map((x) => Number(x.toFixed(2))) };
        const head = `_Run ${m.date}${quick ? ' (--quick)' : ''}, ${seconds} s: ${m.machine.cpu}, ${m.machine.cpus} CPUs, Node ${m.node}; load average ${m.machine.loadavg.join(' ')} at the start, ${m.loadavgAtEnd.join(' ')} at the end (the machine is shared)._\n\n`;
        const files = writePart(outDir, {
          ...r,
          json: { meta: m, ...r.json },
          markdown: r.markdown.replace(/\n/, `\n\n${head}`),
        });
        process.stderr.write(`${part}: done in ${seconds} s: ${files.join(', ')}\n`);
      } catch (e) {
        failed.push(`${part}: ${(e as Error).message}`);
        process.stderr.write(`${part} failed: ${(e as Error).stack ?? String(e)}\n`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // One page with every part measured so far (each part's own .md is the source).
  const pages = PARTS.map((p) => join(outDir, `${p}.md`)).filter((f) => existsSync(f));
  if (pages.length > 0)
    writeFileSync(
      join(outDir, 'scale.md'),
      `# Scale benchmarks (\`bench/scale\`)\n\n${pages.map((f) => readFileSync(f, 'utf8')).join('\n')}`,
    );
  if (failed.length > 0) {
    process.stderr.write(`failed: ${failed.join('; ')}\n`);
    process.exitCode = 1;
  }
}

await main();
