/**
 * Pure parts of a transaction: validating it, checking its expectations against a state,
 * and turning it into per-key operations (the same for a one-shot etcd transaction and for
 * a journalled one).
 */
import { ValidationError } from '../../core/errors.js';
import type { RefConflict, RefExpectation, RefValue, RepoState, Transaction } from '../meta-store.js';
import type { JournalOp, StoredPack } from './etcd-layout.js';

const PACK_SOURCES: ReadonlySet<string> = new Set(['receive', 'import', 'compact', 'gc']);

function checkText(value: unknown, what: string): void {
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

/** Whether a ref's actual value (undefined: absent) meets an expectation. */
export function meets(expected: RefExpectation, actual: RefValue | undefined): boolean {
  switch (expected.kind) {
    case 'any':
      return true;
    case 'must-exist':
      return actual !== undefined;
    case 'must-not-exist':
      return actual === undefined;
    case 'must-match':
      return actual !== undefined && actual.oid === expected.oid;
  }
}

/** The refs whose expectation fails against `state`, in transaction order, with actual values. */
export function findConflicts(state: RepoState, txn: Transaction): RefConflict[] {
  const conflicts: RefConflict[] = [];
  for (const change of txn.refs ?? []) {
    const actual = state.refs.get(change.name);
    if (!meets(change.expected, actual)) conflicts.push({ name: change.name, actual });
  }
  return conflicts;
}

/**
 * The per-key operations of `txn` applied to a state whose packs are `packs`, as version
 * `version`. Adding a visible pack is a no-op (it keeps its place); removing happens after
 * adding, so a pack both added and removed ends up absent, as in the store-backed store.
 */
export function planOps(packs: ReadonlyMap<string, StoredPack>, txn: Transaction, version: number): JournalOp[] {
  const ops: JournalOp[] = [];
  for (const change of txn.refs ?? []) {
    const value =
      change.value === null
        ? null
        : Object.freeze(change.value.peeled === undefined ? { oid: change.value.oid } : { oid: change.value.oid, peeled: change.value.peeled });
    ops.push({ kind: 'ref', name: change.name, value });
  }
  const removes = new Set(txn.removePacks ?? []);
  const added = new Set<string>();
  let seq = 0;
  for (const { name, size, objects, createdMs, source } of txn.addPacks ?? []) {
    if (packs.has(name) || added.has(name) || removes.has(name)) continue;
    added.add(name);
    const record = Object.freeze({ name, size, objects, createdMs, source });
    ops.push({ kind: 'pack', name, pack: { record, addedIn: version, seq } });
    seq += 1;
  }
  for (const name of removes) if (packs.has(name)) ops.push({ kind: 'pack', name, pack: null });
  return ops;
}
