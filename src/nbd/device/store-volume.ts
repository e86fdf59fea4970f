/**
 * A volume as a BlockDevice: byte ranges map onto blocks of the write-back cache
 * (block-cache.ts), which works in 4 KiB sectors. Zero sectors, TRIM and WRITE_ZEROES hold no
 * bytes, and a block that ends up all zeros stores no object (an absent block reads as zeros).
 * Writable only while it holds the volume's lease (lease.ts). Format 3 volumes stage uploads
 * in a write log (write-log.ts) that is merged into the block objects later.
 */
import { ValidationError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { NBD_ENOTSUP } from '../protocol/constants.js';
import { VolumeCache } from './block-cache.js';
import type { BlockDevice, BlockSizes, Extent, WriteFlags, ZeroFlags } from './block-device.js';
import { ByteParts, type WriteData } from './byte-parts.js';
import type { VolumeLease } from './lease.js';
import { blockIndexOf, blockKey, blocksPrefix, type VolumeMeta } from './volume-layout.js';
import { WriteLog, type WriteLogOptions } from './write-log.js';

/** Largest request the device accepts (NBD_INFO_BLOCK_SIZE maximum). */
export const REQUEST_MAX = 32 * 1024 * 1024;
/** NBD_STATE_HOLE | NBD_STATE_ZERO. */
const HOLE_ZERO = 3;
/** Blocks examined by one blockStatus call at most. */
const STATUS_BLOCKS_MAX = 8192;

/** Tuning of a StoreVolume. */
export interface StoreVolumeOptions {
  readonly store: ObjectStore;
  readonly name: string;
  readonly meta: VolumeMeta;
  readonly cacheBytes: number;
  /** Bound on dirty bytes (default half the cache, at least 4 blocks). */
  readonly maxDirtyBytes?: number;
  /** Parallel block uploads (default 16). */
  readonly uploadConcurrency?: number;
  /** Idle time before a dirty block uploads on its own (default 100 ms). */
  readonly writeBackDelayMs?: number;
  readonly logger?: Logger | undefined;
  /** Tests: write log segment size, merge bound and idle time (write-log.ts). */
  readonly writeLog?: Pick<WriteLogOptions, 'segmentBytes' | 'mergeBoundBytes' | 'mergeIdleMs'>;
}

/** The part of a request in one block: block index, offset in block, offset in the request, length. */
interface Span {
  readonly index: number;
  readonly off: number;
  readonly at: number;
  readonly len: number;
}

/** One volume; shared by every connection of one provider. */
export class StoreVolume implements BlockDevice {
  readonly name: string;
  readonly description: string;
  readonly size: number;
  readonly blockSizes: BlockSizes;
  readonly multiConn = true;
  readonly blockSize: number;
  private readonly blocks: VolumeCache;
  private lease: VolumeLease | undefined;
  /** Format 3: the write log in front of the block objects. */
  readonly writeLog: WriteLog | undefined;

  constructor(private readonly opts: StoreVolumeOptions) {
    this.name = opts.name;
    this.description = opts.meta.description;
    this.size = opts.meta.size;
    this.blockSize = opts.meta.blockSize;
    this.blockSizes = { minimum: 1, preferred: this.blockSize, maximum: REQUEST_MAX };
    const maxDirtyBytes = opts.maxDirtyBytes ?? Math.max(4 * this.blockSize, Math.floor(opts.cacheBytes / 2));
    const fence = async (): Promise<void> => {
      if (this.lease === undefined) throw new ValidationError('ARG_INVALID', `volume ${this.name} is read-only here`);
      await this.lease.checkFence();
    };
    const cacheBytes = Math.max(opts.cacheBytes, maxDirtyBytes + 4 * this.blockSize);
    this.writeLog =
      opts.meta.format === 3
        ? new WriteLog({
            store: opts.store,
            name: opts.name,
            cacheBytes,
            maxDirtyBytes,
            epoch: () => this.lease?.epoch ?? 0,
            fence,
            logger: opts.logger,
            ...opts.writeLog,
          })
        : undefined;
    this.blocks = new VolumeCache({
      store: opts.store,
      name: opts.name,
      format: opts.meta.format,
      blockSize: this.blockSize,
      size: this.size,
      cacheBytes,
      maxDirtyBytes,
      uploadConcurrency: opts.uploadConcurrency ?? 16,
      writeBackDelayMs: opts.writeBackDelayMs ?? 100,
      epoch: () => this.lease?.epoch ?? 0,
      fence,
      logger: opts.logger,
      log: this.writeLog,
    });
  }

  /** True until a lease is attached. */
  get readOnly(): boolean {
    return this.lease === undefined;
  }

  /** The held lease's epoch, if writable. */
  get epoch(): number | undefined {
    return this.lease?.epoch;
  }

  /** Reads the write log's index (before the first read; again when a lease is attached). */
  async load(): Promise<void> {
    await this.writeLog?.load(false);
  }

  /** Makes the volume writable under `lease`: the write log is replayed and sealed for its epoch. */
  async attachLease(lease: VolumeLease): Promise<void> {
    this.lease = lease;
    try {
      await this.writeLog?.load(true);
    } catch (err) {
      this.lease = undefined;
      throw err;
    }
  }

  async read(offset: number, length: number, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    this.writeLog?.noteActivity();
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    if (first === Math.floor((offset + length - 1) / bs)) {
      if (offset === first * bs && length === this.blocks.blockLength(first)) {
        // A whole block (nbdcopy's unit): the cache's buffer itself when it is in one piece.
        const whole = await this.blocks.readWhole(first, opts.signal);
        if (whole !== undefined) return whole;
      }
      // One block (every small read): no span list.
      const out = Buffer.allocUnsafe(length);
      await this.blocks.readInto(first, offset - first * bs, length, out, 0, opts.signal);
      return out;
    }
    const out = Buffer.allocUnsafe(length);
    const spans = this.spans(offset, length);
    await Promise.all(spans.map((s) => this.blocks.readInto(s.index, s.off, s.len, out, s.at, opts.signal)));
    return out;
  }

  async write(offset: number, data: WriteData, flags: WriteFlags = {}): Promise<void> {
    this.checkWritable();
    const src = ByteParts.of(data);
    const spans = this.spans(offset, src.length);
    const donated = flags.donated === true;
    if (spans.length === 1) {
      const s = spans[0] as Span;
      await this.blocks.write(s.index, s.off, src, donated);
    } else {
      await Promise.all(spans.map((s) => this.blocks.write(s.index, s.off, src.sub(s.at, s.at + s.len), donated)));
    }
    if (flags.fua === true) await this.blocks.waitDurable(spans.map((s) => s.index));
  }

  async trim(offset: number, length: number, flags: WriteFlags = {}): Promise<void> {
    await this.zero(offset, length, false, flags.fua === true);
  }

  async writeZeroes(offset: number, length: number, flags: ZeroFlags = {}): Promise<void> {
    const noHole = flags.noHole === true;
    if (noHole && flags.fastZero === true) {
      // Keeping the range allocated means storing zero blocks: no faster than a write.
      // NBD wants ENOTSUP here so the client falls back to writing zeros itself.
      throw Object.assign(new ValidationError('NBD_FAST_ZERO_UNSUPPORTED', 'fast zero is not supported together with NO_HOLE'), { nbdErrno: NBD_ENOTSUP });
    }
    await this.zero(offset, length, noHole, flags.fua === true);
  }

  async flush(): Promise<void> {
    await this.blocks.flush();
  }

  async cache(offset: number, length: number): Promise<void> {
    const spans = this.spans(offset, Math.min(length, REQUEST_MAX));
    await this.blocks.prefetch(spans.map((s) => s.index));
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    const bs = this.blockSize;
    const first = Math.floor(offset / bs);
    const end = Math.min(this.size, offset + length);
    const last = Math.min(Math.ceil(end / bs) - 1, first + STATUS_BLOCKS_MAX - 1);
    const stored = new Set<number>();
    const prefix = blocksPrefix(this.name);
    const listOpts = first === 0 ? {} : { startAfter: blockKey(this.name, first - 1) };
    for await (const info of this.opts.store.list(prefix, listOpts)) {
      const i = blockIndexOf(prefix, info.key);
      if (i === undefined) continue;
      if (i > last) break;
      stored.add(i);
    }
    const extents: { length: number; flags: number }[] = [];
    for (let i = first; i <= last; i++) {
      const from = Math.max(offset, i * bs);
      const to = Math.min(end, (i + 1) * bs);
      const logged = this.writeLog?.locate(i);
      const zero = this.blocks.cachedZero(i) ?? (logged === undefined ? !stored.has(i) : logged.rec.tomb);
      const flags = zero ? HOLE_ZERO : 0;
      const prev = extents[extents.length - 1];
      if (prev !== undefined && prev.flags === flags) prev.length += to - from;
      else extents.push({ length: to - from, flags });
    }
    return extents;
  }

  /** Flushes, then releases the lease (if any); segments not merged yet stay for the next open. */
  async close(): Promise<void> {
    try {
      if (this.lease !== undefined) await this.blocks.close();
    } finally {
      await this.writeLog?.close();
      await this.lease?.release();
    }
  }

  /** Test hook: stop renewing and uploading as if the process died (nothing is flushed). */
  crashForTests(): void {
    this.lease?.abandon();
    this.blocks.fail(new ValidationError('ARG_INVALID', 'volume crashed (test)'));
  }

  private checkWritable(): void {
    if (this.lease === undefined) throw new ValidationError('ARG_INVALID', `volume ${this.name} is open read-only`);
  }

  private async zero(offset: number, length: number, keepAllocated: boolean, fua: boolean): Promise<void> {
    this.checkWritable();
    const spans = this.spans(offset, length);
    await Promise.all(spans.map((s) => this.blocks.zero(s.index, s.off, s.len, keepAllocated)));
    if (fua) await this.blocks.waitDurable(spans.map((s) => s.index));
  }

  /** The blocks a range touches: block index, offset in block, offset in the range, length. */
  private spans(offset: number, length: number): Span[] {
    const out: Span[] = [];
    const bs = this.blockSize;
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const index = Math.floor(pos / bs);
      const off = pos - index * bs;
      const len = Math.min(bs - off, end - pos);
      out.push({ index, off, at: pos - offset, len });
      pos += len;
    }
    return out;
  }
}

/** A read-only window on a shared volume (a connection that asked for read-only). */
export class ReadOnlyVolumeView implements BlockDevice {
  readonly readOnly = true;
  constructor(private readonly volume: StoreVolume) {}
  get name(): string {
    return this.volume.name;
  }
  get description(): string {
    return this.volume.description;
  }
  get size(): number {
    return this.volume.size;
  }
  get blockSizes(): BlockSizes {
    return this.volume.blockSizes;
  }
  get multiConn(): boolean {
    return this.volume.multiConn;
  }
  read(offset: number, length: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array> {
    return this.volume.read(offset, length, opts);
  }
  write(): Promise<void> {
    return Promise.reject(new ValidationError('ARG_INVALID', `volume ${this.name} is open read-only`));
  }
  trim(): Promise<void> {
    return this.write();
  }
  writeZeroes(): Promise<void> {
    return this.write();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  cache(offset: number, length: number): Promise<void> {
    return this.volume.cache(offset, length);
  }
  blockStatus(offset: number, length: number): Promise<Extent[]> {
    return this.volume.blockStatus(offset, length);
  }
}
