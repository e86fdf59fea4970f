/**
 * Reading and writing one volume's block objects in its format (block-codec.ts), in units of
 * 4 KiB sectors. A cache entry holds a block's sectors sparsely: a Buffer (known bytes), null
 * (known zeros) or undefined (not in memory: whatever the store holds). Format 2 reads fetch
 * only the slots asked for; uploads re-hash only the sectors changed since their last check
 * and copy the slots of sectors not in memory from the old object unverified (a corrupt slot
 * stays detectably corrupt). Format 3 works as format 2 with other slot checks. Format 1
 * volumes always read and write whole blocks.
 */
import type { Logger } from '../../core/log.js';
import type { ByteRange, ObjectStore } from '../../storage/object-store.js';
import {
  CHECK_LENGTH,
  SECTOR_SIZE,
  decodeBlock,
  encodeBlockV1,
  headerMatches,
  encodedLengthV2,
  sectorCount,
  sectorLength,
  slotCodec,
  slotOffset,
  writeHeaderV2,
  type SlotCodec,
  type SlotVersion,
} from './block-codec.js';
import { blockKey } from './volume-layout.js';

/** One sector in memory: bytes, null for zeros, undefined for "as in the store". */
export type Sector = Buffer | null | undefined;

/** What the uploader learns about the old object before merging. */
export type OldObject =
  | { readonly kind: 'absent' }
  | { readonly kind: 'slots'; readonly bytes: Buffer }
  | { readonly kind: 'payload'; readonly payload: Buffer }
  | { readonly kind: 'lost' };

/** The sectors of one cached block and its upload state. */
export interface Entry {
  readonly sectors: Sector[];
  /** Format 2: the check of each sector, valid where `checked` is 1. */
  readonly checks: Buffer;
  readonly checked: Uint8Array;
  /** Bytes of sector buffers held. */
  bytes: number;
  /** Bumped by every change. */
  version: number;
  /** The version known to be in the store (visible; durable after a store sync). */
  durable: number;
  /** The version that last changed each sector: dirty where above `durable`. */
  readonly changedAt: Float64Array;
  /** Bytes of dirty sector buffers (zeros count nothing). */
  dirtyBytes: number;
  /** Times clean sectors were dropped from memory (block-cache.ts). */
  drops: number;
  uploading: boolean;
  lastWriteMs: number;
  retryAtMs: number;
  waiters: { readonly version: number; readonly resolve: () => void; readonly reject: (err: unknown) => void }[];
}

/** A fresh entry of `n` sectors, all as in the store. */
export function newEntry(n: number): Entry {
  return {
    sectors: new Array<Sector>(n).fill(undefined),
    checks: Buffer.alloc(n * CHECK_LENGTH),
    checked: new Uint8Array(n),
    bytes: 0,
    version: 0,
    durable: 0,
    changedAt: new Float64Array(n),
    dirtyBytes: 0,
    drops: 0,
    uploading: false,
    lastWriteMs: 0,
    retryAtMs: 0,
    waiters: [],
  };
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Where reads of stored blocks go instead of the block objects (write-log.ts). */
export interface BlockSource {
  /** A block's encoded bytes (or a range of them); undefined if absent. */
  read(index: number, range: ByteRange | undefined, signal?: AbortSignal): Promise<Uint8Array | undefined>;
}

/** Upload bodies kept for reuse: at most one per upload in flight is ever needed. */
const BODY_POOL_MAX = 16;

/** The block objects of one volume. */
export class BlockIo {
  /** The slot checks of formats 2 and 3 (format 1 has none). */
  private readonly slots: SlotCodec;
  private readonly slotVersion: SlotVersion;
  /**
   * Encoded bodies of full-size blocks whose put has resolved, for the next uploads: a copy-in
   * otherwise allocates (and the collector frees) one 256 KiB buffer per block uploaded.
   */
  private readonly bodies: Buffer[] = [];
  private poolLength = -1;

  constructor(
    private readonly store: ObjectStore,
    private readonly name: string,
    readonly format: 1 | 2 | 3,
    private readonly blockLength: (index: number) => number,
    private readonly logger?: Logger,
    /** Reads through the write log when set; block objects otherwise. */
    private readonly source?: BlockSource,
  ) {
    this.slotVersion = format === 3 ? 3 : 2;
    this.slots = slotCodec(this.slotVersion);
  }

  /** Sectors `s0..s1` of a block as stored, verified (null: zeros; the block is absent). */
  async fetch(index: number, s0: number, s1: number, signal?: AbortSignal): Promise<(Buffer | null)[]> {
    const len = this.blockLength(index);
    const key = blockKey(this.name, index);
    const n = sectorCount(len);
    if (this.format !== 1 && (s0 > 0 || s1 < n - 1)) {
      const offset = slotOffset(s0);
      const length = slotOffset(s1) + CHECK_LENGTH + sectorLength(len, s1) - offset;
      const bytes = await this.stored(index, key, { offset, length }, signal);
      if (bytes === undefined) return new Array<null>(s1 - s0 + 1).fill(null);
      const buf = toBuffer(bytes);
      const out: Buffer[] = [];
      // A short answer (an older, shorter last block after a resize, or damage) or a bad check
      // falls back to a whole read, which tells the two apart.
      if (buf.byteLength === length) {
        for (let s = s0; s <= s1; s++) {
          const at = slotOffset(s) - offset;
          const slot = buf.subarray(at, at + CHECK_LENGTH + sectorLength(len, s));
          if (!this.slots.verify(index, s, slot)) break;
          out.push(slot.subarray(CHECK_LENGTH));
        }
        if (out.length === s1 - s0 + 1) return out;
      }
    }
    if (this.format !== 1 && s0 === 0 && s1 === n - 1) {
      // A whole block: verify header and slots, then move the sectors together in place and
      // hand out views of one payload (no second buffer; a whole-block read returns it as is).
      // A ranged read one byte past the expected size skips the store's size lookup and
      // still tells an object of another size (resized volume, damage) apart.
      const expect = encodedLengthV2(len);
      const range = { offset: 0, length: expect + 1 };
      const bytes = await this.stored(index, key, range, signal);
      if (bytes === undefined) return new Array<null>(n).fill(null);
      let buf = toBuffer(bytes);
      const views = buf.byteLength === expect ? this.compactSlots(index, len, buf) : undefined;
      if (views !== undefined) return views;
      if (buf.byteLength > expect) {
        const whole = await this.stored(index, key, undefined, signal);
        if (whole === undefined) return new Array<null>(n).fill(null);
        buf = toBuffer(whole);
      }
      return splitPayload(fitPayload(decodeBlock(key, index, buf).payload, len), len, s0, s1);
    }
    const whole = await this.fetchWhole(index, len, key, signal);
    if (whole === undefined) return new Array<null>(s1 - s0 + 1).fill(null);
    const out: Buffer[] = [];
    for (let s = s0; s <= s1; s++) out.push(whole.subarray(s * SECTOR_SIZE, s * SECTOR_SIZE + sectorLength(len, s)));
    return out;
  }

  /**
   * Verifies a whole object of the expected size, then moves its sectors to the front of
   * `buf` in order (the payload, contiguous) and returns views of them; undefined (and `buf`
   * unchanged) if any check fails.
   */
  private compactSlots(index: number, len: number, buf: Buffer): Buffer[] | undefined {
    if (!headerMatches(index, len, buf, this.slotVersion)) return undefined;
    const n = sectorCount(len);
    for (let s = 0; s < n; s++) {
      const slot = buf.subarray(slotOffset(s), slotOffset(s) + CHECK_LENGTH + sectorLength(len, s));
      if (!this.slots.verify(index, s, slot)) return undefined;
    }
    const out: Buffer[] = [];
    for (let s = 0; s < n; s++) {
      const at = slotOffset(s) + CHECK_LENGTH;
      buf.copyWithin(s * SECTOR_SIZE, at, at + sectorLength(len, s));
      out.push(buf.subarray(s * SECTOR_SIZE, s * SECTOR_SIZE + sectorLength(len, s)));
    }
    return out;
  }

  /** The whole payload of a block, verified and sized to the block (zero-padded); undefined if absent. */
  private async fetchWhole(index: number, len: number, key: string, signal?: AbortSignal): Promise<Buffer | undefined> {
    const bytes = await this.stored(index, key, undefined, signal);
    if (bytes === undefined) return undefined;
    return fitPayload(decodeBlock(key, index, bytes).payload, len);
  }

  /** What an upload of `e` needs from the old object: nothing unless sectors are missing (format 2). */
  async readOld(index: number, e: Entry): Promise<OldObject | undefined> {
    if (this.format === 1 || !e.sectors.includes(undefined)) return undefined;
    const key = blockKey(this.name, index);
    const len = this.blockLength(index);
    const expect = encodedLengthV2(len);
    // One byte more than expected: no size lookup, and a longer object is told apart.
    const bytes = await this.stored(index, key, { offset: 0, length: expect + 1 });
    if (bytes === undefined) return { kind: 'absent' };
    let buf = toBuffer(bytes);
    if (buf.byteLength === expect && buf[4] === this.slotVersion) return { kind: 'slots', bytes: buf };
    if (buf.byteLength > expect) {
      const whole = await this.stored(index, key, undefined);
      if (whole === undefined) return { kind: 'absent' };
      buf = toBuffer(whole);
    }
    try {
      return { kind: 'payload', payload: fitPayload(decodeBlock(key, index, buf).payload, len) };
    } catch (err) {
      this.logger?.error({ err, key }, 'nbd: a block being merged with a partial write is corrupt; its other sectors will read as I/O errors');
      return { kind: 'lost' };
    }
  }

  /** A block's stored bytes (or a range): through the write log if any, else its object. */
  private stored(index: number, key: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (this.source !== undefined) return this.source.read(index, range, signal);
    const opts = range === undefined ? (signal === undefined ? {} : { signal }) : signal === undefined ? { range } : { range, signal };
    return this.store.tryGet(key, opts);
  }

  /** Length of block `index` encoded (formats 2 and 3). */
  encodedLength(index: number): number {
    return encodedLengthV2(this.blockLength(index));
  }

  /**
   * The object to store for `e` now (undefined: the block is all zeros, delete it). Synchronous,
   * so it is a consistent snapshot; caches the checks it computes in `e`. Formats 2 and 3
   * encode into `into` when given (encodedLength bytes: the write log's segment, no copy).
   */
  encode(index: number, e: Entry, old: OldObject | undefined, epoch: number, into?: Buffer): Buffer | undefined {
    const len = this.blockLength(index);
    const n = e.sectors.length;
    if (this.format === 1) {
      if (e.sectors.every((s) => s === null)) return undefined;
      return encodeBlockV1(index, epoch, e.sectors.map((sec, s) => {
        if (sec === undefined) throw new Error('format 1 block uploaded with sectors missing');
        return sec ?? Buffer.alloc(sectorLength(len, s));
      }));
    }
    const body = into ?? this.takeBody(encodedLengthV2(len));
    writeHeaderV2(body, index, epoch, len, this.slotVersion);
    let allZero = true;
    for (let s = 0; s < n; s++) {
      const at = slotOffset(s);
      const sl = sectorLength(len, s);
      let sec = e.sectors[s];
      if (sec === undefined) {
        const o = old ?? { kind: 'lost' };
        if (o.kind === 'slots') {
          o.bytes.copy(body, at, at, at + CHECK_LENGTH + sl);
          allZero = false;
          continue;
        }
        if (o.kind === 'lost') {
          this.slots.writePoison(index, s, sl, body, at);
          allZero = false;
          continue;
        }
        sec = o.kind === 'absent' ? null : o.payload.subarray(s * SECTOR_SIZE, s * SECTOR_SIZE + sl);
        if (sec !== null) e.checked[s] = 0;
      }
      if (sec === null) {
        this.slots.writeZero(index, s, sl, body, at);
        body.fill(0, at + CHECK_LENGTH, at + CHECK_LENGTH + sl);
        continue;
      }
      allZero = false;
      if (e.checked[s] === 1 && e.sectors[s] === sec) {
        e.checks.copy(body, at, s * CHECK_LENGTH, (s + 1) * CHECK_LENGTH);
      } else {
        this.slots.write(index, s, sec, body, at);
        if (e.sectors[s] === sec) {
          body.copy(e.checks, s * CHECK_LENGTH, at, at + CHECK_LENGTH);
          e.checked[s] = 1;
        }
      }
      sec.copy(body, at + CHECK_LENGTH);
    }
    if (allZero) {
      if (into === undefined) this.recycle(body);
      return undefined;
    }
    return body;
  }

  /**
   * Returns an encoded body for reuse once the store is done with it (its put resolved: no
   * store keeps a caller's buffer past that). Never call it for a body still being written.
   */
  recycle(body: Buffer): void {
    if (body.byteLength !== this.poolLength || this.bodies.length >= BODY_POOL_MAX) return;
    this.bodies.push(body);
  }

  /** A buffer of `length` bytes for an encoded body: from the pool when it holds that size. */
  private takeBody(length: number): Buffer {
    // The pool holds the most common size, that of a full block (the last block may be short).
    if (this.poolLength !== length) {
      if (this.poolLength !== -1 && length < this.poolLength) return Buffer.allocUnsafe(length);
      this.poolLength = length;
      this.bodies.length = 0;
    }
    return this.bodies.pop() ?? Buffer.allocUnsafe(length);
  }
}

/** Sectors s0..s1 of a payload, as views. */
function splitPayload(payload: Buffer, len: number, s0: number, s1: number): Buffer[] {
  const out: Buffer[] = [];
  for (let s = s0; s <= s1; s++) out.push(payload.subarray(s * SECTOR_SIZE, s * SECTOR_SIZE + sectorLength(len, s)));
  return out;
}

/** A payload cut or zero-padded to `len` bytes (a block grown by a resize was stored shorter). */
function fitPayload(payload: Buffer, len: number): Buffer {
  if (payload.byteLength === len) return payload;
  const out = Buffer.alloc(len);
  payload.copy(out, 0, 0, Math.min(len, payload.byteLength));
  return out;
}
