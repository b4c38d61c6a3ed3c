// Starting configurations for `ward init`: one commented YAML document per way of running ward. Each
// must pass ward's own validation (src/config/load.ts) as written; test/unit/deploy/init.test.ts checks.

export const INIT_MODES = ['kubernetes', 'vm', 'lab'] as const;
export type InitMode = (typeof INIT_MODES)[number];

export interface InitOptions {
  /** node.name (vm, lab). Kubernetes takes it from WARD_NODE_NAME (the DaemonSet sets it). */
  readonly nodeName?: string;
  /** capture.podCidrs. Kubernetes takes them from WARD_CAPTURE_POD_CIDRS unless given here. */
  readonly podCidrs?: readonly string[];
  readonly trustDomain?: string;
}

/** The environment variables a kubernetes-mode config relies on (set by the DaemonSet). */
export const KUBERNETES_ENV = ['WARD_NODE_NAME', 'WARD_CAPTURE_POD_CIDRS'] as const;

const flow = (list: readonly string[]): string => `[${list.join(', ')}]`;

function kubernetes(o: InitOptions): string {
  const td = o.trustDomain ?? 'spiffe.cilium';
  const cidrs =
    o.podCidrs !== undefined && o.podCidrs.length > 0
      ? `  podCidrs: ${flow(o.podCidrs)}\n`
      : `  # podCidrs: this node's pod CIDRs. In the DaemonSet an init container reads them from the node's
  # CiliumNode (spec.ipam.podCIDRs) or Node (spec.podCIDRs) and sets WARD_CAPTURE_POD_CIDRS.
`;
  return `# ward in Kubernetes: one ward per node (DaemonSet, hostNetwork), policies and workloads watched in
# the API, SVIDs from the SPIRE agent's Delegated Identity API. Fields: docs/configuration.md.
# Environment overrides win over this file: WARD_<SECTION>_<FIELD>. The DaemonSet sets
# WARD_NODE_NAME (spec.nodeName) and WARD_CAPTURE_POD_CIDRS.
node:
  name: node                       # replaced by WARD_NODE_NAME
capture:
${cidrs}  backend: auto                    # follow the host's iptables (nft or legacy), as kube-proxy and Cilium do
  tproxyMark: 0x10                 # ward's marks stay inside 0xf0, clear of Cilium's 0x0f00 and kube-proxy's
  bypassMark: 0x20
  markMask: 0xf0
listeners:
  outboundPort: 15001
  inboundPlaintextPort: 15006
  inboundTunnelPort: 15008         # HBONE; Cilium's policy must admit TCP 15008 between pods
proxy:
  workers: auto                    # the CPUs of the container's cgroup quota
shutdown:
  drainTimeout: 10s                # keep terminationGracePeriodSeconds above this
admin:
  address: 127.0.0.1
  port: 15000
log:
  level: info
svid:
  source: delegated                # SPIRE agent admin socket; ward must be an authorized delegate
  trustDomain: ${td}
  idScheme: identity               # spiffe://<td>/identity/<numeric identity>, as Cilium's operator registers
  delegatedSocket: /run/spire/sockets/admin.sock
  selectors: [cilium:mutual-auth]
policy:
  source: kubernetes               # CNP, CCNP and NetworkPolicy
inventory:
  source: kubernetes               # Pods, Namespaces, CiliumIdentities, CiliumEndpoints
cluster:
  name: default                    # Cilium's cluster.name
  id: 0                            # Cilium's cluster.id
kubernetes:
  auth: in-cluster                 # the pod's service-account token
`;
}

function vm(o: InitOptions): string {
  const td = o.trustDomain ?? 'spiffe.cilium';
  return `# ward on a VM: a systemd service (deploy/systemd/ward.service), policies and the inventory from
# files, SVIDs from a local SPIRE agent or the development CA. Guide: docs/vm.md; fields:
# docs/configuration.md.
node:
  name: ${o.nodeName ?? 'vm-a'}
capture:
  # The subnets of this VM's workloads (containers or network namespaces on a bridge/veth). ward
  # captures in PREROUTING only, so processes of the VM itself are not captured.
  podCidrs: ${flow(o.podCidrs ?? ['10.10.1.0/24'])}
  backend: auto
proxy:
  workers: auto
shutdown:
  drainTimeout: 10s                # systemd's TimeoutStopSec must be longer
log:
  level: info
svid:
  source: delegated                # the SPIRE agent's admin socket, or \`ward ca serve --socket\`
  trustDomain: ${td}
  idScheme: identity
  delegatedSocket: /run/ward/ca.sock
  selectors: [cilium:mutual-auth]
policy:
  source: files
  directory: /etc/ward/policies    # CiliumNetworkPolicy / CCNP / NetworkPolicy YAML
  defaultNamespace: default
inventory:
  source: file
  file: /etc/ward/inventory.yaml   # the workloads of every VM (same file on each)
cluster:
  name: default                    # keep equal to the inventory's cluster/clusterId
  id: 0
`;
}

function lab(o: InitOptions): string {
  return `# ward in the namespace lab (docs/lab.md): node namespace "a" with pods on 198.19.1.0/24.
# Start it inside the node namespace: ip netns exec ward-<lab>-a ward run --config FILE
node:
  name: ${o.nodeName ?? 'a'}
capture:
  podCidrs: ${flow(o.podCidrs ?? ['198.19.1.0/24'])}
proxy:
  workers: 1
  connectTimeout: 1s
shutdown:
  drainTimeout: 5s
log:
  level: debug
# Policy and identities are off: every connection is allowed and carried in plaintext. Turn them on
# with files, e.g.:
#   policy: { source: files, directory: examples/seed/policies }
#   inventory: { source: file, file: examples/seed/inventory.yaml }
#   svid: { source: delegated, delegatedSocket: /tmp/ward-ca.sock }   # ward ca serve --socket …
policy:
  source: none
inventory:
  source: none
svid:
  source: none
`;
}

export function configTemplate(mode: InitMode, options: InitOptions = {}): string {
  switch (mode) {
    case 'kubernetes':
      return kubernetes(options);
    case 'vm':
      return vm(options);
    case 'lab':
      return lab(options);
  }
}
