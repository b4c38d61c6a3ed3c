// SPIFFE IDs (spiffe://<trust-domain><path>) parsed exactly per the SPIFFE ID standard: lowercase
// `spiffe://` only; trust domain of a-z 0-9 . - _ (at most 255 bytes); path segments of a-z A-Z 0-9 . - _
// with no empty, `.` or `..` segment and no trailing slash; no percent-encoding, query, fragment,
// userinfo or port (those characters are outside both charsets). IDs over 2048 bytes are refused.
import { SvidError, SvidErrorCode } from './errors.ts';

export const SPIFFE_SCHEME_PREFIX = 'spiffe://';
export const MAX_SPIFFE_ID_LENGTH = 2048;
export const MAX_TRUST_DOMAIN_LENGTH = 255;
/** Cilium's trust domain, the default of ward's identity scheme. */
export const DEFAULT_TRUST_DOMAIN = 'spiffe.cilium';

export interface SpiffeId {
  /** The whole ID, e.g. `spiffe://spiffe.cilium/identity/76513`. */
  readonly id: string;
  readonly trustDomain: string;
  /** Empty for a trust-domain ID, else starts with `/`. */
  readonly path: string;
}

function isTrustDomainChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2e || // .
    c === 0x2d || // -
    c === 0x5f // _
  );
}

function isPathChar(c: number): boolean {
  return isTrustDomainChar(c) || (c >= 0x41 && c <= 0x5a); // plus A-Z
}

function bad(input: string, why: string): SvidError {
  return new SvidError(SvidErrorCode.BAD_SPIFFE_ID, `invalid SPIFFE ID ${JSON.stringify(input)}: ${why}`);
}

function describeChar(c: number): string {
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`;
}

/** Checks a trust-domain name; returns the reason it is invalid, or undefined. */
export function trustDomainProblem(td: string): string | undefined {
  if (td.length === 0) return 'trust domain is missing';
  if (Buffer.byteLength(td) > MAX_TRUST_DOMAIN_LENGTH) {
    return `trust domain is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`;
  }
  for (let i = 0; i < td.length; i++) {
    const c = td.charCodeAt(i);
    if (!isTrustDomainChar(c)) {
      return `trust domain has a bad character ${describeChar(c)} (only a-z 0-9 . - _ are allowed)`;
    }
  }
  return undefined;
}

/** Checks a path (empty, or starting with `/`); returns the reason it is invalid, or undefined. */
export function pathProblem(path: string): string | undefined {
  if (path.length === 0) return undefined;
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with /';
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const seg = path.slice(segStart, i);
      if (seg.length === 0)
        return i === path.length ? 'path has a trailing slash' : 'path has an empty segment';
      if (seg === '.' || seg === '..') return `path has a dot segment '${seg}'`;
      segStart = i + 1;
      continue;
    }
    if (!isPathChar(c)) {
      return `path has a bad character ${describeChar(c)} (only a-z A-Z 0-9 . - _ are allowed)`;
    }
  }
  return undefined;
}

/** Parses and validates a SPIFFE ID; throws SvidError SVID_BAD_SPIFFE_ID naming the broken rule. */
export function parseSpiffeId(input: string): SpiffeId {
  if (input.length === 0) throw bad(input, 'empty');
  if (Buffer.byteLength(input) > MAX_SPIFFE_ID_LENGTH) {
    throw bad(input.slice(0, 64), `longer than ${MAX_SPIFFE_ID_LENGTH} bytes`);
  }
  if (!input.startsWith(SPIFFE_SCHEME_PREFIX)) throw bad(input, "scheme must be 'spiffe://' (lowercase)");
  const rest = input.slice(SPIFFE_SCHEME_PREFIX.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const tdWhy = trustDomainProblem(trustDomain);
  if (tdWhy !== undefined) throw bad(input, tdWhy);
  const pathWhy = pathProblem(path);
  if (pathWhy !== undefined) throw bad(input, pathWhy);
  return { id: input, trustDomain, path };
}

/** Like parseSpiffeId, but returns undefined instead of throwing. */
export function tryParseSpiffeId(input: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(input);
  } catch {
    return undefined;
  }
}

/**
 * A trust domain from a bare name (`example.org`) or from any SPIFFE ID (`spiffe://example.org/x`), as
 * go-spiffe accepts both (Workload API map keys come in either form).
 */
export function parseTrustDomain(input: string): string {
  if (input.includes(':') || input.includes('/')) return parseSpiffeId(input).trustDomain;
  const why = trustDomainProblem(input);
  if (why !== undefined) {
    throw new SvidError(
      SvidErrorCode.BAD_TRUST_DOMAIN,
      `invalid trust domain ${JSON.stringify(input)}: ${why}`,
    );
  }
  return input;
}

/** `spiffe://<td>`, the trust domain's own ID. */
export function trustDomainId(trustDomain: string): string {
  return `${SPIFFE_SCHEME_PREFIX}${parseTrustDomain(trustDomain)}`;
}

/** Builds an ID from a trust domain and a path, validating both. */
export function makeSpiffeId(trustDomain: string, path: string): SpiffeId {
  return parseSpiffeId(`${SPIFFE_SCHEME_PREFIX}${trustDomain}${path}`);
}

// ---- the two ID schemes ward speaks --------------------------------------------------------------------

export type IdScheme = 'identity' | 'ns-sa';

/** Cilium's scheme: `spiffe://<td>/identity/<numeric security identity>`. */
export function identitySpiffeId(numericIdentity: number, trustDomain = DEFAULT_TRUST_DOMAIN): string {
  if (!Number.isSafeInteger(numericIdentity) || numericIdentity < 0) {
    throw bad(String(numericIdentity), 'a numeric identity must be a non-negative integer');
  }
  return makeSpiffeId(trustDomain, `/identity/${numericIdentity}`).id;
}

/** The Kubernetes scheme: `spiffe://<td>/ns/<namespace>/sa/<service account>`. */
export function namespaceSpiffeId(namespace: string, serviceAccount: string, trustDomain: string): string {
  for (const [what, v] of [
    ['namespace', namespace],
    ['service account', serviceAccount],
  ] as const) {
    if (v.length === 0 || v.includes('/')) throw bad(v, `a ${what} must be one non-empty path segment`);
  }
  return makeSpiffeId(trustDomain, `/ns/${namespace}/sa/${serviceAccount}`).id;
}

export type WorkloadName =
  | { readonly scheme: 'identity'; readonly trustDomain: string; readonly identity: number }
  | {
      readonly scheme: 'ns-sa';
      readonly trustDomain: string;
      readonly namespace: string;
      readonly serviceAccount: string;
    };

/** Reads an ID back into one of the two schemes, or undefined when it follows neither. */
export function parseWorkloadName(input: string): WorkloadName | undefined {
  const id = tryParseSpiffeId(input);
  if (id === undefined) return undefined;
  const ident = /^\/identity\/(0|[1-9][0-9]{0,15})$/.exec(id.path);
  if (ident?.[1] !== undefined) {
    const n = Number(ident[1]);
    if (Number.isSafeInteger(n)) return { scheme: 'identity', trustDomain: id.trustDomain, identity: n };
  }
  const nssa = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id.path);
  if (nssa?.[1] !== undefined && nssa[2] !== undefined) {
    return { scheme: 'ns-sa', trustDomain: id.trustDomain, namespace: nssa[1], serviceAccount: nssa[2] };
  }
  return undefined;
}
