/**
 * Whole-volume operations for the CLI: image download (sparse), image upload (all-zero blocks
 * are not stored), delete, grow. Writers take the volume's lease like a server would.
 */
import { open as openFile } from 'node:fs/promises';
import { ConflictError, ValidationError } from '../../core/errors.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { decodeBlock } from './block-codec.js';
import { DEFAULT_LEASE_TTL_MS, VolumeLease, leaseIsLive, readLatestLease } from './lease.js';
import type { VolumeRecords } from './lease-records.js';
import { StoreDeviceProvider } from './store-provider.js';
import { blockIndexOf, blockKey, blocksPrefix, checkVolumeSize, countBlocks, createVolume, deleteVolumeRecords, leasePrefix, metaKey, readVolumeMeta, requireVolumeMeta, writeVolumeMeta, type VolumeMeta } from './volume-layout.js';
import { logPrefix } from './write-log-codec.js';
import { loadLog } from './write-log-index.js';

/** Progress callback: done and total units (blocks). */
export type TransferProgress = (done: number, total: number) => void;

const PARALLEL = 8;

/**
 * Writes a volume to a local file: sized to the volume, only stored blocks written (sparse).
 * Blocks are read through the write log (its newest records, else the block objects).
 */
export async function downloadVolume(store: ObjectStore, name: string, file: string, onProgress?: TransferProgress): Promise<{ blocks: number; bytes: number }> {
  const meta = await requireVolumeMeta(store, name);
  let log = (await loadLog(store, name)).index;
  // A server holding the volume may merge segments away meanwhile: then read a fresh index.
  const reload = async (): Promise<typeof log> => (log = (await loadLog(store, name)).index);
  const { blocks: total } = await countBlocks(store, name);
  const fh = await openFile(file, 'w');
  let done = 0;
  try {
    await fh.truncate(meta.size);
    const prefix = blocksPrefix(name);
    const inflight = new Set<Promise<void>>();
    // Block objects the log does not override, in listing order; then the log's records.
    const first = log;
    const logged = [...first.blocks.keys()].sort((a, b) => a - b);
    async function* indexes(): AsyncGenerator<number> {
      for await (const info of store.list(prefix)) {
        const index = blockIndexOf(prefix, info.key);
        if (index !== undefined && !first.blocks.has(index)) yield index;
      }
      yield* logged;
    }
    for await (const index of indexes()) {
      if (index * meta.blockSize >= meta.size) continue;
      const key = blockKey(name, index);
      const p = (async () => {
        const bytes = await log.read(store, index, key, undefined, undefined, reload);
        if (bytes === undefined) return; // deleted meanwhile, or a tombstone: zeros
        const { payload } = decodeBlock(key, index, bytes);
        const len = Math.min(payload.byteLength, meta.size - index * meta.blockSize);
        await fh.write(payload, 0, len, index * meta.blockSize);
        onProgress?.(++done, total);
      })();
      inflight.add(p);
      void p.finally(() => inflight.delete(p)).catch(() => undefined);
      if (inflight.size >= PARALLEL) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  } finally {
    await fh.close();
  }
  return { blocks: done, bytes: meta.size };
}

/** Options of uploadVolume. */
export interface UploadOptions {
  readonly nodeId: string;
  /** Block size when the volume is created. */
  readonly blockSize?: number;
  readonly description?: string;
  readonly onProgress?: TransferProgress;
  /** Where lease records live (default: the store). */
  readonly records?: VolumeRecords;
}

/**
 * Copies a local image into a volume, creating it (size = the file's, rounded up to 512) when
 * missing. The whole image is written: all-zero blocks become absent blocks.
 */
export async function uploadVolume(store: ObjectStore, file: string, name: string, opts: UploadOptions): Promise<{ created: boolean; stored: number; size: number }> {
  const fh = await openFile(file, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    let meta = await readVolumeMeta(store, name);
    const created = meta === undefined;
    if (meta === undefined) {
      if (fileSize === 0) throw new ValidationError('ARG_INVALID', `${file} is empty; create the volume with nbd create instead`);
      meta = await createVolume(store, name, {
        size: Math.ceil(fileSize / 512) * 512,
        ...(opts.blockSize === undefined ? {} : { blockSize: opts.blockSize }),
        ...(opts.description === undefined ? {} : { description: opts.description }),
        ...(opts.records === undefined ? {} : { records: opts.records }),
      });
    } else if (fileSize > meta.size) {
      throw new ValidationError('ARG_INVALID', `${file} (${fileSize} bytes) is larger than volume ${name} (${meta.size} bytes); resize it first`);
    }
    const provider = new StoreDeviceProvider({ store, cacheMb: Math.max(64, (meta.blockSize * PARALLEL * 4) / 1048576), nodeId: opts.nodeId, writeBackDelayMs: 0, ...(opts.records === undefined ? {} : { records: opts.records }) });
    const h = await provider.open(name, { readOnly: false });
    if (h === undefined) throw new ConflictError('VOLUME_NOT_FOUND', `volume ${name} disappeared during the upload`);
    const total = Math.ceil(fileSize / meta.blockSize);
    let stored = 0;
    try {
      const buf = Buffer.allocUnsafe(meta.blockSize);
      const zeros = Buffer.alloc(meta.blockSize);
      for (let i = 0; i < total; i++) {
        const { bytesRead } = await fh.read(buf, 0, meta.blockSize, i * meta.blockSize);
        const chunk = Buffer.from(buf.subarray(0, bytesRead));
        if (!chunk.equals(zeros.subarray(0, bytesRead))) stored++;
        await h.device.write(i * meta.blockSize, chunk);
        opts.onProgress?.(i + 1, total);
      }
      // Whatever lies past the image inside the volume becomes zeros too.
      if (fileSize < meta.size) await h.device.trim(fileSize, meta.size - fileSize);
      await h.device.flush();
    } finally {
      await h.release();
    }
    return { created, stored, size: meta.size };
  } finally {
    await fh.close();
  }
}

/** Holds the volume's lease for the duration of `fn` (ConflictError while a server has it). */
async function withLease<T>(store: ObjectStore, name: string, nodeId: string, records: VolumeRecords | undefined, fn: () => Promise<T>): Promise<T> {
  const lease = await VolumeLease.acquire({ store, name, nodeId, clock: Date.now, ttlMs: DEFAULT_LEASE_TTL_MS, ...(records === undefined ? {} : { records }) });
  try {
    await lease.checkFence();
    return await fn();
  } finally {
    await lease.release();
  }
}

/** Grows a volume (shrinking would cut data off a filesystem: refused). */
export async function resizeVolume(store: ObjectStore, name: string, size: number, nodeId: string, records?: VolumeRecords): Promise<VolumeMeta> {
  checkVolumeSize(size);
  const meta = await requireVolumeMeta(store, name);
  if (size < meta.size) throw new ValidationError('ARG_INVALID', `volume ${name} is ${meta.size} bytes; shrinking is not supported`);
  return withLease(store, name, nodeId, records, async () => {
    const next = { ...meta, size };
    await writeVolumeMeta(store, name, next);
    return next;
  });
}

/** Deletes a volume: blocks, then leases, then meta, then records kept elsewhere (so an interrupted delete still lists). */
export async function deleteVolume(store: ObjectStore, name: string, nowMs: number, records?: VolumeRecords): Promise<{ blocks: number }> {
  await requireVolumeMeta(store, name);
  const latest = await readLatestLease(store, name, records);
  if (latest !== undefined && leaseIsLive(latest.record, nowMs)) {
    throw new ConflictError('VOLUME_LEASE_HELD', `volume ${name} is in use by ${latest.record.nodeId}; stop that server or run: stowage nbd unlock ${name}`);
  }
  // Counted through the write log (a damaged segment must not stop a delete: then the objects).
  const blocks = await countBlocks(store, name).then(
    (c) => c.blocks,
    () => undefined,
  );
  let objects = 0;
  for (const prefix of [logPrefix(name), blocksPrefix(name), leasePrefix(name)]) {
    const keys: string[] = [];
    for await (const info of store.list(prefix)) keys.push(info.key);
    for (let i = 0; i < keys.length; i += 64) await Promise.all(keys.slice(i, i + 64).map((k) => store.delete(k)));
    if (prefix === blocksPrefix(name)) objects = keys.length;
  }
  await store.delete(metaKey(name));
  await deleteVolumeRecords(store, name, records);
  return { blocks: blocks ?? objects };
}
