// Manifests in, validated policies out: YAML or JSON, multi-document files, `kind: List`, directories.
// Every problem names the file, the document index and the field path; an invalid policy is rejected on
// its own and the others are kept.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PolicyError, type PolicyIssue } from './errors.ts';
import type { Origin, Policy, PolicyKind } from './model.ts';
import { type ParseResult, parseCiliumPolicy } from './parse-cilium.ts';
import { parseNetworkPolicy } from './parse-knp.ts';

export interface ParseOptions {
  /** Namespace of namespaced policies that name none (kubectl's default context). Default `default`. */
  readonly defaultNamespace?: string;
  /** Local cluster name, for KNP peers (§2.5). Default `default`. */
  readonly clusterName?: string;
}

/** One document of one file, still unparsed. */
export interface RawDocument extends Origin {
  readonly value: unknown;
  /** Path prefix inside the document (`items[3]` for a member of a `kind: List`). */
  readonly prefix: string;
}

export interface ParsedManifests {
  readonly policies: readonly Policy[];
  readonly issues: readonly PolicyIssue[];
}

const KINDS: Record<string, { apiVersion: string; kind: PolicyKind }> = {
  CiliumNetworkPolicy: { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy' },
  CiliumClusterwideNetworkPolicy: { apiVersion: 'cilium.io/v2', kind: 'CiliumClusterwideNetworkPolicy' },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
};

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

/** Whether a directory entry is a manifest ward reads (not hidden, not an editor's temporary file). */
export function isManifestFile(name: string): boolean {
  return MANIFEST_FILE.test(name) && !name.startsWith('.') && !name.endsWith('~');
}

/** Files under the given paths (directories recursively, sorted), each path as given. */
export async function expandPaths(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch((err: unknown) => {
      throw new PolicyError('POL_UNREADABLE', `${p}: ${(err as Error).message}`, { cause: err });
    });
    if (s.isDirectory()) {
      const entries = (await readdir(p, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
      for (const e of entries) {
        if (e.name.startsWith('.')) continue;
        const child = join(p, e.name);
        if (e.isDirectory()) out.push(...(await expandPaths([child])));
        else if (isManifestFile(e.name)) out.push(child);
      }
    } else out.push(p);
  }
  return out;
}

/** Splits a file's text into documents; syntax errors become issues naming the document. */
export function splitDocuments(file: string, text: string): { docs: RawDocument[]; issues: PolicyIssue[] } {
  const docs: RawDocument[] = [];
  const issues: PolicyIssue[] = [];
  const isJson = /\.json$/i.test(file);
  if (isJson) {
    try {
      pushDocument(docs, file, 0, JSON.parse(text) as unknown);
    } catch (err) {
      issues.push({
        file,
        document: 0,
        path: '',
        message: `not valid JSON: ${(err as Error).message}`,
        severity: 'error',
      });
    }
    return { docs, issues };
  }
  const all = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(all) ? all : [all];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      issues.push({
        file,
        document: i,
        path: '',
        message: `not valid YAML: ${d.errors.map((e) => e.message.split('\n')[0]).join('; ')}`,
        severity: 'error',
      });
      return;
    }
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // yaml throws (a ReferenceError) for an alias bomb: an issue of this document, not a crash.
      issues.push({
        file,
        document: i,
        path: '',
        message: `not valid YAML: ${(err as Error).message}`,
        severity: 'error',
      });
      return;
    }
    if (value === null || value === undefined) return; // an empty document (`---` at the end)
    pushDocument(docs, file, i, value);
  });
  return { docs, issues };
}

function pushDocument(docs: RawDocument[], file: string, document: number, value: unknown): void {
  const v = value as { kind?: unknown; items?: unknown };
  if (v !== null && typeof v === 'object' && v.kind === 'List' && Array.isArray(v.items)) {
    v.items.forEach((item, i) => {
      docs.push({ file, document, value: item, prefix: `items[${i}]` });
    });
    return;
  }
  docs.push({ file, document, value, prefix: '' });
}

/** Parses one document. Documents of other kinds (Deployments next to policies) are skipped with a warning. */
export function parseDocument(
  doc: RawDocument,
  opts: ParseOptions = {},
): { result: ParseResult | undefined; issues: PolicyIssue[] } {
  const issues: PolicyIssue[] = [];
  const at = (path: string): string =>
    doc.prefix === '' ? path : path === '' ? doc.prefix : `${doc.prefix}.${path}`;
  const v = doc.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    issues.push({
      file: doc.file,
      document: doc.document,
      path: at(''),
      message: 'a manifest must be an object',
      severity: 'error',
    });
    return { result: undefined, issues };
  }
  const o = v as Record<string, unknown>;
  const known = typeof o.kind === 'string' ? KINDS[o.kind] : undefined;
  if (known === undefined || o.apiVersion !== known.apiVersion) {
    issues.push({
      file: doc.file,
      document: doc.document,
      path: at(known === undefined ? 'kind' : 'apiVersion'),
      message:
        known === undefined
          ? `kind ${JSON.stringify(o.kind)} is not a policy ward reads (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy): skipped`
          : `apiVersion must be ${known.apiVersion} for ${known.kind} (got ${JSON.stringify(o.apiVersion)})`,
      severity: known === undefined ? 'warning' : 'error',
    });
    return { result: undefined, issues };
  }
  const origin: Origin = { file: doc.file, document: doc.document };
  const ns = opts.defaultNamespace ?? 'default';
  const result =
    known.kind === 'NetworkPolicy'
      ? parseNetworkPolicy(o, origin, ns, { clusterName: opts.clusterName ?? 'default' })
      : parseCiliumPolicy(o, origin, ns);
  const meta = o.metadata as { name?: unknown; namespace?: unknown } | undefined;
  const name = typeof meta?.name === 'string' ? meta.name : '?';
  const policy =
    known.kind === 'CiliumClusterwideNetworkPolicy'
      ? `${known.kind}/${name}`
      : `${known.kind}/${typeof meta?.namespace === 'string' ? meta.namespace : ns}/${name}`;
  for (const e of result.errors) {
    issues.push({
      file: doc.file,
      document: doc.document,
      path: at(e.path),
      message: e.message,
      severity: 'error',
      policy,
    });
  }
  for (const w of result.warnings) {
    issues.push({
      file: doc.file,
      document: doc.document,
      path: at(w.path),
      message: w.message,
      severity: 'warning',
      policy,
    });
  }
  return { result, issues };
}

/** Parses documents into policies. Duplicate names keep the first by (file, document) order and report the rest. */
export function parseDocuments(docs: readonly RawDocument[], opts: ParseOptions = {}): ParsedManifests {
  const issues: PolicyIssue[] = [];
  const byKey = new Map<string, Policy>();
  const sorted = [...docs].sort(compareOrigin);
  for (const d of sorted) {
    const { result, issues: is } = parseDocument(d, opts);
    issues.push(...is);
    const p = result?.policy;
    if (p === undefined) continue;
    const prev = byKey.get(p.ref.key);
    if (prev !== undefined) {
      issues.push({
        file: d.file,
        document: d.document,
        path: 'metadata.name',
        message: `${p.ref.key} is defined twice; keeping the one in ${prev.ref.file}#${prev.ref.document}`,
        severity: 'error',
        policy: p.ref.key,
      });
      continue;
    }
    byKey.set(p.ref.key, p);
  }
  return { policies: [...byKey.values()], issues };
}

function compareOrigin(a: RawDocument, b: RawDocument): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.document !== b.document) return a.document - b.document;
  return a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0;
}

/** Reads files and directories and parses every policy in them. Unreadable files become issues. */
export async function loadManifests(
  paths: readonly string[],
  opts: ParseOptions = {},
): Promise<ParsedManifests> {
  const files = await expandPaths(paths);
  const docs: RawDocument[] = [];
  const issues: PolicyIssue[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (err) {
      issues.push({
        file: f,
        document: 0,
        path: '',
        message: `cannot read: ${(err as Error).message}`,
        severity: 'error',
      });
      continue;
    }
    const split = splitDocuments(f, text);
    docs.push(...split.docs);
    issues.push(...split.issues);
  }
  const parsed = parseDocuments(docs, opts);
  return { policies: parsed.policies, issues: [...issues, ...parsed.issues] };
}
