// GET /config_dump: what this ward runs with, as ztunnel's admin API shows it: the effective (validated,
// defaulted, env-overridden) configuration, the inventory, a summary of the policy snapshot, and the
// identities held, each with serial and expiry. Never a private key: the dump is built from fields chosen
// one by one, and the serialised text is scanned for key material before it is sent.
import type { Config } from '../config/schema.ts';
import type { Workload } from '../inventory/index.ts';
import { formatIssue } from '../policy/errors.ts';
import type { PolicySnapshot } from '../policy/snapshot.ts';
import type { NodeStatus } from './node-status.ts';

export interface ConfigDumpInput {
  readonly config: Readonly<Config>;
  readonly status: NodeStatus;
  readonly workloads: readonly Workload[] | null;
  readonly policy: PolicySnapshot | null;
  /** Trust domains of the bundles held, with how many CA certificates each. */
  readonly bundles: readonly { trustDomain: string; authorities: number }[];
}

export function buildConfigDump(i: ConfigDumpInput): Record<string, unknown> {
  const s = i.status;
  return {
    node: s.node,
    version: s.version,
    phase: s.phase,
    config: i.config,
    inventory:
      i.workloads === null
        ? null
        : i.workloads.map((w) => ({
            name: w.name,
            namespace: w.namespace,
            node: w.node ?? null,
            ips: w.ips,
            labels: w.labels,
            serviceAccount: w.serviceAccount,
            identity: w.identity,
            identitySource: w.identitySource,
            local: w.node === s.node,
          })),
    policy:
      i.policy === null
        ? null
        : {
            revision: i.policy.revision,
            clusterName: i.policy.clusterName,
            policies: i.policy.policies.map((p) => ({
              key: p.ref.key,
              kind: p.ref.kind,
              namespace: p.ref.namespace,
              name: p.ref.name,
              rules: p.rules.length,
            })),
            rejected: i.policy.issues.filter((x) => x.severity === 'error').map(formatIssue),
            warnings: i.policy.issues.filter((x) => x.severity === 'warning').map(formatIssue),
          },
    identities:
      s.svid === null
        ? null
        : {
            source: s.svid.kind,
            sourceState: s.svid.sourceState,
            storeState: s.svid.storeState,
            svids: s.svid.identities,
            bundles: i.bundles,
          },
    localWorkloads: s.localWorkloads,
  };
}

/** Markers and DER prefixes of private keys: PEM armour, and PKCS#8 / SEC1 / PKCS#1 structures. */
const KEY_PATTERNS: readonly RegExp[] = [
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/,
  /-----BEGIN ENCRYPTED PRIVATE KEY-----/,
  // base64 of the PKCS#8 PrivateKeyInfo opening (SEQUENCE, INTEGER 0, AlgorithmIdentifier) as Node encodes it
  /MIG[0-9A-Za-z+/]AgEAMBMGByqGSM49AgEG/,
  /MC4CAQAwBQYDK2Vw/,
  /MIIE[0-9A-Za-z+/]{2}IBADANBgkqhkiG9w0BAQEFAAS/,
];

/** Throws if the text holds something that looks like a private key. */
export function assertNoKeyMaterial(text: string): void {
  for (const p of KEY_PATTERNS) {
    if (p.test(text)) throw new Error(`refusing to send key material (matched ${p.source})`);
  }
}
