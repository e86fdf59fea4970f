/** Small builders for etcd transaction compares and operations. */
import { CompareResult, CompareTarget, type ICompare, type IRequestOp } from 'etcd3';
import { prefixEnd } from './etcd-connection.js';
import { encodePack, encodeRef, type JournalOp } from './etcd-layout.js';

/** Per-operation overhead estimate in a request (framing, field tags). */
export const OP_OVERHEAD_BYTES = 32;

export function putOp(key: string, value: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(value) } };
}

export function deleteOp(key: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(key) } };
}

export function deletePrefixOp(prefix: string): IRequestOp {
  const key = Buffer.from(prefix);
  return { request_delete_range: { key, range_end: prefixEnd(key) } };
}

export function rangeOp(key: string): IRequestOp {
  return { request_range: { key: Buffer.from(key) } };
}

/** The key is absent (etcd compares a missing key's version as 0). */
export function absent(key: string): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Version, result: CompareResult.Equal, version: 0 };
}

/** The key exists. */
export function present(key: string): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Version, result: CompareResult.Greater, version: 0 };
}

/** The key holds exactly these bytes (fails for a missing key). */
export function valueIs(key: string, value: string): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Value, result: CompareResult.Equal, value: Buffer.from(value) };
}

/** The key was last written at this revision (0: absent). */
export function modIs(key: string, revision: number): ICompare {
  return { key: Buffer.from(key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: revision };
}

/** The etcd operation that gives a key a journal operation's final value. */
export function journalOpRequest(op: JournalOp, refKey: (name: string) => string, packKey: (name: string) => string): IRequestOp {
  if (op.kind === 'ref') return op.value === null ? deleteOp(refKey(op.name)) : putOp(refKey(op.name), encodeRef(op.value));
  return op.pack === null ? deleteOp(packKey(op.name)) : putOp(packKey(op.name), encodePack(op.pack));
}

/** Estimated request bytes of some operations. */
export function requestBytes(ops: readonly IRequestOp[]): number {
  let n = 0;
  for (const op of ops) {
    const req = op.request_put ?? op.request_delete_range ?? op.request_range;
    n += OP_OVERHEAD_BYTES + (req?.key?.length ?? 0) + (op.request_put?.value?.length ?? 0);
  }
  return n;
}
