/**
 * The shape checks every MetaStore applies to a transaction before touching storage, so all
 * implementations refuse the same malformed input with the same errors.
 */
import { ValidationError } from '../core/errors.js';
import type { Transaction } from './meta-store.js';

/** Why a pack may exist (PackRecord.source). */
export const PACK_SOURCES: ReadonlySet<string> = new Set(['receive', 'import', 'compact', 'gc']);

export function checkText(value: unknown, what: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError('ARG_INVALID', `${what} must be a non-empty string`);
  }
}

/** Validates a transaction's shape; throws ValidationError as the store-backed meta store does. */
export function checkTransaction(txn: Transaction): void {
  const seen = new Set<string>();
  for (const change of txn.refs ?? []) {
    checkText(change.name, 'a ref name');
    if (seen.has(change.name)) {
      throw new ValidationError('REF_BAD_NAME', `ref ${change.name} appears twice in one transaction`);
    }
    seen.add(change.name);
    const kind: unknown = change.expected?.kind;
    if (kind !== 'any' && kind !== 'must-exist' && kind !== 'must-not-exist' && kind !== 'must-match') {
      throw new ValidationError('ARG_INVALID', `ref ${change.name} has an unknown expectation ${String(kind)}`);
    }
    if (change.expected.kind === 'must-match') checkText(change.expected.oid, `the expected value of ${change.name}`);
    if (change.value !== null) {
      checkText(change.value.oid, `the new value of ${change.name}`);
      if (change.value.peeled !== undefined) checkText(change.value.peeled, `the peeled value of ${change.name}`);
    }
  }
  if (txn.setHead !== undefined) checkText(txn.setHead, 'HEAD');
  for (const pack of txn.addPacks ?? []) {
    checkText(pack.name, 'a pack name');
    const counts = [pack.size, pack.objects];
    if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0) || !Number.isFinite(pack.createdMs)) {
      throw new ValidationError('ARG_INVALID', `pack ${pack.name} has an invalid size, object count or time`);
    }
    if (!PACK_SOURCES.has(pack.source)) {
      throw new ValidationError('ARG_INVALID', `pack ${pack.name} has an unknown source ${String(pack.source)}`);
    }
  }
  for (const name of txn.removePacks ?? []) checkText(name, 'a pack name to remove');
}
