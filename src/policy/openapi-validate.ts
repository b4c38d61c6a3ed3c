// A small, faithful interpreter of the OpenAPI v3 subset Cilium's CRD schemas use (see crd/SOURCE.md),
// applied the way the Kubernetes API server applies a structural schema:
// - a `null` value of a non-nullable field is pruned before validation (apiextensions v1 "nullable");
// - unknown fields are errors (server-side field validation `Strict`, kubectl's default since 1.27);
// - type, properties, required, additionalProperties, items, enum, pattern, min/maxLength,
//   minimum/maximum, min/maxItems, format (cidr, int32, int64, date-time, idn-hostname), anyOf, oneOf,
//   x-kubernetes-int-or-string, x-kubernetes-list-type set/map.
import { parseCidr } from '../net/address.ts';

export interface OpenApiSchema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: Readonly<Record<string, OpenApiSchema>>;
  readonly additionalProperties?: OpenApiSchema | boolean;
  readonly required?: readonly string[];
  readonly items?: OpenApiSchema;
  readonly enum?: readonly unknown[];
  readonly pattern?: string;
  readonly maxLength?: number;
  readonly minLength?: number;
  readonly maximum?: number;
  readonly minimum?: number;
  readonly maxItems?: number;
  readonly minItems?: number;
  readonly format?: string;
  readonly anyOf?: readonly OpenApiSchema[];
  readonly oneOf?: readonly OpenApiSchema[];
  readonly nullable?: boolean;
  readonly default?: unknown;
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-map-type'?: string;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
}

export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

const KNOWN = new Set([
  'type',
  'properties',
  'additionalProperties',
  'required',
  'items',
  'enum',
  'pattern',
  'maxLength',
  'minLength',
  'maximum',
  'minimum',
  'maxItems',
  'minItems',
  'format',
  'anyOf',
  'oneOf',
  'nullable',
  'default',
  'x-kubernetes-int-or-string',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-preserve-unknown-fields',
]);

/** Throws if a schema uses a keyword this interpreter does not implement: never validate half a schema. */
export function assertSupportedSchema(s: OpenApiSchema, path = ''): void {
  for (const k of Object.keys(s)) {
    if (!KNOWN.has(k)) throw new Error(`CRD schema keyword '${k}' at ${path || '<root>'} is not supported`);
  }
  for (const [k, v] of Object.entries(s.properties ?? {})) assertSupportedSchema(v, `${path}.${k}`);
  if (s.items !== undefined) assertSupportedSchema(s.items, `${path}[]`);
  if (typeof s.additionalProperties === 'object') assertSupportedSchema(s.additionalProperties, `${path}.*`);
  for (const b of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) assertSupportedSchema(b, path);
}

const regexCache = new Map<string, RegExp>();
function regex(p: string): RegExp {
  let r = regexCache.get(p);
  if (r === undefined) {
    r = new RegExp(p, 'u');
    regexCache.set(p, r);
  }
  return r;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const HOSTNAME_LABEL = /^[\p{L}\p{N}]([\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base === '' ? key : `${base}.${key}`;
}

function checkFormat(format: string, v: unknown): string | undefined {
  switch (format) {
    case 'cidr':
      if (typeof v !== 'string' || !v.includes('/'))
        return `must be a CIDR like 10.0.0.0/8 (got ${JSON.stringify(v)})`;
      try {
        parseCidr(v);
        return undefined;
      } catch {
        return `must be a CIDR like 10.0.0.0/8 (got ${JSON.stringify(v)})`;
      }
    case 'int32':
      return typeof v === 'number' && (v < -(2 ** 31) || v > 2 ** 31 - 1) ? 'must fit in int32' : undefined;
    case 'int64':
      return typeof v === 'number' && !Number.isSafeInteger(v) ? 'must fit in int64' : undefined;
    case 'date-time':
      return typeof v === 'string' && !DATE_TIME.test(v) ? 'must be an RFC 3339 date-time' : undefined;
    case 'idn-hostname':
      return typeof v === 'string' && (v.length > 253 || !v.split('.').every((l) => HOSTNAME_LABEL.test(l)))
        ? 'must be a hostname'
        : undefined;
    default:
      return undefined;
  }
}

/** Validates `value` against `schema`, appending every problem found to `issues`. */
export function validateSchema(
  schema: OpenApiSchema,
  value: unknown,
  path: string,
  issues: SchemaIssue[],
  strict = true,
): void {
  if (value === null || value === undefined) {
    if (schema.nullable === true) return;
    issues.push({ path, message: 'must not be null' });
    return;
  }
  const t = schema.type;
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (!(typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value)))) {
      issues.push({ path, message: `must be an integer or a string (got ${typeName(value)})` });
      return;
    }
  } else if (t !== undefined) {
    const ok =
      t === 'object'
        ? typeof value === 'object' && !Array.isArray(value)
        : t === 'array'
          ? Array.isArray(value)
          : t === 'integer'
            ? typeof value === 'number' && Number.isInteger(value)
            : t === 'number'
              ? typeof value === 'number'
              : typeof value === t;
    if (!ok) {
      issues.push({ path, message: `must be of type ${t} (got ${typeName(value)})` });
      return;
    }
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    issues.push({
      path,
      message: `must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')} (got ${JSON.stringify(value)})`,
    });
  }
  if (typeof value === 'string') {
    const len = [...value].length;
    if (schema.maxLength !== undefined && len > schema.maxLength) {
      issues.push({ path, message: `must be at most ${schema.maxLength} characters` });
    }
    if (schema.minLength !== undefined && len < schema.minLength) {
      issues.push({ path, message: `must be at least ${schema.minLength} characters` });
    }
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value)) {
      issues.push({ path, message: `must match ${schema.pattern} (got ${JSON.stringify(value)})` });
    }
  }
  if (typeof value === 'number') {
    if (schema.maximum !== undefined && value > schema.maximum) {
      issues.push({ path, message: `must be at most ${schema.maximum} (got ${value})` });
    }
    if (schema.minimum !== undefined && value < schema.minimum) {
      issues.push({ path, message: `must be at least ${schema.minimum} (got ${value})` });
    }
  }
  if (schema.format !== undefined) {
    const m = checkFormat(schema.format, value);
    if (m !== undefined) issues.push({ path, message: m });
  }
  if (Array.isArray(value)) validateArray(schema, value, path, issues, strict);
  else if (typeof value === 'object')
    validateObject(schema, value as Record<string, unknown>, path, issues, strict);
  if (schema.anyOf !== undefined || schema.oneOf !== undefined) validateBranches(schema, value, path, issues);
}

function validateArray(
  schema: OpenApiSchema,
  value: unknown[],
  path: string,
  issues: SchemaIssue[],
  strict: boolean,
): void {
  if (schema.maxItems !== undefined && value.length > schema.maxItems) {
    issues.push({ path, message: `must have at most ${schema.maxItems} items (got ${value.length})` });
  }
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    issues.push({ path, message: `must have at least ${schema.minItems} items` });
  }
  if (schema.items !== undefined) {
    for (let i = 0; i < value.length; i++)
      validateSchema(schema.items, value[i], joinPath(path, i), issues, strict);
  }
  const lt = schema['x-kubernetes-list-type'];
  if (lt === 'set' || lt === 'map') {
    const keys = schema['x-kubernetes-list-map-keys'] ?? [];
    const seen = new Set<string>();
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const k =
        lt === 'set'
          ? JSON.stringify(item)
          : JSON.stringify(keys.map((key) => (item as Record<string, unknown> | null)?.[key]));
      if (seen.has(k)) issues.push({ path: joinPath(path, i), message: `duplicate entry ${k}` });
      seen.add(k);
    }
  }
}

function validateObject(
  schema: OpenApiSchema,
  value: Record<string, unknown>,
  path: string,
  issues: SchemaIssue[],
  strict: boolean,
): void {
  const props = schema.properties;
  const extra = schema.additionalProperties;
  for (const [k, v] of Object.entries(value)) {
    const sub = props?.[k];
    // A null of a non-nullable field is pruned, as if absent (apiextensions v1 nullable).
    if ((v === null || v === undefined) && sub?.nullable !== true) continue;
    if (sub !== undefined) validateSchema(sub, v, joinPath(path, k), issues, strict);
    else if (typeof extra === 'object') validateSchema(extra, v, joinPath(path, k), issues, strict);
    else if (
      strict &&
      props !== undefined &&
      extra !== true &&
      schema['x-kubernetes-preserve-unknown-fields'] !== true
    ) {
      issues.push({ path: joinPath(path, k), message: `unknown field "${k}"` });
    }
  }
  for (const r of schema.required ?? []) {
    const v = value[r];
    if (v === undefined || (v === null && props?.[r]?.nullable !== true)) {
      issues.push({ path: joinPath(path, r), message: 'is required' });
    }
  }
}

function presentKeys(value: unknown): Set<string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return new Set();
  return new Set(
    Object.entries(value)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k]) => k),
  );
}

function validateBranches(schema: OpenApiSchema, value: unknown, path: string, issues: SchemaIssue[]): void {
  const pass = (b: OpenApiSchema): boolean => {
    const sub: SchemaIssue[] = [];
    // Branch properties never make a field unknown: the structural skeleton is the parent's.
    validateSchema(b, value, path, sub, false);
    return sub.length === 0;
  };
  // Cilium's branches are all of the form {properties: {x: {}}, required: [x]}: name the keys.
  const names = (bs: readonly OpenApiSchema[]): string =>
    bs.map((b) => (b.required ?? []).join('+')).join(', ');
  if (schema.anyOf !== undefined && !schema.anyOf.some(pass)) {
    issues.push({ path, message: `must have at least one of: ${names(schema.anyOf)}` });
  }
  if (schema.oneOf !== undefined) {
    const n = schema.oneOf.filter(pass).length;
    if (n !== 1) {
      const keys = presentKeys(value);
      const present = schema.oneOf.flatMap((b) => b.required ?? []).filter((k) => keys.has(k));
      issues.push({
        path,
        message:
          n === 0
            ? `must have exactly one of: ${names(schema.oneOf)} (has none)`
            : `must have exactly one of: ${names(schema.oneOf)} (has ${present.join(', ')})`,
      });
    }
  }
}
