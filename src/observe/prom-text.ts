// A parser for the Prometheus text exposition format (version 0.0.4), for tests and tools that read
// ward's /metrics: prom-client only writes the format. It follows the format's grammar: `# HELP`,
// `# TYPE`, comments, samples `name{label="value",…} value [timestamp]`, label values with \\ \" \n
// escapes, and the special values +Inf, -Inf, NaN. Samples named <family>_bucket|_sum|_count (histogram,
// summary) or <family>_total (counter) are grouped under their family.
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestamp?: number;
}

export interface MetricFamily {
  readonly name: string;
  type: string;
  help: string;
  readonly samples: Sample[];
}

export class ExpositionError extends Error {
  readonly line: number;

  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.line = line;
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string, line: number): number {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new ExpositionError(line, `bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(s: string, at: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = at + 1; // past '{'
  for (;;) {
    while (s[i] === ' ') i++;
    if (s[i] === '}') return { labels, end: i + 1 };
    const m = LABEL_NAME.exec(s.slice(i));
    if (m === null) throw new ExpositionError(line, `bad label name at column ${i + 1}`);
    const name = m[0];
    i += name.length;
    while (s[i] === ' ') i++;
    if (s[i] !== '=') throw new ExpositionError(line, `expected = after label ${name}`);
    i++;
    while (s[i] === ' ') i++;
    if (s[i] !== '"') throw new ExpositionError(line, `expected " to open the value of ${name}`);
    i++;
    let value = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) throw new ExpositionError(line, `unterminated value of label ${name}`);
      if (c === '"') break;
      if (c === '\\') {
        const n = s[i + 1];
        if (n === 'n') value += '\n';
        else if (n === '\\' || n === '"') value += n;
        else throw new ExpositionError(line, `bad escape \\${n ?? ''} in label ${name}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++;
    if (name in labels) throw new ExpositionError(line, `label ${name} given twice`);
    labels[name] = value;
    while (s[i] === ' ') i++;
    if (s[i] === ',') {
      i++;
      continue;
    }
    if (s[i] === '}') return { labels, end: i + 1 };
    throw new ExpositionError(line, `expected , or } after label ${name}`);
  }
}

function familyOf(sample: string, families: Map<string, MetricFamily>): string {
  if (families.has(sample)) return sample;
  for (const suffix of ['_bucket', '_sum', '_count', '_total', '_created']) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length);
      if (families.has(base)) return base;
    }
  }
  return sample;
}

export function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const lines = text.split('\n');
  for (const [idx, raw] of lines.entries()) {
    const line = idx + 1;
    const s = raw.trim();
    if (s === '') continue;
    if (s.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(s);
      if (m === null) continue; // a plain comment
      const [, kind, name = '', rest = ''] = m;
      const f = family(name);
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) {
          throw new ExpositionError(line, `unknown type ${JSON.stringify(rest)} for ${name}`);
        }
        if (f.samples.length > 0) throw new ExpositionError(line, `TYPE for ${name} after its samples`);
        f.type = rest;
      } else {
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      continue;
    }
    const nm = NAME.exec(s);
    if (nm === null) throw new ExpositionError(line, `bad metric name in ${JSON.stringify(s.slice(0, 40))}`);
    const name = nm[0];
    let i = name.length;
    let labels: Record<string, string> = {};
    if (s[i] === '{') {
      const parsed = parseLabels(s, i, line);
      labels = parsed.labels;
      i = parsed.end;
    }
    const rest = s.slice(i).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') {
      throw new ExpositionError(line, `expected a value (and optional timestamp) after ${name}`);
    }
    const value = parseValue(rest[0] ?? '', line);
    const sample: Sample =
      rest[1] === undefined ? { name, labels, value } : { name, labels, value, timestamp: Number(rest[1]) };
    family(familyOf(name, families)).samples.push(sample);
  }
  return families;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined if none. */
export function sampleValue(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number | undefined {
  const f = families.get(familyOf(name, families));
  if (f === undefined) return undefined;
  const hits = f.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length > 1) {
    throw new Error(`${name}${JSON.stringify(labels)} matches ${hits.length} samples; name more labels`);
  }
  return hits[0]?.value;
}

/** The sum over every sample named `name` whose labels include `labels` (0 if none). */
export function sampleSum(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  const f = families.get(familyOf(name, families));
  if (f === undefined) return 0;
  let total = 0;
  for (const s of f.samples) {
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
