/**
 * A transaction as ONE etcd transaction (see etcd-meta.ts): the compares (every expected old
 * value, the version read, "no journal pending"), the writes (refs, packs, HEAD, version+1,
 * a token in `last-txn`), and a failure branch reading the compared keys, which `lostRace`
 * turns into conflicts from one revision, a reason to retry, or the news that an earlier
 * send of this very request was applied.
 */
import { randomBytes } from 'node:crypto';
import type { ICompare, IRequestOp } from 'etcd3';
import type { RefChange, RefConflict, Transaction } from '../meta-store.js';
import type { TxnResult } from './etcd-connection.js';
import { corrupt, decodeRef, decodeVersion, encodeRef, type EtcdLayout, type JournalOp } from './etcd-layout.js';
import { absent, journalOpRequest, OP_OVERHEAD_BYTES, present, putOp, rangeOp, requestBytes, valueIs } from './etcd-ops.js';
import type { RepoCache } from './repo-cache.js';
import { meets, planOps } from './transact-plan.js';

/** A transaction ready to send (see the header). */
export interface SmallPlan {
  readonly compare: ICompare[];
  readonly success: IRequestOp[];
  readonly failure: IRequestOp[];
  /** The refs whose expectations are compared, in failure-branch order after the first three reads. */
  readonly checked: readonly RefChange[];
  readonly ops: readonly JournalOp[];
  /** Written to `last-txn`: lets a retried request recognise that an earlier send was applied. */
  readonly token: string;
}

/** What a failed transaction saw. */
export interface LostRace {
  /** An earlier send was applied after all, at this revision. */
  readonly appliedAt?: number;
  /** Expectations that failed, with actual values (empty: retry). */
  readonly conflicts: RefConflict[];
  /** The version etcd holds. */
  readonly version: number;
  /** Whether a journal is pending (then the ref keys are not the whole truth). */
  readonly journal: boolean;
}

/** The one-transaction form of `txn` on `cache` (no journal pending), or undefined if it exceeds the limits. */
export function planSmall(
  layout: EtcdLayout,
  limits: { readonly maxTxnOps: number; readonly maxRequestBytes: number },
  id: string,
  cache: RepoCache,
  txn: Transaction,
): SmallPlan | undefined {
  const versionKey = layout.versionKey(id);
  const ops = planOps(cache.packEntries(), txn, cache.version + 1);
  const token = randomBytes(12).toString('hex');
  const compare = [valueIs(versionKey, String(cache.version)), absent(layout.journalKey(id))];
  const failure = [rangeOp(versionKey), rangeOp(layout.journalKey(id)), rangeOp(layout.lastTxnKey(id))];
  const checked: RefChange[] = [];
  let compareBytes = 0;
  for (const change of txn.refs ?? []) {
    const key = layout.refKey(id, change.name);
    const exp = change.expected;
    if (exp.kind === 'any') continue;
    if (exp.kind === 'must-not-exist') compare.push(absent(key));
    else if (exp.kind === 'must-exist') compare.push(present(key));
    else {
      // etcd compares bytes: use the stored bytes when the cache agrees, else our encoding.
      const stored = cache.storedRef(change.name);
      const raw = stored !== undefined && stored.value.oid === exp.oid ? stored.raw : encodeRef({ oid: exp.oid });
      compare.push(valueIs(key, raw));
      compareBytes += raw.length;
    }
    compareBytes += OP_OVERHEAD_BYTES + key.length;
    failure.push(rangeOp(key));
    checked.push(change);
  }
  const success = ops.map((op) =>
    journalOpRequest(
      op,
      (name) => layout.refKey(id, name),
      (name) => layout.packKey(id, name),
    ),
  );
  if (txn.setHead !== undefined) success.push(putOp(layout.headKey(id), txn.setHead));
  success.push(putOp(versionKey, String(cache.version + 1)), putOp(layout.lastTxnKey(id), token));
  const max = limits.maxTxnOps;
  if (compare.length > max || success.length > max || failure.length > max) return undefined;
  // Half the limit: the estimate leaves out protobuf framing.
  if (compareBytes + requestBytes(success) + requestBytes(failure) > limits.maxRequestBytes / 2) return undefined;
  return { compare, success, failure, checked, ops, token };
}

/** Reads a failed transaction's failure branch (see LostRace). */
export function lostRace(id: string, plan: SmallPlan, res: TxnResult): LostRace {
  const kvAt = (i: number) => res.responses[i]?.response_range?.kvs[0];
  const versionKv = kvAt(0);
  if (versionKv === undefined) throw corrupt(`repository ${id}`, 'its version key vanished');
  const version = decodeVersion(versionKv.value.toString('utf8'), `version of ${id}`);
  const journal = kvAt(1) !== undefined;
  const last = kvAt(2);
  if (res.retried && last !== undefined && last.value.toString('utf8') === plan.token) {
    return { appliedAt: Number(last.mod_revision), conflicts: [], version, journal };
  }
  const conflicts: RefConflict[] = [];
  // With a journal pending the ref keys are not the whole truth: re-read instead.
  if (!journal) {
    plan.checked.forEach((change, i) => {
      const kv = kvAt(i + 3);
      const actual = kv === undefined ? undefined : decodeRef(kv.value.toString('utf8'), `ref ${change.name} of ${id}`);
      if (!meets(change.expected, actual)) conflicts.push({ name: change.name, actual });
    });
  }
  return { conflicts, version, journal };
}
