// The inventory file (standalone hosts, the VM pair): one YAML or JSON document. Format in docs/policy.md.
//
//   cluster: default            # cluster name (io.cilium.k8s.policy.cluster), default "default"
//   clusterId: 0                # 0..255, high byte of derived identities
//   namespaces:                 # namespace → its labels (kubernetes.io/metadata.name is implied)
//     default: { team: web }
//   nodes:
//     - { name: vm-a, ips: [192.168.10.1] }
//   workloads:
//     - name: client1
//       namespace: default
//       labels: { app: client1 }
//       serviceAccount: default   # default "default"
//       node: vm-a
//       ips: [10.0.1.10]
//       identity: 76513           # optional: pin a numeric identity (else derived)
//       ports: { http: 80 }       # optional: named container ports
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { z } from 'zod';
import { familyOf } from '../net/address.ts';
import { InventoryError } from './errors.ts';
import { buildInventory, type Inventory, type InventoryInput } from './inventory.ts';

const ip = z
  .string()
  .refine((v) => familyOf(v) !== undefined, { message: 'must be an IPv4 or IPv6 address' });
const labels = z.record(z.string(), z.string());

export const inventoryFileSchema = z.strictObject({
  cluster: z.string().min(1).max(32).default('default'),
  clusterId: z.number().int().min(0).max(255).default(0),
  namespaces: z.record(z.string(), labels).default({}),
  nodes: z.array(z.strictObject({ name: z.string().min(1), ips: z.array(ip).min(1) })).default([]),
  workloads: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        namespace: z.string().min(1).default('default'),
        labels: labels.default({}),
        serviceAccount: z.string().min(1).default('default'),
        node: z.string().min(1).optional(),
        ips: z.array(ip).min(1),
        identity: z.number().int().min(256).max(16_777_215).optional(),
        ports: z.record(z.string(), z.number().int().min(1).max(65535)).optional(),
      }),
    )
    .default([]),
});

export type InventoryFile = z.output<typeof inventoryFileSchema>;

export function inventoryInputFromFile(f: InventoryFile, localNode?: string): InventoryInput {
  return {
    clusterName: f.cluster,
    clusterId: f.clusterId,
    namespaces: f.namespaces,
    nodes: f.nodes,
    localNode,
    workloads: f.workloads.map((w) => ({
      name: w.name,
      namespace: w.namespace,
      labels: w.labels,
      serviceAccount: w.serviceAccount,
      node: w.node,
      ips: w.ips,
      identity: w.identity,
      namedPorts: w.ports,
    })),
  };
}

/** Parses inventory text (YAML or JSON). Errors name the field path. */
export function parseInventory(text: string, origin: string, localNode?: string, revision = 0): Inventory {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new InventoryError('INV_BAD_FILE', `${origin}: not valid YAML: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const r = inventoryFileSchema.safeParse(raw ?? {});
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '<root>'}: ${i.message}`).join('; ');
    throw new InventoryError('INV_BAD_FILE', `${origin}: ${msg}`);
  }
  return buildInventory(inventoryInputFromFile(r.data, localNode), revision);
}

export async function loadInventoryFile(path: string, localNode?: string, revision = 0): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InventoryError('INV_BAD_FILE', `${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseInventory(text, path, localNode, revision);
}
