/**
 * Moving the refs of a push in one meta transaction (DESIGN.md section 5 step 4), with the
 * pack published in the same transaction. Atomic pushes are all-or-nothing; otherwise a ref
 * whose expected old value lost the race is dropped and the rest retried, as git's
 * REF_TRANSACTION_ALLOW_FAILURE reports per ref. Reasons use git's wording
 * (refs.c ref_transaction_error_msg).
 */
import { ZERO_OID } from '../git/hash/object-id.js';
import { isDelete } from '../git/protocol/receive-commands.js';
import type { PackRecord, RefChange, RefConflict, Transaction } from '../meta/meta-store.js';
import type { Repository } from '../repo/repository.js';
import type { CommandState, Say } from './receive-checks.js';

/** The change for one command; `oldKnown` says whether a delete's old id names an object we have. */
export function refChange(c: CommandState, oldKnown: boolean | undefined): RefChange {
  const { oldOid, newOid, name } = c.cmd;
  const del = isDelete(c.cmd);
  let expected: RefChange['expected'];
  if (oldOid === ZERO_OID) expected = del ? { kind: 'any' } : { kind: 'must-not-exist' };
  // git deletes a ref whose old id it cannot parse without comparing (update(): "allowing deletion of corrupt ref").
  else if (del && oldKnown === false) expected = { kind: 'any' };
  else expected = { kind: 'must-match', oid: oldOid };
  const value = del ? null : c.peeled === undefined ? { oid: newOid } : { oid: newOid, peeled: c.peeled };
  return { name, expected, value };
}

/** git's reason for a lost expectation, and the detail it prints. */
export function conflictReason(c: CommandState, conflict: RefConflict): { reason: string; detail: string } {
  const { name, oldOid } = c.cmd;
  if (conflict.actual === undefined) {
    return { reason: 'reference does not exist', detail: `cannot lock ref '${name}': unable to resolve reference '${name}'` };
  }
  if (oldOid === ZERO_OID) {
    return { reason: 'reference already exists', detail: `cannot lock ref '${name}': reference already exists` };
  }
  return {
    reason: 'incorrect old value provided',
    detail: `cannot lock ref '${name}': is at ${conflict.actual.oid} but expected ${oldOid}`,
  };
}

function transaction(live: readonly CommandState[], record: PackRecord | undefined, oldKnown: ReadonlyMap<string, boolean>): Transaction {
  const needsPack = record !== undefined && live.some((c) => !isDelete(c.cmd));
  return {
    refs: live.map((c) => refChange(c, oldKnown.get(c.cmd.name))),
    ...(needsPack ? { addPacks: [record] } : {}),
  };
}

/** All or nothing: on a lost race the losers get git's reason and the others "atomic transaction failed". */
export async function applyAtomic(
  repo: Repository,
  live: readonly CommandState[],
  record: PackRecord | undefined,
  oldKnown: ReadonlyMap<string, boolean>,
  say: Say,
): Promise<void> {
  const res = await repo.updateRefs(transaction(live, record, oldKnown));
  if (res.ok) return;
  const byName = new Map(res.conflicts.map((x) => [x.name, x]));
  for (const c of live) {
    const conflict = byName.get(c.cmd.name);
    if (conflict === undefined) continue;
    const { reason, detail } = conflictReason(c, conflict);
    say(`error: ${detail}\n`);
    c.error = reason;
  }
  for (const c of live) c.error ??= 'atomic transaction failed';
}

/** Per ref: drop the refs that lost their race and retry with the rest until one transaction commits. */
export async function applyNonAtomic(
  repo: Repository,
  live: readonly CommandState[],
  record: PackRecord | undefined,
  oldKnown: ReadonlyMap<string, boolean>,
  say: Say,
): Promise<void> {
  let pending = [...live];
  // Each round removes at least one command, so this ends.
  while (pending.length > 0) {
    const res = await repo.updateRefs(transaction(pending, record, oldKnown));
    if (res.ok) return;
    const byName = new Map(res.conflicts.map((x) => [x.name, x]));
    const next: CommandState[] = [];
    for (const c of pending) {
      const conflict = byName.get(c.cmd.name);
      if (conflict === undefined) {
        next.push(c);
        continue;
      }
      const { reason, detail } = conflictReason(c, conflict);
      say(`error: ${detail}\n`);
      c.error = reason;
    }
    if (next.length === pending.length) {
      // A failure that names no ref we sent: nothing can be retried safely.
      say('error: failed to update refs\n');
      for (const c of next) c.error = 'failed to update refs';
      return;
    }
    pending = next;
  }
}
