// The inventory domain's facade: IP → workload (name, namespace, labels, service account, node,
// numeric identity) and the SPIFFE ID that follows from the identity.
//
//   const inv = await loadInventoryFile('inventory.yaml', nodeName);   // or a source, or Kubernetes
//   const peer = inv.peer(ip);             // what decide() takes: pod, reserved:host/remote-node, world
//   const w = inv.lookup(ip);              // Workload | undefined
//   inv.spiffeId(ip)                       // spiffe://spiffe.cilium/identity/<n> (or 'ns-sa' scheme)
export type { InventoryErrorCode } from './errors.ts';
export { InventoryError } from './errors.ts';
export type { InventorySource } from './file-source.ts';
export { createFileInventorySource } from './file-source.ts';
export type { SpiffeScheme } from './identity.ts';
export { assignIdentities, DEFAULT_TRUST_DOMAIN, homeSlot, spiffeIdFor } from './identity.ts';
export type { Inventory, InventoryInput, Workload, WorkloadInput } from './inventory.ts';
export { buildInventory, worldPeer } from './inventory.ts';
export type { InventoryFile } from './inventory-file.ts';
export { inventoryFileSchema, loadInventoryFile, parseInventory } from './inventory-file.ts';
export { inventoryFromKube } from './kubernetes-inventory.ts';
