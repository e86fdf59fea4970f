/**
 * Serves the volumes of an object store to the NBD server. Each volume open in this process is
 * one StoreVolume (one cache) shared by all its connections. The first writable open takes the
 * volume's lease (ConflictError while another server holds it); the lease is kept, and renewed,
 * until the last connection releases the volume, which flushes it and frees the lease.
 */
import { hostname } from 'node:os';
import type { Logger } from '../../core/log.js';
import type { ObjectStore } from '../../storage/object-store.js';
import type { BlockDevice, DeviceHandle, DeviceProvider } from './block-device.js';
import { DEFAULT_LEASE_TTL_MS, VolumeLease } from './lease.js';
import type { VolumeRecords } from './lease-records.js';
import { ReadOnlyVolumeView, StoreVolume, type StoreVolumeOptions } from './store-volume.js';
import { checkVolumeName, listVolumeNames, readVolumeMeta } from './volume-layout.js';

/** Options of StoreDeviceProvider. */
export interface StoreDeviceProviderOptions {
  readonly store: ObjectStore;
  /** Cache size per open volume, MiB; half of it at most may be dirty. */
  readonly cacheMb: number;
  /** Wall clock for leases (ms since the epoch); Date.now by default. */
  readonly clock?: () => number;
  /** Names this server in lease records; unique per running server. */
  readonly nodeId: string;
  readonly leaseTtlMs?: number;
  readonly logger?: Logger;
  /** Parallel uploads per volume (default 16). */
  readonly uploadConcurrency?: number;
  /** Idle time before a dirty block uploads by itself (default 100 ms). */
  readonly writeBackDelayMs?: number;
  /** Where lease records live (default: the store; etcd where the store lacks atomic create-only). */
  readonly records?: VolumeRecords;
  /** Tests: write log tuning of format 3 volumes (write-log.ts). */
  readonly writeLog?: StoreVolumeOptions['writeLog'];
}

interface Slot {
  readonly volume: StoreVolume;
  handles: number;
}

/** A default node id: host name and process id. */
export function defaultNodeId(): string {
  return `${hostname()}:${process.pid}`;
}

/** The DeviceProvider over volumes in an ObjectStore. */
export class StoreDeviceProvider implements DeviceProvider {
  private readonly slots = new Map<string, Slot>();
  private readonly opening = new Map<string, Promise<unknown>>();

  constructor(private readonly opts: StoreDeviceProviderOptions) {}

  async list(): Promise<{ readonly name: string; readonly description: string }[]> {
    const out: { name: string; description: string }[] = [];
    for (const name of await listVolumeNames(this.opts.store)) {
      const meta = await readVolumeMeta(this.opts.store, name).catch(() => undefined);
      if (meta !== undefined) out.push({ name, description: meta.description });
    }
    return out;
  }

  /** Opens a volume for one connection; undefined if there is no such volume. */
  open(name: string, opts: { readonly readOnly: boolean }): Promise<DeviceHandle | undefined> {
    // Opens and releases of one name run one at a time (lease taking, slot creation).
    return this.serialize(name, () => this.doOpen(name, opts.readOnly));
  }

  /** Releases every volume (flushing them); for shutdown. */
  async close(): Promise<void> {
    await Promise.all([...this.slots.keys()].map((name) => this.serialize(name, () => this.closeSlot(name))));
  }

  private async doOpen(name: string, readOnly: boolean): Promise<DeviceHandle | undefined> {
    try {
      checkVolumeName(name);
    } catch {
      return undefined;
    }
    let slot = this.slots.get(name);
    let created = false;
    if (slot === undefined) {
      const meta = await readVolumeMeta(this.opts.store, name);
      if (meta === undefined) return undefined;
      slot = {
        volume: new StoreVolume({
          store: this.opts.store,
          name,
          meta,
          cacheBytes: Math.max(1, this.opts.cacheMb) * 1024 * 1024,
          ...(this.opts.uploadConcurrency === undefined ? {} : { uploadConcurrency: this.opts.uploadConcurrency }),
          ...(this.opts.writeBackDelayMs === undefined ? {} : { writeBackDelayMs: this.opts.writeBackDelayMs }),
          ...(this.opts.writeLog === undefined ? {} : { writeLog: this.opts.writeLog }),
          logger: this.opts.logger,
        }),
        handles: 0,
      };
      created = true;
      await slot.volume.load();
    }
    if (!readOnly && slot.volume.readOnly) {
      try {
        const lease = await VolumeLease.acquire({
          store: this.opts.store,
          name,
          nodeId: this.opts.nodeId,
          clock: this.opts.clock ?? Date.now,
          ttlMs: this.opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
          ...(this.opts.logger === undefined ? {} : { logger: this.opts.logger }),
          ...(this.opts.records === undefined ? {} : { records: this.opts.records }),
        });
        try {
          await slot.volume.attachLease(lease);
        } catch (err) {
          await lease.release();
          throw err;
        }
      } catch (err) {
        if (created) await slot.volume.close().catch(() => undefined);
        throw err;
      }
    }
    if (created) this.slots.set(name, slot);
    slot.handles++;
    const device: BlockDevice = readOnly ? new ReadOnlyVolumeView(slot.volume) : slot.volume;
    let released = false;
    return {
      device,
      release: async () => {
        if (released) return;
        released = true;
        await this.serialize(name, async () => {
          const s = this.slots.get(name);
          if (s === undefined) return;
          s.handles--;
          if (s.handles === 0) await this.closeSlot(name);
          else if (!readOnly) await s.volume.flush().catch(() => undefined);
        }).catch((err: unknown) => this.opts.logger?.error({ err, volume: name }, 'nbd: flushing the volume on release failed'));
      },
    };
  }

  private async closeSlot(name: string): Promise<void> {
    const s = this.slots.get(name);
    if (s === undefined) return;
    this.slots.delete(name);
    await s.volume.close();
  }

  private serialize<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.opening.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.opening.set(name, tail);
    void tail.then(() => {
      if (this.opening.get(name) === tail) this.opening.delete(name);
    });
    return run;
  }
}
