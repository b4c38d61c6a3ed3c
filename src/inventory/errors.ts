// Inventory-domain errors, with stable codes.
import { WardError } from '../errors.ts';

export type InventoryErrorCode =
  /** The inventory contradicts itself (an IP owned twice, an identity used for two label sets). */
  | 'INV_INVALID'
  /** The inventory file is unreadable or does not match the format in docs/policy.md. */
  | 'INV_BAD_FILE';

export class InventoryError extends WardError {
  constructor(code: InventoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'InventoryError';
  }
}
