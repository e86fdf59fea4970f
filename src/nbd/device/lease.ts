/**
 * One writer per volume: a lease with an epoch, taken by a create-only put of
 * `nbd/<name>/lease/<epoch>` (epoch = latest + 1), so two servers racing for the same epoch
 * cannot both win. The holder renews its record (overwrite) every ttl/3 while it holds the
 * volume; a holder that dies stops renewing and the lease expires, after which anyone may
 * take epoch+1. `breakLease` (stowage nbd unlock) writes epoch+1 marked broken at once.
 *
 * Fencing. A create-only store cannot refuse a late put from a stale holder, so fencing is
 * done by the holder, before every upload batch (`checkFence`):
 *   1. its own lease must be locally valid: clock() < expiresMs - ttl/4 (a taker waits until
 *      clock() > expiresMs, so the last quarter of the ttl absorbs clock skew and slow puts);
 *   2. no record for epoch+1 may exist (a head of one key; a newer lease, or an unlock, always
 *      creates exactly epoch+1 first).
 * Blocks carry the writer's epoch in their header (block-codec.ts), for audits.
 * Remaining window, documented honestly: a batch whose fence check passed can still land
 * after a takeover if its puts take longer than the ttl/4 slack (or, after a manual unlock,
 * if they were already in flight); such a late put may overwrite a block the new holder wrote
 * in between. Only a store with conditional overwrite (compare-and-swap) could close it.
 *
 * The records live in a VolumeRecords (lease-records.ts): by default the object store itself;
 * with `--meta etcd://…` etcd, whose create-once is atomic where Swift's and s3api's are not.
 */
import { ConflictError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { recordsOf, type VolumeRecords } from './lease-records.js';
import { leaseKey, leasePrefix } from './volume-layout.js';

/** What one lease record holds. */
export interface LeaseRecord {
  readonly nodeId: string;
  /** Wall-clock ms after which others may take the volume. */
  readonly expiresMs: number;
  /** held: in use; free: released cleanly; broken: ended by `stowage nbd unlock`. */
  readonly state: 'held' | 'free' | 'broken';
  readonly takenMs: number;
}

/** The newest lease of a volume. */
export interface LatestLease {
  readonly epoch: number;
  readonly record: LeaseRecord;
}

/** Default lease time to live. */
export const DEFAULT_LEASE_TTL_MS = 30_000;

function parseRecord(bytes: Uint8Array): LeaseRecord {
  try {
    const o = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    const state = o['state'];
    if (typeof o['nodeId'] === 'string' && typeof o['expiresMs'] === 'number' && (state === 'held' || state === 'free' || state === 'broken')) {
      return { nodeId: o['nodeId'], expiresMs: o['expiresMs'], state, takenMs: typeof o['takenMs'] === 'number' ? o['takenMs'] : 0 };
    }
  } catch {
    // fall through
  }
  // An unreadable record blocks nobody for long: treat it as expired long ago.
  return { nodeId: '?', expiresMs: 0, state: 'broken', takenMs: 0 };
}

function encodeRecord(r: LeaseRecord): Uint8Array {
  return Buffer.from(`${JSON.stringify(r)}\n`, 'utf8');
}

/** The newest lease record of a volume, undefined if it never had one; `records` default to the store's. */
export async function readLatestLease(store: ObjectStore, name: string, records?: VolumeRecords): Promise<LatestLease | undefined> {
  const prefix = leasePrefix(name);
  const source = recordsOf(store, records);
  let last: { key: string; epoch: number } | undefined;
  for (const key of await source.list(prefix)) {
    const tail = key.slice(prefix.length);
    if (/^\d{12}$/.test(tail)) last = { key, epoch: Number(tail) };
  }
  if (last === undefined) return undefined;
  const bytes = await source.get(last.key);
  return bytes === undefined ? undefined : { epoch: last.epoch, record: parseRecord(bytes) };
}

/** Whether a lease record keeps others out at `nowMs`. */
export function leaseIsLive(record: LeaseRecord, nowMs: number): boolean {
  return record.state === 'held' && nowMs <= record.expiresMs;
}

/** Options of VolumeLease.acquire. */
export interface LeaseOptions {
  readonly store: ObjectStore;
  readonly name: string;
  readonly nodeId: string;
  readonly clock: () => number;
  readonly ttlMs: number;
  readonly logger?: Logger;
  /** Where the lease records live (default: the store itself). */
  readonly records?: VolumeRecords;
}

/** A held writer lease; renews itself until released. */
export class VolumeLease {
  private expiresMs: number;
  private lostReason: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private released = false;
  private readonly records: VolumeRecords;

  private constructor(
    private readonly opts: LeaseOptions,
    readonly epoch: number,
    takenMs: number,
  ) {
    this.records = recordsOf(opts.store, opts.records);
    this.expiresMs = takenMs + opts.ttlMs;
    this.timer = setInterval(() => void this.renew(), Math.max(10, Math.floor(opts.ttlMs / 3)));
    this.timer.unref();
  }

  /** Takes the volume's lease: ConflictError('VOLUME_LEASE_HELD') while another holder's is live. */
  static async acquire(opts: LeaseOptions): Promise<VolumeLease> {
    const now = opts.clock();
    const records = recordsOf(opts.store, opts.records);
    const latest = await readLatestLease(opts.store, opts.name, records);
    if (latest !== undefined && leaseIsLive(latest.record, now)) {
      throw new ConflictError(
        'META_CONTENTION',
        `volume ${opts.name} is in use by ${latest.record.nodeId} (lease epoch ${latest.epoch}, expires ${new Date(latest.record.expiresMs).toISOString()}); if that server is gone, wait for the lease to expire or run: stowage nbd unlock ${opts.name}`,
      );
    }
    const epoch = (latest?.epoch ?? 0) + 1;
    const record: LeaseRecord = { nodeId: opts.nodeId, expiresMs: now + opts.ttlMs, state: 'held', takenMs: now };
    if (!(await records.create(leaseKey(opts.name, epoch), encodeRecord(record)))) throw new ConflictError('VOLUME_LEASE_HELD', `volume ${opts.name} was just taken by another server; try again`);
    // Old records are history only; keep the one before ours for diagnosis.
    for (let e = epoch - 2; e >= 1 && e >= epoch - 64; e--) {
      await records.delete(leaseKey(opts.name, e)).catch(() => undefined);
    }
    return new VolumeLease(opts, epoch, now);
  }

  /** Why the lease was lost, or undefined while held. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Throws ConflictError unless the lease is held, locally valid and not superseded (one head). */
  async checkFence(): Promise<void> {
    this.throwIfLost();
    if (this.opts.clock() >= this.expiresMs - this.opts.ttlMs / 4) {
      // Try one renewal before giving up (a stalled event loop may have delayed the timer).
      await this.renew();
      this.throwIfLost();
      if (this.opts.clock() >= this.expiresMs - this.opts.ttlMs / 4) {
        throw new ConflictError('VOLUME_LEASE_LOST', `the lease on volume ${this.opts.name} has expired; refusing to write`);
      }
    }
    if (await this.records.exists(leaseKey(this.opts.name, this.epoch + 1))) {
      this.markLost('a newer lease (another server or stowage nbd unlock) superseded it');
      this.throwIfLost();
    }
  }

  /** Extends the lease; on a newer epoch marks it lost. Never throws. */
  renew(): Promise<void> {
    if (this.released || this.lostReason !== undefined) return Promise.resolve();
    this.renewing ??= this.doRenew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async doRenew(): Promise<void> {
    const now = this.opts.clock();
    try {
      if (await this.records.exists(leaseKey(this.opts.name, this.epoch + 1))) {
        this.markLost('a newer lease (another server or stowage nbd unlock) superseded it');
        return;
      }
      const record: LeaseRecord = { nodeId: this.opts.nodeId, expiresMs: now + this.opts.ttlMs, state: 'held', takenMs: now };
      await this.records.put(leaseKey(this.opts.name, this.epoch), encodeRecord(record));
      // A taker may have read our old record as expired while this put was on its way.
      if (await this.records.exists(leaseKey(this.opts.name, this.epoch + 1))) {
        this.markLost('a newer lease superseded it during renewal');
        return;
      }
      this.expiresMs = now + this.opts.ttlMs;
    } catch (err) {
      this.opts.logger?.warn({ err, volume: this.opts.name }, 'nbd: lease renewal failed; will retry');
    }
  }

  /** Stops renewing and marks the record free so others may take the volume at once. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.renewing;
    if (this.lostReason !== undefined) return;
    try {
      if (await this.records.exists(leaseKey(this.opts.name, this.epoch + 1))) return;
      const now = this.opts.clock();
      await this.records.put(leaseKey(this.opts.name, this.epoch), encodeRecord({ nodeId: this.opts.nodeId, expiresMs: now, state: 'free', takenMs: now }));
    } catch (err) {
      this.opts.logger?.warn({ err, volume: this.opts.name }, 'nbd: could not release the lease; it will expire');
    }
  }

  /** Stops renewing without touching the store (a crash, as far as others can tell). */
  abandon(): void {
    this.released = true;
    clearInterval(this.timer);
  }

  private markLost(reason: string): void {
    if (this.lostReason === undefined) {
      this.lostReason = reason;
      clearInterval(this.timer);
      this.opts.logger?.error({ volume: this.opts.name, epoch: this.epoch }, `nbd: lost the lease: ${reason}`);
    }
  }

  private throwIfLost(): void {
    if (this.released && this.lostReason === undefined) {
      throw new ConflictError('VOLUME_LEASE_LOST', `the lease on volume ${this.opts.name} was released; refusing to write`);
    }
    if (this.lostReason !== undefined) {
      throw new ConflictError('VOLUME_LEASE_LOST', `lost the lease on volume ${this.opts.name}: ${this.lostReason}; unflushed writes are discarded`);
    }
  }
}

/**
 * Breaks a volume's lease by hand (stowage nbd unlock): creates epoch+1 marked broken, which
 * fences the old holder at its next check and frees the volume at once. Returns the new epoch,
 * or undefined when there was no live lease (nothing written). `records` default to the store's.
 */
export async function breakLease(store: ObjectStore, name: string, nowMs: number, records?: VolumeRecords): Promise<{ epoch: number; was: LeaseRecord } | undefined> {
  const source = recordsOf(store, records);
  const latest = await readLatestLease(store, name, source);
  if (latest === undefined || latest.record.state !== 'held') return undefined;
  const epoch = latest.epoch + 1;
  const created = await source.create(leaseKey(name, epoch), encodeRecord({ nodeId: 'unlock', expiresMs: nowMs, state: 'broken', takenMs: nowMs }));
  if (!created) throw new ConflictError('VOLUME_LEASE_HELD', `the lease on volume ${name} changed while unlocking; run unlock again`);
  return { epoch, was: latest.record };
}
