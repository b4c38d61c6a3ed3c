// The policy domain's facade: everything src/proxy, src/observe and the CLI may use.
//
//   const { policies, issues } = await loadManifests(['policies/']);     // or a PolicySource
//   const engine = createPolicyEngine(compileSnapshot(policies, { issues }));
//   const v = engine.decide({ src: inventory.peer(srcIp), dst: inventory.peer(dstIp), dport, protocol: 'TCP' });
//   if (v.verdict === 'allow' && v.authRequired) …mTLS…; v.egress.matched / v.ingress.matched for the flow log.

export type { ClusterConfig, InventoryConfig, KubernetesConfig, PolicyConfig } from './config.ts';
export {
  clusterConfigSchema,
  inventoryConfigSchema,
  kubernetesConfigSchema,
  policyConfigSchema,
} from './config.ts';
export type { ControlPlaneConfig, PolicyControlPlane, SourceHealth } from './control-plane.ts';
export { startPolicyControlPlane } from './control-plane.ts';
export type {
  AuthOutcome,
  Connection,
  DirectionVerdict,
  MatchedRule,
  PolicyPeer,
  Verdict,
} from './decide.ts';
export { decide } from './decide.ts';
export type { PolicyEngine, PolicyEngineOptions } from './engine.ts';
export { createPolicyEngine } from './engine.ts';
export type { PolicyErrorCode, PolicyIssue } from './errors.ts';
export { formatIssue, PolicyError } from './errors.ts';
export type { FilePolicySourceOptions } from './file-source.ts';
export { createFilePolicySource } from './file-source.ts';
export type { KubeConnection } from './kube/client.ts';
export { connectKube } from './kube/client.ts';
export type { WatchedResource } from './kube/resources.ts';
export { WATCHED_RESOURCES } from './kube/resources.ts';
export type { KubernetesSource, KubernetesSourceOptions, KubernetesState } from './kubernetes-source.ts';
export { createKubernetesSource } from './kubernetes-source.ts';
export type { Label, LabelSet, PodIdentityInput, ReservedIdentity } from './labels.ts';
export { labelSet, podIdentityLabels, RESERVED_IDENTITIES, reservedLabels, worldLabels } from './labels.ts';
export type { ParsedManifests, ParseOptions } from './manifest.ts';
export { loadManifests, parseDocuments, splitDocuments } from './manifest.ts';
export type { AuthMode, Direction, Policy, PolicyKind, Protocol } from './model.ts';
export type { CompileOptions, PolicySnapshot } from './snapshot.ts';
export { compileSnapshot } from './snapshot.ts';
export type { PolicySource } from './source.ts';
export type { TraceJson } from './trace.ts';
export { traceJson, traceText } from './trace.ts';
