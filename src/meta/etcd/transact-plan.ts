/**
 * Pure parts of a transaction: validating it, checking its expectations against a state,
 * and turning it into per-key operations (the same for a one-shot etcd transaction and for
 * a journalled one).
 */
import type { RefConflict, RefExpectation, RefValue, RepoState, Transaction } from '../meta-store.js';
import type { JournalOp, StoredPack } from './etcd-layout.js';



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
