// Parse → override → validate → freeze, in one place. A contradiction stops startup with the field path.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { WardError } from '../errors.ts';
import { type Config, configSchema } from './schema.ts';

export interface ConfigProblem {
  /** Dotted field path, e.g. `capture.podCidrs.0`; empty for the document itself. */
  readonly path: string;
  readonly message: string;
}

export class ConfigError extends WardError {
  readonly problems: readonly ConfigProblem[];
  readonly source: string;

  constructor(source: string, problems: readonly ConfigProblem[]) {
    super(
      'CFG_INVALID',
      `invalid configuration (${source}):\n${problems.map((p) => `  ${p.path || '(document)'}: ${p.message}`).join('\n')}`,
    );
    this.problems = problems;
    this.source = source;
  }
}

const ENV_PREFIX = 'WARD_';

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

type AnyZod = z.ZodType;

function unwrap(t: AnyZod): AnyZod {
  let cur: AnyZod = t;
  while (cur instanceof z.ZodDefault || cur instanceof z.ZodOptional || cur instanceof z.ZodPipe) {
    cur = cur instanceof z.ZodPipe ? (cur.in as AnyZod) : (cur.unwrap() as AnyZod);
  }
  return cur;
}

/** WARD_<SECTION>_<FIELD> for every leaf of the schema, e.g. WARD_PROXY_WORKERS, WARD_CAPTURE_POD_CIDRS. */
export function envOverrideNames(): Map<string, { section: string; field: string; isArray: boolean }> {
  const names = new Map<string, { section: string; field: string; isArray: boolean }>();
  for (const [section, sectionType] of Object.entries(configSchema.shape)) {
    const obj = unwrap(sectionType as AnyZod);
    if (!(obj instanceof z.ZodObject)) continue;
    for (const [field, fieldType] of Object.entries(obj.shape)) {
      names.set(`${ENV_PREFIX}${snake(section)}_${snake(field)}`, {
        section,
        field,
        isArray: unwrap(fieldType as AnyZod) instanceof z.ZodArray,
      });
    }
  }
  return names;
}

function applyEnv(doc: Record<string, unknown>, env: NodeJS.ProcessEnv): ConfigProblem[] {
  const names = envOverrideNames();
  const sections = new Set([...names.values()].map((n) => `${ENV_PREFIX}${snake(n.section)}_`));
  const problems: ConfigProblem[] = [];
  for (const [key, raw] of Object.entries(env)) {
    if (raw === undefined || !key.startsWith(ENV_PREFIX)) continue;
    const target = names.get(key);
    if (target === undefined) {
      if ([...sections].some((s) => key.startsWith(s))) {
        problems.push({ path: `env ${key}`, message: 'no such configuration field' });
      }
      continue;
    }
    const value: unknown = target.isArray
      ? raw
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
      : YAML.parse(raw);
    const section = doc[target.section];
    const into = typeof section === 'object' && section !== null ? (section as Record<string, unknown>) : {};
    into[target.field] = value;
    doc[target.section] = into;
  }
  return problems;
}

function pathOf(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.');
}

/** Cross-field rules the schema cannot say alone. */
function contradictions(c: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const { tproxyMark, bypassMark, markMask } = c.capture;
  if (markMask === 0) out.push({ path: 'capture.markMask', message: 'must not be 0' });
  if ((tproxyMark & ~markMask) >>> 0 !== 0) {
    out.push({
      path: 'capture.tproxyMark',
      message: `0x${tproxyMark.toString(16)} has bits outside markMask 0x${markMask.toString(16)}`,
    });
  }
  if ((bypassMark & ~markMask) >>> 0 !== 0) {
    out.push({
      path: 'capture.bypassMark',
      message: `0x${bypassMark.toString(16)} has bits outside markMask 0x${markMask.toString(16)}`,
    });
  }
  if (tproxyMark === 0) out.push({ path: 'capture.tproxyMark', message: 'must not be 0' });
  if (bypassMark === 0) out.push({ path: 'capture.bypassMark', message: 'must not be 0' });
  if (tproxyMark === bypassMark)
    out.push({ path: 'capture.bypassMark', message: 'must differ from capture.tproxyMark' });
  const ports = new Map<number, string>();
  const l = c.listeners;
  for (const [name, p] of [
    ['listeners.outboundPort', l.outboundPort],
    ['listeners.inboundPlaintextPort', l.inboundPlaintextPort],
    ['listeners.inboundTunnelPort', l.inboundTunnelPort],
    ...(c.admin.enabled ? ([['admin.port', c.admin.port]] as const) : []),
    ...(c.observe.metricsEnabled ? ([['observe.metricsPort', c.observe.metricsPort]] as const) : []),
    ...(c.observe.readinessEnabled ? ([['observe.readinessPort', c.observe.readinessPort]] as const) : []),
  ] as const) {
    const prev = ports.get(p);
    if (prev !== undefined) out.push({ path: name, message: `port ${p} is already used by ${prev}` });
    else ports.set(p, name);
  }
  if (c.observe.livenessMaxLag < 100) {
    out.push({
      path: 'observe.livenessMaxLag',
      message: 'must be at least 100ms (timer jitter alone can reach it)',
    });
  }
  if (c.observe.livenessWindow < c.observe.livenessMaxLag) {
    out.push({ path: 'observe.livenessWindow', message: 'must be at least observe.livenessMaxLag' });
  }
  return out;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}

/** Validates an already-parsed document (plus env overrides) into a frozen Config. */
export function buildConfig(doc: unknown, source: string, env: NodeJS.ProcessEnv = {}): Readonly<Config> {
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(source, [{ path: '', message: 'the configuration must be a mapping of sections' }]);
  }
  const working = structuredClone(doc) as Record<string, unknown>;
  const envProblems = applyEnv(working, env);
  if (envProblems.length > 0) throw new ConfigError(source, envProblems);
  const res = configSchema.safeParse(working);
  if (!res.success) {
    throw new ConfigError(
      source,
      res.error.issues.flatMap((i) =>
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => ({ path: pathOf([...i.path, k]), message: 'unknown field' }))
          : [{ path: pathOf(i.path), message: i.message }],
      ),
    );
  }
  const problems = contradictions(res.data);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(res.data);
}

export function parseConfigText(text: string, source: string, env: NodeJS.ProcessEnv = {}): Readonly<Config> {
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  if (list.length > 1)
    throw new ConfigError(source, [{ path: '', message: 'expected one YAML document, found several' }]);
  const first = list[0];
  if (first === undefined) return buildConfig({}, source, env);
  if (first.errors.length > 0) {
    throw new ConfigError(
      source,
      first.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0] ?? e.message}` })),
    );
  }
  let doc: unknown;
  try {
    doc = first.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // yaml throws a ReferenceError for an alias bomb ("Excessive alias count"): still a config problem.
    throw new ConfigError(source, [{ path: '', message: `YAML: ${(err as Error).message}` }]);
  }
  return buildConfig(doc, source, env);
}

export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [{ path: '', message: `cannot read the file: ${(err as Error).message}` }]);
  }
  return parseConfigText(text, path, env);
}
