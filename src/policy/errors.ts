// Policy-domain errors. Every code is stable: scripts, tests and the flow log match on it.
import { WardError } from '../errors.ts';

export type PolicyErrorCode =
  /** A manifest failed validation (schema or Cilium's own rule checks). */
  | 'POL_INVALID_MANIFEST'
  /** A file could not be read or parsed as YAML/JSON. */
  | 'POL_UNREADABLE'
  /** A document of a kind ward does not handle. */
  | 'POL_UNSUPPORTED_KIND'
  /** Bad input to decide()/trace (an address, a port, a protocol). */
  | 'POL_BAD_INPUT'
  /** The Kubernetes API answered something ward cannot use. */
  | 'POL_KUBE_API';

/** One problem in one document: where it is, and what is wrong. */
export interface PolicyIssue {
  /** File the document came from, or a Kubernetes object reference (`kube:<kind>/<ns>/<name>`). */
  readonly file: string;
  /** 0-based index of the document in a multi-document file (0 for a single document). */
  readonly document: number;
  /** Field path inside the document, e.g. `spec.ingress[0].toPorts[0].ports[0].endPort`. */
  readonly path: string;
  readonly message: string;
  /** `error`: the policy is rejected; `warning`: it is enforced, but something is not modelled. */
  readonly severity: 'error' | 'warning';
  /** `<kind>/<namespace>/<name>` when known. */
  readonly policy?: string;
}

export function formatIssue(i: PolicyIssue): string {
  const where = `${i.file}#${i.document}${i.path === '' ? '' : ` ${i.path}`}`;
  return `${where}: ${i.severity === 'warning' ? 'warning: ' : ''}${i.message}${i.policy === undefined ? '' : ` (${i.policy})`}`;
}

export class PolicyError extends WardError {
  readonly issues: readonly PolicyIssue[];

  constructor(code: PolicyErrorCode, message: string, options?: { cause?: unknown; issues?: PolicyIssue[] }) {
    super(code, message, options);
    this.name = 'PolicyError';
    this.issues = options?.issues ?? [];
  }
}
