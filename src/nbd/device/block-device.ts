/**
 * The contract between the NBD server (protocol, connections) and block devices (volumes whose
 * blocks are objects in the store). The server checks every offset, length and flag against the
 * device's size and limits before calling it; devices may assume in-range requests.
 *
 * Durability: `write`/`trim`/`writeZeroes` may be acknowledged from a write-back cache unless
 * `fua` is set, in which case they resolve only once the affected data is durable in the store.
 * `flush` resolves once everything acknowledged before it was called is durable.
 */

import type { WriteData } from './byte-parts.js';

/** Block size constraints advertised to clients (NBD_INFO_BLOCK_SIZE). */
export interface BlockSizes {
  readonly minimum: number;
  readonly preferred: number;
  readonly maximum: number;
}

/** One extent of `base:allocation` block status. */
export interface Extent {
  readonly length: number;
  /** NBD_STATE_HOLE (1) and/or NBD_STATE_ZERO (2). */
  readonly flags: number;
}

export interface WriteFlags {
  /** Force unit access: resolve only when durable. */
  readonly fua?: boolean;
  /**
   * The caller hands `data` over and never reads or changes it again, so the device may keep
   * it (or views of it) instead of copying. Only for `write`.
   */
  readonly donated?: boolean;
}

export interface ZeroFlags extends WriteFlags {
  /** NBD_CMD_FLAG_NO_HOLE: the range must stay allocated. */
  readonly noHole?: boolean;
  /** NBD_CMD_FLAG_FAST_ZERO: fail with ENOTSUP-like error rather than zero slowly. */
  readonly fastZero?: boolean;
}

export interface BlockDevice {
  readonly name: string;
  readonly description: string;
  /** Size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  readonly blockSizes: BlockSizes;
  /** Whether several connections may share this device safely (one shared cache). */
  readonly multiConn: boolean;
  read(offset: number, length: number, opts?: { signal?: AbortSignal }): Promise<Uint8Array>;
  /** Writes `data` (one buffer, or pieces in order: byte-parts.ts) at `offset`. */
  write(offset: number, data: WriteData, flags?: WriteFlags): Promise<void>;
  trim(offset: number, length: number, flags?: WriteFlags): Promise<void>;
  writeZeroes(offset: number, length: number, flags?: ZeroFlags): Promise<void>;
  flush(): Promise<void>;
  /** NBD_CMD_CACHE: prefetch into the cache; advisory. */
  cache(offset: number, length: number): Promise<void>;
  /** base:allocation extents covering at least [offset, offset+1) and at most `length` bytes. */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
}

/** What the NBD server serves: exports by name, opened per connection. */
export interface DeviceProvider {
  list(): Promise<{ readonly name: string; readonly description: string }[]>;
  /**
   * Opens an export for one connection; undefined if no such export. A device opened by several
   * connections at once is the same shared object. ConflictError when another server holds the
   * volume's lease (the server then refuses the export, or offers it read-only when asked).
   */
  open(name: string, opts: { readonly readOnly: boolean }): Promise<DeviceHandle | undefined>;
}

/** One connection's hold on a device; `release` flushes and drops the hold (never throws). */
export interface DeviceHandle {
  readonly device: BlockDevice;
  release(): Promise<void>;
}
