/**
 * Where a volume's small coordination records live: its writer lease epochs
 * (`nbd/<name>/lease/<epoch>`, lease.ts) and the create-once claim of its name
 * (`nbd/<name>/meta`, volume-layout.ts createVolume). Both need one operation the object store
 * cannot always give: create a key only if it is absent, atomically across servers. The fs
 * store has it (link/O_EXCL), AWS S3 and MinIO honour If-None-Match; Swift's s3api refuses
 * every conditional PUT and native Swift lets overlapping creators all win, so on those the
 * records go to etcd (meta/etcd/nbd-records.ts implements this contract structurally: nbd/
 * may not import meta/).
 *
 * Keys are the volume-layout keys (`nbd/...`), the same whichever implementation holds them.
 * Block data and the volume's meta object always stay in the object store.
 */
import type { ObjectStore } from '../../storage/object-store.js';

/** Small create-once records of volumes (lease epochs, name claims). */
export interface VolumeRecords {
  /** Where the records live, for messages. */
  readonly description: string;
  /**
   * True when the records are keys of the volumes' own object store (the default), so the
   * claim of a volume's name is its meta object itself; false when they live elsewhere and
   * the meta object must be written to the store after the claim.
   */
  readonly inObjectStore: boolean;
  /** Creates `key` only if absent, atomically across servers; true if this call created it. */
  create(key: string, value: Uint8Array): Promise<boolean>;
  /** Writes `key` whether or not it exists (lease renewal and release). */
  put(key: string, value: Uint8Array): Promise<void>;
  /** The record at `key` (a linearizable read), or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Whether `key` exists (a linearizable read). */
  exists(key: string): Promise<boolean>;
  /** The keys under `prefix`, in ascending key order. */
  list(prefix: string): Promise<string[]>;
  /** Deletes `key`; absent is fine. */
  delete(key: string): Promise<void>;
}

/** The default VolumeRecords: keys of the object store, created with create-only puts. */
export class StoreVolumeRecords implements VolumeRecords {
  readonly inObjectStore = true;

  constructor(private readonly store: ObjectStore) {}

  get description(): string {
    return this.store.description;
  }

  async create(key: string, value: Uint8Array): Promise<boolean> {
    return (await this.store.put(key, value, { ifAbsent: true })).created;
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await this.store.put(key, value);
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.store.tryGet(key);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.store.head(key)) !== undefined;
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const info of this.store.list(prefix)) keys.push(info.key);
    return keys.sort();
  }

  delete(key: string): Promise<void> {
    return this.store.delete(key);
  }
}

/** The records to use: the given ones, or the store's own. */
export function recordsOf(store: ObjectStore, records: VolumeRecords | undefined): VolumeRecords {
  return records ?? new StoreVolumeRecords(store);
}
