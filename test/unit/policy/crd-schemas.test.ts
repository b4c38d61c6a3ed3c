// src/policy/crd/schemas.json must be exactly the CRDs' openAPIV3Schema minus descriptions, so ward
// validates what the API server validates. Re-derives it from shared/reference/crds/ (see crd/SOURCE.md).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import schemas from '../../../src/policy/crd/schemas.json' with { type: 'json' };
import {
  assertSupportedSchema,
  type OpenApiSchema,
  validateSchema,
} from '../../../src/policy/openapi-validate.ts';

const CRD_DIR = new URL('../../../../shared/reference/crds/', import.meta.url);

function strip(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(strip);
  if (s === null || typeof s !== 'object') return s;
  const o: Record<string, unknown> = {};
  const rec = s as Record<string, unknown>;
  for (const k of Object.keys(rec).sort()) {
    if (k === 'description') continue;
    if (k === 'properties') {
      const props = rec[k] as Record<string, unknown>;
      o[k] = Object.fromEntries(
        Object.keys(props)
          .sort()
          .map((pk) => [pk, strip(props[pk])]),
      );
      continue;
    }
    o[k] = strip(rec[k]);
  }
  return o;
}

const files: Record<string, string> = {
  CiliumNetworkPolicy: 'ciliumnetworkpolicies.yaml',
  CiliumClusterwideNetworkPolicy: 'ciliumclusterwidenetworkpolicies.yaml',
  CiliumIdentity: 'ciliumidentities.yaml',
  CiliumEndpoint: 'ciliumendpoints.yaml',
};

describe.runIf(existsSync(CRD_DIR))('CRD schema copy', () => {
  it.each(Object.entries(files))('%s matches the CRD file', (kind, file) => {
    const crd = parse(readFileSync(new URL(file, CRD_DIR), 'utf8')) as {
      spec: {
        group: string;
        versions: { name: string; storage: boolean; schema: { openAPIV3Schema: unknown } }[];
      };
    };
    const v = crd.spec.versions.find((x) => x.storage)!;
    const ours = (schemas as Record<string, { schema: unknown; version: string; group: string }>)[kind]!;
    expect(ours.version).toBe(v.name);
    expect(ours.group).toBe(crd.spec.group);
    expect(ours.schema).toEqual(strip(v.schema.openAPIV3Schema));
  });
});

describe('OpenAPI interpreter', () => {
  it('implements every keyword the schemas use', () => {
    for (const s of Object.values(schemas as unknown as Record<string, { schema: OpenApiSchema }>)) {
      expect(() => assertSupportedSchema(s.schema)).not.toThrow();
    }
    expect(() => assertSupportedSchema({ type: 'string', ...({ uniqueItems: true } as object) })).toThrow(
      /uniqueItems/,
    );
  });

  const t = (schema: OpenApiSchema, value: unknown) => {
    const issues: { path: string; message: string }[] = [];
    validateSchema(schema, value, '', issues);
    return issues.map((i) => `${i.path}: ${i.message}`);
  };

  it.each([
    ['type', { type: 'integer' } as OpenApiSchema, 1.5, /must be of type integer/],
    ['enum', { type: 'string', enum: ['a'] } as OpenApiSchema, 'b', /must be one of "a"/],
    ['pattern', { type: 'string', pattern: '^x$' } as OpenApiSchema, 'y', /must match/],
    ['maxLength counts characters', { type: 'string', maxLength: 2 } as OpenApiSchema, 'ééé', /at most 2/],
    ['minimum', { type: 'integer', minimum: 1 } as OpenApiSchema, 0, /at least 1/],
    ['maxItems', { type: 'array', maxItems: 1 } as OpenApiSchema, [1, 2], /at most 1 items/],
    [
      'unknown field',
      { type: 'object', properties: { a: {} } } as OpenApiSchema,
      { b: 1 },
      /unknown field "b"/,
    ],
    [
      'required',
      { type: 'object', properties: { a: {} }, required: ['a'] } as OpenApiSchema,
      {},
      /a: is required/,
    ],
    ['format cidr', { type: 'string', format: 'cidr' } as OpenApiSchema, '1.2.3.4', /CIDR/],
    [
      'list-type set',
      { type: 'array', 'x-kubernetes-list-type': 'set' } as OpenApiSchema,
      ['a', 'a'],
      /duplicate/,
    ],
    [
      'oneOf',
      {
        type: 'object',
        properties: { a: {}, b: {} },
        oneOf: [{ required: ['a'] }, { required: ['b'] }],
      } as OpenApiSchema,
      { a: 1, b: 1 },
      /exactly one of: a, b \(has a, b\)/,
    ],
    [
      'anyOf',
      {
        type: 'object',
        properties: { a: {}, b: {} },
        anyOf: [{ required: ['a'] }, { required: ['b'] }],
      } as OpenApiSchema,
      {},
      /at least one of: a, b/,
    ],
  ])('%s', (_n, schema, value, re) => {
    expect(t(schema, value).join('\n')).toMatch(re);
  });

  it('prunes a null of a non-nullable field instead of rejecting it', () => {
    expect(t({ type: 'object', properties: { a: { type: 'array' } } }, { a: null })).toEqual([]);
    expect(t({ type: 'object', properties: { a: { type: 'array' } }, required: ['a'] }, { a: null })).toEqual(
      ['a: is required'],
    );
  });
});
