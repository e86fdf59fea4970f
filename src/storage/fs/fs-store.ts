/**
 * The embedded ObjectStore: one directory, a key is a path under it (`a/b/c` -> `root/a/b/c`).
 *
 * Durability order (DESIGN.md section 3): every put streams into a uniquely named file under
 * `root/.tmp/`, fsyncs it, then publishes it: `rename` for plain puts (atomic replace, so a
 * reader sees the old or the new object, never a mix) or `link` for create-only puts (the
 * kernel refuses an existing name with EEXIST, which makes create-only atomic across
 * processes), and fsyncs the folder. A crash leaves at most a temp file, swept after an hour.
 * A deferred-durability put (PutOptions.deferDurability) publishes the same way but skips both
 * fsyncs; `sync()` does them later for every such put (fs-sync.ts). Until then a power loss
 * may lose it; on file systems that do not order a replacing rename after the new file's data
 * (ext4 does, by default), the key could even hold an empty file, which readers of blocks
 * detect by their checksums.
 *
 * Limits of the mapping: the first key component `.tmp` is reserved, and an object `a` and an
 * object `a/b` cannot both exist (one would need `a` to be a file and a folder; such a put
 * throws STORE_BAD_KEY, as MinIO's fs mode refuses it). Keys differing only in case collide
 * on case-insensitive file systems.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, StoreError } from '../../core/errors.js';
import { checkKey, checkPrefix } from '../key.js';
import type {
  ByteRange,
  GetOptions,
  ListOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  PutResult,
  SignalOptions,
} from '../object-store.js';
import { checkRange } from '../store-util.js';
import { errnoCode, fd, ioError, pathConflict, readAt, readInto, syncDir, syncPath, writeBody } from './fs-io.js';
import { walkPrefix } from './fs-list.js';
import { DeferredSyncs } from './fs-sync.js';

/** The temp folder under the root; reserved as a first key component. */
export const FS_TMP_DIR = '.tmp';
/** Temp files untouched for this long are left by crashed writers and swept at start. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Bytes read per chunk by getStream. */
const STREAM_CHUNK = 256 * 1024;
/** Buffers a getStream with `recycle` reads into in turn (it awaits recycle once per round). */
const STREAM_RING = 4;
/** Ranged reads up to this length skip the stat (the buffer is allocated up front). */
const SMALL_RANGE = 1024 * 1024;
/** How often a put retries when a concurrent delete pruned its folder under it. */
const PLACE_ATTEMPTS = 100;
/** Folders remembered as existing (skips a mkdir per put); cleared when full. */
const KNOWN_DIRS_MAX = 10_000;

/** Options of an FsStore. */
export interface FsStoreOptions {
  /** The data directory; created if missing. */
  readonly root: string;
  /** Age after which a temp file counts as left by a crash (default one hour). */
  readonly staleTempMs?: number;
}

const RESERVED_TOP: ReadonlySet<string> = new Set([FS_TMP_DIR]);
const ABSENT_CODES = new Set(['ENOENT', 'ENOTDIR', 'EISDIR']);

function notFound(key: string): NotFoundError {
  return new NotFoundError('STORE_NOT_FOUND', `no object at key ${key}`);
}

/** A directory-backed ObjectStore, safe for many processes sharing the directory. */
export class FsStore implements ObjectStore {
  readonly description: string;
  readonly blockSize = 1024 * 1024;
  private readonly root: string;
  private readonly tmpDir: string;
  private readonly knownDirs = new Set<string>();
  private readonly sweeping: Promise<void>;
  private readonly deferred = new DeferredSyncs(syncPath, { sync: (d) => fd.fsync(d, false), close: (d) => fd.close(d) });

  constructor(opts: FsStoreOptions) {
    this.root = path.resolve(opts.root);
    this.tmpDir = path.join(this.root, FS_TMP_DIR);
    this.description = `fs:${this.root}`;
    try {
      fs.mkdirSync(this.tmpDir, { recursive: true });
    } catch (err) {
      throw new StoreError('STORE_IO', `fs store: cannot create data directory ${this.root}`, { cause: err });
    }
    this.sweeping = this.sweepTemps(opts.staleTempMs ?? STALE_TEMP_MS);
  }

  async tryGet(key: string, opts: GetOptions = {}): Promise<Uint8Array | undefined> {
    const file = this.pathOf(key);
    if (opts.range !== undefined) checkRange(opts.range);
    opts.signal?.throwIfAborted();
    if (opts.range !== undefined && opts.range.length <= SMALL_RANGE) return this.readSmallRange(key, file, opts.range);
    const d = await openForRead(key, file);
    if (d === undefined) return undefined;
    try {
      const st = await fd.fstat(d);
      if (!st.isFile()) return undefined; // a folder (a prefix of other keys), not an object
      const start = Math.min(st.size, opts.range?.offset ?? 0);
      const end = Math.min(st.size, opts.range === undefined ? st.size : start + opts.range.length);
      return await fd.readAt(d, start, end - start);
    } catch (err) {
      throw ioError('read', key, err);
    } finally {
      await fd.close(d);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Uint8Array> {
    const data = await this.tryGet(key, opts);
    if (data === undefined) throw notFound(key);
    return data;
  }

  async *getStream(key: string, opts: GetOptions = {}): AsyncGenerator<Uint8Array> {
    const file = this.pathOf(key);
    if (opts.range !== undefined) checkRange(opts.range);
    opts.signal?.throwIfAborted();
    // The open handle pins this version of the object: a concurrent overwrite renames a new
    // file over the name and does not change what we read.
    const fh = await this.openForRead(key, file);
    if (fh === undefined) throw notFound(key);
    try {
      let size: number;
      try {
        size = (await fh.stat()).size;
      } catch (err) {
        throw ioError('read', key, err);
      }
      let pos = Math.min(size, opts.range?.offset ?? 0);
      const end = Math.min(size, opts.range === undefined ? size : pos + opts.range.length);
      const ring: Buffer[] = [];
      let turn = 0;
      while (pos < end) {
        opts.signal?.throwIfAborted();
        const length = Math.min(STREAM_CHUNK, end - pos);
        // With recycle: the ring's buffers are read into again once the consumer released
        // every chunk of the last round.
        if (opts.recycle !== undefined && turn === STREAM_RING) {
          await opts.recycle();
          turn = 0;
        }
        let chunk: Buffer;
        try {
          if (opts.recycle === undefined) {
            chunk = await readAt(fh, pos, length);
          } else {
            if (ring.length === turn) ring.push(Buffer.allocUnsafeSlow(STREAM_CHUNK));
            chunk = await readInto(fh, pos, ring[turn++]!.subarray(0, length));
          }
        } catch (err) {
          throw ioError('read', key, err);
        }
        if (chunk.byteLength === 0) break;
        pos += chunk.byteLength;
        yield chunk;
      }
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async head(key: string, opts: SignalOptions = {}): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    opts.signal?.throwIfAborted();
    try {
      const st = await fsp.stat(file);
      return st.isFile() ? { key, size: st.size, mtimeMs: st.mtimeMs } : undefined;
    } catch (err) {
      if (ABSENT_CODES.has(errnoCode(err) ?? '')) return undefined;
      throw ioError('head', key, err);
    }
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    const file = this.pathOf(key);
    opts.signal?.throwIfAborted();
    // Create-only on an existing key: answer without writing (linearizable: it existed now).
    if (opts.ifAbsent === true && (await this.existsAsFile(key, file))) return { created: false };
    const tmp = path.join(this.tmpDir, `${process.pid}-${randomBytes(12).toString('hex')}`);
    const defer = opts.deferDurability === true && opts.ifAbsent !== true;
    let published = false;
    // A deferred put of bytes keeps its temp file open for the later fsync (fs-sync.ts).
    let held = -1;
    // Errors of the body's iterator pass through as they are; fs errors are STORE_IO.
    try {
      let info: ObjectInfo;
      if (body instanceof Uint8Array) {
        const keep = defer && this.deferred.canHold();
        held = await this.writeTempBytes(key, tmp, body, opts.signal, !defer, keep);
        info = { key, size: body.byteLength, mtimeMs: Date.now() };
      } else {
        info = await this.writeTempStream(key, tmp, body, opts.signal, !defer);
      }
      opts.signal?.throwIfAborted();
      if (opts.ifAbsent === true) {
        // The link is the commit point; the temp name is removed in `finally`.
        if (!(await this.place(key, tmp, file, 'link'))) return { created: false };
      } else {
        await this.place(key, tmp, file, 'rename', !defer);
        published = true;
        if (defer) {
          this.deferred.record(file, path.dirname(file), held);
          held = -1;
        }
      }
      return { created: true, info };
    } finally {
      if (held >= 0) await fd.close(held);
      if (!published) await fsp.unlink(tmp).catch(() => undefined);
    }
  }

  async delete(key: string, opts: SignalOptions = {}): Promise<void> {
    const file = this.pathOf(key);
    opts.signal?.throwIfAborted();
    try {
      await fsp.unlink(file);
    } catch (err) {
      const code = errnoCode(err) ?? '';
      if (ABSENT_CODES.has(code) || code === 'EPERM') return; // absent, or a folder: no object
      throw ioError('delete', key, err);
    }
    // Prune folders left empty. A put racing into one of them retries its mkdir (see place).
    let dir = path.dirname(file);
    while (dir !== this.root && dir.startsWith(this.root + path.sep)) {
      try {
        await fsp.rmdir(dir);
      } catch {
        break; // not empty (or already gone): stop here
      }
      this.knownDirs.delete(dir);
      dir = path.dirname(dir);
    }
    await syncDir(dir).catch(() => undefined);
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    checkPrefix(prefix);
    yield* walkPrefix(prefix, {
      root: this.root,
      reservedTop: RESERVED_TOP,
      startAfter: opts.startAfter,
      signal: opts.signal,
    });
  }

  /** Files and folders of deferred puts not yet taken by a sync (for diagnosis and tests). */
  get pendingSyncs(): number {
    return this.deferred.pending;
  }

  /** fsyncs the files and folders of every deferred put that resolved before this call. */
  async sync(opts: SignalOptions = {}): Promise<void> {
    opts.signal?.throwIfAborted();
    try {
      await this.deferred.sync();
    } catch (err) {
      throw ioError('sync', '(deferred puts)', err);
    }
  }

  /** Syncs deferred puts still pending, then waits for the temp sweep. */
  async close(): Promise<void> {
    await this.sync();
    await this.sweeping;
  }

  /** The file of a key; throws STORE_BAD_KEY for bad or reserved keys. */
  private pathOf(key: string): string {
    checkKey(key);
    const parts = key.split('/');
    if (parts[0] === FS_TMP_DIR) {
      throw new StoreError('STORE_BAD_KEY', `fs store: keys may not start with ${FS_TMP_DIR}/ (reserved)`);
    }
    return path.join(this.root, ...parts);
  }

  /**
   * A short ranged read without the stat: open, one positional read (short at the end of the
   * file), close. Block devices read single sectors this way.
   */
  private async readSmallRange(key: string, file: string, range: ByteRange): Promise<Uint8Array | undefined> {
    const d = await openForRead(key, file);
    if (d === undefined) return undefined;
    try {
      return await fd.readAt(d, range.offset, range.length);
    } catch (err) {
      if (errnoCode(err) === 'EISDIR') return undefined; // a folder (a prefix of other keys)
      throw ioError('read', key, err);
    } finally {
      await fd.close(d);
    }
  }

  /**
   * Writes a whole body into a new temp file (raw descriptor: the common, small case). With
   * `keep`, returns the descriptor still open (the caller closes it); else closes it and
   * returns -1. The put reports the body's length and the current time rather than stat the
   * file (one system call less per object).
   */
  private async writeTempBytes(key: string, tmp: string, body: Uint8Array, signal: AbortSignal | undefined, durable: boolean, keep: boolean): Promise<number> {
    let d: number;
    try {
      d = await fd.open(tmp, 'wx');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError('create temp for', key, err);
      (await this.openTemp(key, tmp)).close().catch(() => undefined); // recreates the temp folder
      d = await fd.open(tmp, 'w').catch((e: unknown) => {
        throw ioError('create temp for', key, e);
      });
    }
    let kept = false;
    try {
      await fd.writeAll(d, body).catch((err: unknown) => {
        throw ioError('write', key, err);
      });
      signal?.throwIfAborted();
      if (durable) {
        await fd.fsync(d, true).catch((err: unknown) => {
          throw ioError('fsync', key, err);
        });
      }
      kept = keep;
      return kept ? d : -1;
    } finally {
      if (!kept) await fd.close(d);
    }
  }

  /** Streams a body into a new temp file. */
  private async writeTempStream(key: string, tmp: string, body: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined, durable: boolean): Promise<ObjectInfo> {
    const fh = await this.openTemp(key, tmp);
    try {
      await writeBody(fh, key, body, signal, durable);
      const st = await fh.stat().catch((err: unknown) => {
        throw ioError('stat', key, err);
      });
      return { key, size: st.size, mtimeMs: st.mtimeMs };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private async openForRead(key: string, file: string): Promise<FileHandle | undefined> {
    let fh: FileHandle;
    try {
      fh = await fsp.open(file, 'r');
    } catch (err) {
      if (ABSENT_CODES.has(errnoCode(err) ?? '')) return undefined;
      throw ioError('open', key, err);
    }
    try {
      if ((await fh.stat()).isFile()) return fh;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw ioError('stat', key, err);
    }
    await fh.close().catch(() => undefined);
    return undefined; // a folder (a prefix of other keys), not an object
  }

  private async existsAsFile(key: string, file: string): Promise<boolean> {
    try {
      const st = await fsp.lstat(file);
      if (st.isDirectory()) throw pathConflict(key, undefined);
      return true;
    } catch (err) {
      if (ABSENT_CODES.has(errnoCode(err) ?? '')) return false;
      throw ioError('stat', key, err);
    }
  }

  private async openTemp(key: string, tmp: string): Promise<FileHandle> {
    try {
      return await fsp.open(tmp, 'wx');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw ioError('create temp for', key, err);
    }
    // Someone removed the temp folder: recreate it once.
    try {
      await fsp.mkdir(this.tmpDir, { recursive: true });
      return await fsp.open(tmp, 'wx');
    } catch (err) {
      throw ioError('create temp for', key, err);
    }
  }

  /**
   * Moves (rename) or links (create-only) the temp file to the key's path, creating folders
   * as needed and retrying when a concurrent delete prunes them in between. Returns false
   * when a create-only link finds the name taken.
   */
  private async place(key: string, tmp: string, file: string, how: 'rename' | 'link', durable = true): Promise<boolean> {
    const dir = path.dirname(file);
    for (let attempt = 1; ; attempt += 1) {
      await this.ensureDir(key, dir);
      try {
        if (how === 'link') await fsp.link(tmp, file);
        else await fsp.rename(tmp, file);
        break;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EEXIST' && how === 'link') {
          const st = await fsp.lstat(file).catch(() => undefined);
          if (st?.isDirectory() === true) throw pathConflict(key, err);
          if (st !== undefined) return false;
          // Deleted between the link and the lstat: try again.
        } else if (code === 'ENOENT') {
          this.knownDirs.delete(dir);
        } else if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST' || code === 'ENOTEMPTY') {
          throw pathConflict(key, err);
        } else {
          throw ioError('publish', key, err);
        }
        if (attempt >= PLACE_ATTEMPTS) throw ioError('publish', key, err);
      }
    }
    if (!durable) return true;
    try {
      await syncDir(dir);
    } catch (err) {
      // The object is in place; a folder vanishing under the fsync means it was deleted since.
      if (errnoCode(err) !== 'ENOENT') throw ioError('fsync folder of', key, err);
    }
    return true;
  }

  /**
   * Creates a folder and its missing parents. Each folder this process has not seen yet gets
   * its parent fsynced (even if another process made it), so a published object never sits
   * in a folder whose own entry could vanish in a crash.
   */
  private async ensureDir(key: string, dir: string): Promise<void> {
    if (dir === this.root || this.knownDirs.has(dir)) return;
    const parent = path.dirname(dir);
    for (let attempt = 1; ; attempt += 1) {
      await this.ensureDir(key, parent);
      let step = 'mkdir for';
      try {
        await fsp.mkdir(dir).catch((err: unknown) => {
          if (errnoCode(err) !== 'EEXIST') throw err;
        });
        step = 'fsync folder of';
        await syncDir(parent);
        break;
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'ENOTDIR') throw pathConflict(key, err);
        if (code !== 'ENOENT' || attempt >= PLACE_ATTEMPTS) throw ioError(step, key, err);
        this.knownDirs.delete(parent); // pruned by a concurrent delete: make it again
      }
    }
    if (this.knownDirs.size >= KNOWN_DIRS_MAX) this.knownDirs.clear();
    this.knownDirs.add(dir);
  }

  /** Removes temp files left by crashed writers (best effort, in the background). */
  private async sweepTemps(staleMs: number): Promise<void> {
    try {
      const cutoff = Date.now() - staleMs;
      for (const name of await fsp.readdir(this.tmpDir)) {
        const file = path.join(this.tmpDir, name);
        const st = await fsp.lstat(file).catch(() => undefined);
        if (st !== undefined && st.isFile() && st.mtimeMs < cutoff) await fsp.unlink(file).catch(() => undefined);
      }
    } catch {
      // Best effort: a failed sweep only leaves garbage behind.
    }
  }
}

/** Opens an object's file for reading: a descriptor, or undefined when the key is absent. */
async function openForRead(key: string, file: string): Promise<number | undefined> {
  try {
    return await fd.open(file, 'r');
  } catch (err) {
    if (ABSENT_CODES.has(errnoCode(err) ?? '')) return undefined;
    throw ioError('open', key, err);
  }
}
