/**
 * The core of git index-pack for a pack arriving as a stream: spool it to disk while
 * scanning it (one read from the network), hash every whole object on the way, resolve
 * deltas (ofs and ref, bases of a thin pack from the receiver), complete a thin pack by
 * appending its bases (--fix-thin), and build the idx v2. Checks beyond the pack format
 * (fsck, links) run through a PackVerifier, on whichever thread resolves the object.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { crc32 } from 'node:zlib';
import { ProtocolError, StoreError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import type { GitObject } from '../../git/object/object-type.js';
import { PACK_ENTRY_CODE, encodeEntryHeader } from '../../git/pack/entry.js';
import { deflate } from '../../git/pack/inflate.js';
import { PackScanner, encodePackHeader, type ScannedEntry } from '../../git/pack/scanner.js';
import type { ProgressFn } from '../repository.js';
import { AccelCollector, finishAccel } from '../accel/collector.js';
import { CODE_OFS_DELTA, EntryTable, longestDeltaChain, typeCode, typeName, writeObjectId } from './entry-table.js';
import { OidIndex, buildIdx } from './oid-index.js';
import { SpoolPackReader } from './pack-reader.js';
import { ProgressThrottle } from './progress.js';
import { DeltaResolver } from './resolve.js';
import type { SpoolFile } from './spool.js';
import { PackVerifier } from './verify.js';
import { ofsChildrenCsr, resolveInWorkers } from './worker-pool.js';

/** Length of a pack trailer (SHA-1). */
const TRAILER_LENGTH = 20;
/** Inflated deltas kept in memory from the scan; the rest are re-read from the spool. */
const DEFAULT_DELTA_MEMORY = 32 * 1024 * 1024;
/** Bases kept while walking a delta tree (git's core.deltaBaseCacheLimit default). */
const DEFAULT_BASE_CACHE = 96 * 1024 * 1024;
/** Initial table capacity is the header's count, but no more than this: a hostile header may claim millions. */
const INITIAL_CAPACITY_MAX = 1 << 16;
/** zlib level of appended thin bases: git's core.compression default for loose objects. */
const APPEND_LEVEL = 1;
/** Missing base ids named in the error message. */
const MISSING_SHOWN = 5;
/** Worker threads only pay for their start-up (tens of ms each) on packs with this many ofs-deltas. */
const WORKER_MIN_DELTAS = 20_000;
/** Spool blocks of this thread's reader while it resolves batches beside the workers (4 MiB). */
const LOCAL_BLOCKS = 16;
/** Default thread count ceiling: concurrent pushes share the machine. */
const THREADS_DEFAULT_MAX = 4;

/** How to index a pack stream. */
export interface IndexPackOptions {
  readonly maxObjects?: number;
  readonly maxObjectSize?: number;
  readonly maxPackSize?: number;
  /** Checks every distinct object of the pack (never thin bases); none when absent. */
  readonly verifier?: PackVerifier;
  /** Objects the receiver has, for the bases of a thin pack; without it every base must be in the pack. */
  readonly readBase?: (oid: ObjectId) => Promise<GitObject | undefined>;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ProgressFn | undefined;
  /** Bytes of inflated deltas kept from the scan (default 32 MiB). */
  readonly deltaMemory?: number;
  /** Bytes of bases kept during resolution (default 96 MiB). */
  readonly baseCacheMemory?: number;
  /**
   * Threads resolving deltas: 1 resolves on the calling thread; more use worker threads when
   * the pack has enough ofs-deltas to pay for them. Default: the CPUs available, at most 4.
   */
  readonly threads?: number;
  /** Fewest ofs-deltas for which worker threads are used (default 20,000; for tests and tuning). */
  readonly workerMinDeltas?: number;
  /** Build the pack's reachability accelerator (IndexedPack.accel); default true. */
  readonly accelerator?: boolean;
}

/** A pack spooled, resolved and indexed. */
export interface IndexedPack {
  /** Objects in the completed pack; 0 when no pack (or an empty one) arrived. */
  readonly objectCount: number;
  /** Trailer of the completed pack; undefined when objectCount is 0. */
  readonly checksum: ObjectId | undefined;
  /** Bytes of the completed pack in the spool file. */
  readonly packSize: number;
  /** The idx v2 of the completed pack; undefined when objectCount is 0. */
  readonly idx: Uint8Array | undefined;
  /** Bases taken from the receiver and appended (thin pack completion). */
  readonly thinBases: number;
  /** Entries whose id an earlier entry already had (kept in pack and idx, as git does without --strict). */
  readonly duplicates: number;
  /**
   * The reachability accelerator of the completed pack (accel/format.ts), unless disabled or
   * empty. Built on the first call, from records collected during resolution: callers first
   * finish (and free) their own checks, so the two never hold memory at once.
   */
  accelerator(): Uint8Array | undefined;
  readonly table: EntryTable;
  /** Object id -> first entry holding it. */
  readonly byOid: OidIndex;
  readonly reader: SpoolPackReader;
}

/** Spools `input` into `spool` and indexes it; the caller owns (and on failure removes) the spool. */
export async function indexPack(input: AsyncIterable<Uint8Array>, spool: SpoolFile, opts: IndexPackOptions = {}): Promise<IndexedPack> {
  const { signal } = opts;
  const scanner = new PackScanner({
    ...(opts.maxObjects === undefined ? {} : { maxObjects: opts.maxObjects }),
    ...(opts.maxObjectSize === undefined ? {} : { maxObjectSize: opts.maxObjectSize }),
    ...(opts.maxPackSize === undefined ? {} : { maxPackSize: opts.maxPackSize }),
  });
  let table: EntryTable | undefined;
  let byOid: OidIndex | undefined;
  const refBase = new Map<number, ObjectId>();
  const refChildren = new Map<ObjectId, number[]>();
  const deltas = new Map<number, Uint8Array>();
  const deltaMemory = opts.deltaMemory ?? DEFAULT_DELTA_MEMORY;
  const threads = opts.threads ?? Math.min(THREADS_DEFAULT_MAX, availableParallelism());
  const workerMinDeltas = opts.workerMinDeltas ?? WORKER_MIN_DELTAS;
  let deltaBytes = 0;
  let ofsDeltas = 0;
  // Worker threads re-read every delta from the spool: once they will run, keeping more is waste.
  let keepDeltas = true;
  let duplicates = 0;
  /** Entry number of the first base appended to complete a thin pack. */
  let firstThinBase = Infinity;
  const accel = opts.accelerator === false ? undefined : new AccelCollector();
  const verifier = opts.verifier;
  const receiving = new ProgressThrottle(opts.onProgress, 'Receiving objects', undefined);

  /** Records entry i, whose raw id is in the table: duplicates, checks, accelerator. */
  const record = (t: EntryTable, ids: OidIndex, i: number, data: Uint8Array, base?: number, baseData?: Uint8Array): void => {
    const type = t.type[i]!;
    const change = accel?.add(i, type, data, base, baseData);
    if (ids.add(i) >= 0) {
      t.duplicate[i] = 1;
      duplicates++;
      return;
    }
    // Entries shared with a base are linked through the base, unless it is a thin base (not checked).
    const sameAs = base !== undefined && base < firstThinBase ? change : undefined;
    if (verifier !== undefined && PackVerifier.checks(type)) verifier.check(t.oidHex(i), typeName(type), data, sameAs);
  };

  const onEntry = (e: ScannedEntry): void => {
    if (table === undefined) {
      const n = scanner.objectCount ?? 0;
      table = new EntryTable(Math.min(n, INITIAL_CAPACITY_MAX));
      byOid = new OidIndex(table, Math.min(n, INITIAL_CAPACITY_MAX));
      receiving.setTotal(n);
    }
    const t = table;
    const h = e.header;
    const kind = PACK_ENTRY_CODE[h.type];
    const i = t.add(e.offset, h.headerLength, e.packedLength, e.crc32, kind, h.size, scanner.objectCount ?? 0);
    if (kind < CODE_OFS_DELTA) {
      t.type[i] = kind;
      writeObjectId(t, i, typeName(kind), e.data);
      record(t, byOid!, i, e.data);
      return;
    }
    if (h.baseOffset !== undefined) {
      const b = t.findByOffset(h.baseOffset);
      if (b < 0) {
        throw new ProtocolError('PACK_BAD_DELTA', `pack entry at offset ${e.offset}: delta base offset ${h.baseOffset} is not the start of an entry`);
      }
      t.baseIndex[i] = b;
      if (++ofsDeltas >= workerMinDeltas && threads > 1 && keepDeltas) {
        keepDeltas = false;
        deltas.clear();
      }
    } else if (h.baseId !== undefined) {
      refBase.set(i, h.baseId);
      pushChild(refChildren, h.baseId, i);
    }
    if (keepDeltas && deltaBytes + e.data.length <= deltaMemory) {
      deltas.set(i, e.data);
      deltaBytes += e.data.length;
    }
  };

  // Pull chunks by hand: once the trailer is in, stop without closing the caller's stream.
  const it = input[Symbol.asyncIterator]();
  let received = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const r = await it.next();
      if (r.done === true) break;
      const chunk = r.value;
      if (chunk.length === 0) continue;
      received += chunk.length;
      for (const e of scanner.push(chunk)) onEntry(e);
      if (scanner.complete) {
        const extra = scanner.remainder().length;
        await spool.append(extra > 0 ? chunk.subarray(0, chunk.length - extra) : chunk);
        if (extra > 0) throw new ProtocolError('PROTO_BAD_REQUEST', `${extra} unexpected bytes after the pack trailer`);
        break;
      }
      await spool.append(chunk);
      if (table !== undefined) receiving.tick(table.count);
    }
  } catch (err) {
    await Promise.resolve(it.return?.()).catch(() => undefined);
    throw err;
  }
  const empty = (t: EntryTable): IndexedPack => {
    const ids = byOid ?? new OidIndex(t);
    return {
      objectCount: 0, checksum: undefined, packSize: 0, idx: undefined, thinBases: 0, duplicates: 0, accelerator: () => undefined, table: t, byOid: ids,
      reader: new SpoolPackReader(spool, t, refBase, ids),
    };
  };
  if (received === 0) return empty(new EntryTable(0));
  const scanned = scanner.end();
  await spool.flush();
  if (table === undefined) return empty(new EntryTable(0));
  const t: EntryTable = table;
  receiving.done(t.count);

  const ids: OidIndex = byOid!;
  const reader = new SpoolPackReader(spool, t, refBase, ids);
  const scannedCount = t.count;
  const deltaCount = ofsDeltas + refBase.size;
  const cacheLimit = opts.baseCacheMemory ?? DEFAULT_BASE_CACHE;
  const resolving = new ProgressThrottle(opts.onProgress, 'Resolving deltas', deltaCount);
  let resolvedElsewhere = 0;
  // ofs children by base entry (CSR); each base's list is handed out once (ofsTaken).
  const { childStart, childList } = ofsChildrenCsr(t);
  const ofsTaken = new Uint8Array(scannedCount);
  if (threads > 1 && ofsDeltas >= workerMinDeltas) {
    // Whole objects' ofs trees go to worker threads, which fill in types and raw ids.
    const roots: number[] = [];
    for (let i = 0; i < scannedCount; i++) if (!t.isDelta(i) && childStart[i + 1]! > childStart[i]!) roots.push(i);
    deltas.clear();
    // Every object gets an id, and (nearly) every one is named by another: size both tables once.
    ids.reserve(t.count);
    verifier?.reserveLinks(t.count);
    // This thread takes batches too, with a reader of its own (a small block cache, as a worker's).
    const localReader = new SpoolPackReader(spool, t, refBase, ids, LOCAL_BLOCKS);
    // Exactly as in a worker: a verifier per batch merged at its end; ids are added after the pool.
    const local = async (batch: Int32Array, stop: AbortSignal): Promise<number> => {
      const v = verifier === undefined ? undefined : new PackVerifier(verifier.config);
      const r = new DeltaResolver({
        table: t, reader: localReader,
        takeChildren: (i) => (childStart[i + 1]! > childStart[i]! ? childList.subarray(childStart[i]!, childStart[i + 1]!) : undefined),
        onResolved: (i, data, base, baseData) => {
          const type = t.type[i]!;
          const change = accel?.add(i, type, data, base, baseData);
          if (v !== undefined && PackVerifier.checks(type)) v.check(t.oidHex(i), typeName(type), data, change);
        },
        cacheLimit: Math.max(1, Math.floor(cacheLimit / threads)),
        signal: stop,
      });
      for (const root of batch) await r.resolveFrom(root);
      if (v !== undefined) verifier!.merge(v.exportState());
      return r.resolved;
    };
    resolvedElsewhere = await resolveInWorkers({
      table: t, childStart, childList, roots, spoolPath: spool.path, verifier, accel, threads, cacheLimit, signal, local,
      onProgress: (n) => resolving.tick(n),
    });
    for (const r of roots) ofsTaken[r] = 1;
    for (let i = 0; i < scannedCount; i++) {
      if (!t.isDelta(i) || t.type[i] === 0) continue;
      ofsTaken[i] = 1;
      if (ids.add(i) >= 0) {
        t.duplicate[i] = 1;
        duplicates++;
      }
    }
  }
  const refChildrenOf = (i: number): number[] | undefined => {
    if (refChildren.size === 0) return undefined;
    const oid = t.oidHex(i);
    const ref = refChildren.get(oid);
    if (ref !== undefined) refChildren.delete(oid);
    return ref;
  };
  const takeChildren = (i: number): ArrayLike<number> | undefined => {
    let ofs: Int32Array | undefined;
    if (i < scannedCount && ofsTaken[i] === 0) {
      ofsTaken[i] = 1;
      if (childStart[i + 1]! > childStart[i]!) ofs = childList.subarray(childStart[i]!, childStart[i + 1]!);
    }
    const ref = refChildrenOf(i);
    if (ofs === undefined) return ref;
    return ref === undefined ? ofs : [...ofs, ...ref];
  };
  const hasChildren = (i: number): boolean =>
    (ofsTaken[i] === 0 && childStart[i + 1]! > childStart[i]!) || (refChildren.size > 0 && refChildren.has(t.oidHex(i)));
  const resolver = new DeltaResolver({
    table: t, reader, takeChildren, deltas,
    onResolved: (i, data, base, baseData) => record(t, ids, i, data, base, baseData),
    cacheLimit,
    signal,
    onProgress: (n) => resolving.tick(resolvedElsewhere + n),
  });
  for (let i = 0; i < scannedCount; i++) {
    if (t.type[i] !== 0 && hasChildren(i)) await resolver.resolveFrom(i, t.isDelta(i) ? reader.readObject(i).data : undefined);
  }
  deltas.clear();
  const resolvedCount = (): number => resolvedElsewhere + resolver.resolved;

  // Thin pack: fetch missing bases in pack order (as git's fix_unresolved_deltas) and append them.
  let thinBases = 0;
  let end = scanned.packSize;
  if (resolvedCount() < deltaCount && opts.readBase !== undefined) {
    for (const [i, baseId] of refBase) {
      if (t.type[i] !== 0 || !refChildren.has(baseId)) continue;
      signal?.throwIfAborted();
      const obj = await opts.readBase(baseId);
      if (obj === undefined) continue;
      if (hashObject(obj.type, obj.data) !== baseId) {
        throw new StoreError('REPO_CORRUPT', `local object ${baseId} is corrupt (its content hashes differently)`);
      }
      if (thinBases === 0) {
        firstThinBase = t.count;
        end -= TRAILER_LENGTH;
        await spool.truncate(end);
      }
      thinBases++;
      const head = encodeEntryHeader(obj.type, obj.data.length);
      const body = deflate(obj.data, APPEND_LEVEL);
      const bytes = Buffer.concat([head, body]);
      const j = t.add(end, head.length, bytes.length, crc32(bytes), typeCode(obj.type), obj.data.length);
      t.type[j] = typeCode(obj.type);
      t.setOidHex(j, baseId);
      ids.add(j);
      accel?.add(j, t.type[j]!, obj.data);
      await spool.append(bytes);
      await spool.flush();
      reader.invalidate();
      end += bytes.length;
      await resolver.resolveFrom(j, obj.data);
    }
  }
  if (resolvedCount() < deltaCount) {
    const missing = [...refChildren.keys()];
    const shown = missing.slice(0, MISSING_SHOWN).join(', ');
    throw new ProtocolError(
      'PACK_DELTA_BASE_MISSING',
      `pack has ${deltaCount - resolvedCount()} unresolved deltas; missing base objects: ${shown}${missing.length > MISSING_SHOWN ? ', …' : ''}`,
    );
  }
  resolving.done(deltaCount);

  let checksum = scanned.checksum;
  if (thinBases > 0) {
    await spool.writeAt(encodePackHeader(t.count), 0);
    const h = createHash('sha1');
    for await (const chunk of spool.stream(0, end, signal)) h.update(chunk);
    const digest = h.digest();
    await spool.append(digest);
    await spool.flush();
    end += TRAILER_LENGTH;
    checksum = digest.toString('hex') as ObjectId;
    reader.invalidate();
  }
  const { idx, positionOf } = buildIdx(t, checksum);
  const longestChain = longestDeltaChain(t, (i) => {
    const base = refBase.get(i);
    return base === undefined ? undefined : ids.get(base);
  });
  let accelBytes: Uint8Array | undefined;
  let collector = accel;
  const accelerator = (): Uint8Array | undefined => {
    if (collector === undefined) return accelBytes;
    const c = collector;
    collector = undefined;
    accelBytes = finishAccel(c, {
      packChecksum: checksum,
      idx,
      entries: t.count,
      positionOf,
      typeOf: (i) => t.type[i]!,
      sizeOf: (i) => t.objectSize[i]!,
      selfContained: true,
      positionOfId: (raw, off) => {
        const e = ids.findRaw(raw, off);
        return e < 0 ? -1 : positionOf[e]!;
      },
      longestChain,
    });
    return accelBytes;
  };
  return { objectCount: t.count, checksum, packSize: end, idx, thinBases, duplicates, accelerator, table: t, byOid: ids, reader };
}

function pushChild<K>(map: Map<K, number[]>, key: K, child: number): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [child]);
  else list.push(child);
}
