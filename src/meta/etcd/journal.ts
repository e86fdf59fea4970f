/**
 * Changes too big for one etcd transaction (more than `--max-txn-ops` operations or
 * `--max-request-bytes` bytes), made all-or-nothing by indirection:
 *
 * 1. Write the change's operations as chunk keys `repos/<id>/~journal/<txn>/<n>`. Nothing
 *    reads them yet; a writer that fails deletes them (stale leftovers go after an hour).
 * 2. Commit with ONE transaction comparing the version read and "no journal pending" (and
 *    that every chunk is still there): it puts the pointer `repos/<id>/journal` and
 *    version+1 (and HEAD). This is the linearization point: readers read the pointer and
 *    its chunks at the same revision as the other keys and lay the operations over them.
 * 3. Fold: copy the operations onto the ordinary keys in transactions of allowed size, each
 *    comparing that the pointer is unchanged, then delete the pointer and the chunks in one
 *    more. Folding is idempotent, so anyone may finish it (a crashed writer's fold is
 *    finished by the next writer of that repository). Other writers compare "no journal
 *    pending", so nothing interleaves with a fold.
 */
import { randomBytes } from 'node:crypto';
import { LimitError } from '../../core/errors.js';
import { prefixEnd, type EtcdConnection } from './etcd-connection.js';
import { encodeChunk, encodePointer, type EtcdLayout, type JournalOp } from './etcd-layout.js';
import { absent, deleteOp, deletePrefixOp, journalOpRequest, modIs, present, putOp, rangeOp, requestBytes, valueIs } from './etcd-ops.js';
import type { PendingJournal } from './repo-cache.js';

/** Chunk sets older than this with no pointer are leftovers of crashed writers. */
const STALE_CHUNKS_MS = 60 * 60_000;

/** What the journal needs from the meta store. */
export interface JournalContext {
  readonly conn: EtcdConnection;
  readonly layout: EtcdLayout;
  readonly maxTxnOps: number;
  readonly maxRequestBytes: number;
  readonly clock: () => number;
}

/** A committed journal: the revision of its commit and the pointer's mod revision (the same). */
export interface JournalCommit {
  readonly revision: number;
  readonly journal: PendingJournal;
}

/** Bytes of journal per chunk key: well under the request limit. */
function chunkBytes(ctx: JournalContext): number {
  return Math.min(1024 * 1024, Math.floor(ctx.maxRequestBytes / 2));
}

/** Splits operations into chunks of at most `limit` encoded bytes. */
export function chunkOps(ops: readonly JournalOp[], limit: number): JournalOp[][] {
  const chunks: JournalOp[][] = [];
  let current: JournalOp[] = [];
  let bytes = 0;
  for (const op of ops) {
    const size = encodeChunk([op]).length;
    if (current.length > 0 && bytes + size > limit) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(op);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Writes the chunks and commits the pointer if the repository is still at `version` with no
 * journal pending; undefined when it moved (the caller re-reads and re-checks).
 */
export async function commitJournal(
  ctx: JournalContext,
  id: string,
  version: number,
  ops: readonly JournalOp[],
  head: string | undefined,
): Promise<JournalCommit | undefined> {
  const { conn, layout } = ctx;
  await dropStaleChunks(ctx, id);
  const chunks = chunkOps(ops, chunkBytes(ctx));
  if (chunks.length + 3 > ctx.maxTxnOps) {
    throw new LimitError('LIMIT_EXCEEDED', `etcd meta store: a change of ${ops.length} operations is too big for one transaction`);
  }
  const txn = `${ctx.clock().toString(36)}-${randomBytes(6).toString('hex')}`;
  const pointer = { txn, chunks: chunks.length, version: version + 1 };
  try {
    for (const [n, chunk] of chunks.entries()) {
      const key = layout.journalChunkKey(id, txn, n);
      const value = Buffer.from(encodeChunk(chunk));
      // Writing the same chunk twice is harmless: retried like a read.
      await conn.call(`write a journal chunk of ${id}`, true, (deadline) => conn.client.kv.put({ key: Buffer.from(key), value }, { deadline }));
    }
    const compare = [
      valueIs(layout.versionKey(id), String(version)),
      absent(layout.journalKey(id)),
      ...chunks.map((_, n) => present(layout.journalChunkKey(id, txn, n))),
    ];
    const success = [
      putOp(layout.journalKey(id), encodePointer(pointer)),
      putOp(layout.versionKey(id), String(version + 1)),
      putOp(layout.lastTxnKey(id), txn),
    ];
    if (head !== undefined) success.push(putOp(layout.headKey(id), head));
    const res = await conn.txn(`commit a change to ${id}`, compare, success, [rangeOp(layout.lastTxnKey(id))]);
    const last = res.responses[0]?.response_range?.kvs[0];
    const ours = !res.succeeded && res.retried && last !== undefined && last.value.toString('utf8') === txn;
    if (!res.succeeded && !ours) {
      await dropChunks(ctx, id, txn);
      return undefined;
    }
    // An earlier send that was applied after all committed at the token's revision.
    const revision = ours ? Number(last.mod_revision) : Number(res.header.revision);
    return { revision, journal: { pointer, modRevision: revision, ops } };
  } catch (err) {
    await dropChunks(ctx, id, txn);
    throw err;
  }
}

/** Copies a pending journal onto the ordinary keys, then removes it (see the header). */
export async function foldJournal(ctx: JournalContext, id: string, journal: PendingJournal): Promise<void> {
  const { conn, layout } = ctx;
  const guard = modIs(layout.journalKey(id), journal.modRevision);
  const requests = journal.ops.map((op) =>
    journalOpRequest(
      op,
      (name) => layout.refKey(id, name),
      (name) => layout.packKey(id, name),
    ),
  );
  const byteLimit = Math.floor(ctx.maxRequestBytes / 2);
  let batch: typeof requests = [];
  let batchBytes = 0;
  const flush = async (): Promise<boolean> => {
    if (batch.length === 0) return true;
    const res = await conn.txn(`fold a change into ${id}`, [guard], batch, []);
    batch = [];
    batchBytes = 0;
    return res.succeeded;
  };
  for (const req of requests) {
    const bytes = requestBytes([req]);
    if (batch.length + 1 > ctx.maxTxnOps || batchBytes + bytes > byteLimit) {
      if (!(await flush())) return; // someone else finished it
    }
    batch.push(req);
    batchBytes += bytes;
  }
  if (!(await flush())) return;
  await conn.txn(`finish folding a change into ${id}`, [guard], [deleteOp(layout.journalKey(id)), deletePrefixOp(layout.journalChunkPrefix(id, journal.pointer.txn))], []);
}

/** Deletes one chunk set, best effort (a leftover is collected later). */
async function dropChunks(ctx: JournalContext, id: string, txn: string): Promise<void> {
  const prefix = ctx.layout.journalChunkPrefix(id, txn);
  await ctx.conn.txn(`drop journal chunks of ${id}`, [], [deletePrefixOp(prefix)], []).catch(() => undefined);
}

/** Deletes chunk sets of crashed writers: older than STALE_CHUNKS_MS, and only while no pointer exists. */
async function dropStaleChunks(ctx: JournalContext, id: string): Promise<void> {
  const { conn, layout } = ctx;
  const prefix = layout.journalChunksPrefix(id);
  const key = Buffer.from(prefix);
  const res = await conn.call(`list journal chunks of ${id}`, false, (deadline) =>
    conn.client.kv.range({ key, range_end: prefixEnd(key), keys_only: true, limit: 10_000 }, { deadline }),
  );
  const stale = new Set<string>();
  for (const kv of res.kvs) {
    const txn = kv.key.toString('utf8').slice(prefix.length).split('/')[0] ?? '';
    const born = parseInt(txn.split('-')[0] ?? '', 36);
    if (Number.isFinite(born) && ctx.clock() - born > STALE_CHUNKS_MS) stale.add(txn);
  }
  for (const txn of stale) {
    await conn.txn(`drop stale journal chunks of ${id}`, [absent(layout.journalKey(id))], [deletePrefixOp(layout.journalChunkPrefix(id, txn))], []);
  }
}
