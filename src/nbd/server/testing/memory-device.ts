/**
 * Test doubles for the server's tests: a BlockDevice held in memory (with sparse 64 KiB
 * blocks, so block status has holes to report) and a provider over a few of them. Counts
 * calls so tests can see FUA, FLUSH, CACHE and release reach the device.
 */
import { ConflictError } from '../../../core/errors.js';
import type { BlockDevice, BlockSizes, DeviceHandle, DeviceProvider, Extent, WriteFlags, ZeroFlags } from '../../device/block-device.js';
import { ByteParts, type WriteData } from '../../device/byte-parts.js';

const BLOCK = 64 * 1024;

/** Call counters of a MemoryDevice. */
export interface DeviceCalls {
  reads: number;
  writes: number;
  fuaWrites: number;
  flushes: number;
  trims: number;
  zeroes: number;
  noHoleZeroes: number;
  fastZeroes: number;
  caches: number;
  blockStatus: number;
}

/** A sparse in-memory block device. */
export class MemoryDevice implements BlockDevice {
  readonly blocks = new Map<number, Buffer>();
  readonly calls: DeviceCalls = { reads: 0, writes: 0, fuaWrites: 0, flushes: 0, trims: 0, zeroes: 0, noHoleZeroes: 0, fastZeroes: 0, caches: 0, blockStatus: 0 };
  /** Milliseconds a read of this offset waits (to force out-of-order replies). */
  readonly readDelay = new Map<number, number>();
  readonly blockSizes: BlockSizes;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly readOnly = false,
    readonly description = '',
    readonly multiConn = true,
    blockSizes?: BlockSizes,
  ) {
    this.blockSizes = blockSizes ?? { minimum: 1, preferred: 4096, maximum: 32 * 1024 * 1024 };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.calls.reads++;
    const delay = this.readDelay.get(offset);
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));
    const out = Buffer.alloc(length);
    this.each(offset, length, (blk, at, pos, n) => {
      const b = this.blocks.get(blk);
      if (b !== undefined) b.copy(out, pos, at, at + n);
    });
    return out;
  }

  async write(offset: number, pieces: WriteData, flags: WriteFlags = {}): Promise<void> {
    const data = ByteParts.of(pieces).copy();
    this.calls.writes++;
    if (flags.fua === true) this.calls.fuaWrites++;
    this.each(offset, data.byteLength, (blk, at, pos, n) => {
      let b = this.blocks.get(blk);
      if (b === undefined) {
        b = Buffer.alloc(BLOCK);
        this.blocks.set(blk, b);
      }
      b.set(data.subarray(pos, pos + n), at);
    });
  }

  async trim(offset: number, length: number, _flags?: WriteFlags): Promise<void> {
    this.calls.trims++;
    this.zero(offset, length, true);
  }

  async writeZeroes(offset: number, length: number, flags: ZeroFlags = {}): Promise<void> {
    this.calls.zeroes++;
    if (flags.noHole === true) this.calls.noHoleZeroes++;
    if (flags.fastZero === true) this.calls.fastZeroes++;
    this.zero(offset, length, flags.noHole !== true);
  }

  async flush(): Promise<void> {
    this.calls.flushes++;
  }

  async cache(_offset: number, _length: number): Promise<void> {
    this.calls.caches++;
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.calls.blockStatus++;
    const out: Extent[] = [];
    this.each(offset, length, (blk, _at, _pos, n) => {
      const flags = this.blocks.has(blk) ? 0 : 3;
      const last = out[out.length - 1];
      if (last !== undefined && last.flags === flags) out[out.length - 1] = { length: last.length + n, flags };
      else out.push({ length: n, flags });
    });
    return out;
  }

  private zero(offset: number, length: number, punch: boolean): void {
    this.each(offset, length, (blk, at, _pos, n) => {
      const b = this.blocks.get(blk);
      if (punch && n === BLOCK) this.blocks.delete(blk);
      else if (b !== undefined) b.fill(0, at, at + n);
      else if (!punch) this.blocks.set(blk, Buffer.alloc(BLOCK));
    });
  }

  private each(offset: number, length: number, fn: (blk: number, at: number, pos: number, n: number) => void): void {
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const blk = Math.floor(abs / BLOCK);
      const at = abs % BLOCK;
      const n = Math.min(BLOCK - at, length - pos);
      fn(blk, at, pos, n);
      pos += n;
    }
  }
}

/** A provider over MemoryDevices; names in `locked` fail open() with ConflictError. */
export class MemoryProvider implements DeviceProvider {
  readonly devices = new Map<string, MemoryDevice>();
  readonly locked = new Set<string>();
  opens = 0;
  releases = 0;

  constructor(devices: readonly MemoryDevice[]) {
    for (const d of devices) this.devices.set(d.name, d);
  }

  async list(): Promise<{ name: string; description: string }[]> {
    return [...this.devices.values()].map((d) => ({ name: d.name, description: d.description }));
  }

  async open(name: string): Promise<DeviceHandle | undefined> {
    if (this.locked.has(name)) throw new ConflictError('REF_CAS_LOST', `lease on ${name} is held by node other-node`);
    const device = this.devices.get(name);
    if (device === undefined) return undefined;
    this.opens++;
    return {
      device,
      release: async () => {
        this.releases++;
        await device.flush();
      },
    };
  }
}
