import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { StowageError } from '../../core/errors.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore } from '../../storage/object-store.js';
import { decodeBlock } from './block-codec.js';
import { BlockIo, newEntry } from './block-io.js';
import type { DeviceHandle } from './block-device.js';
import type { StoreVolume } from './store-volume.js';
import { StoreDeviceProvider } from './store-provider.js';
import { blockKey, blocksPrefix, countBlocks, createVolume } from './volume-layout.js';
import { downloadVolume } from './volume-transfer.js';
import { logPrefix, parseLogName } from './write-log-codec.js';
import { WriteLog } from './write-log.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BS = 16 * 1024;
const BLOCKS = 24;
const TTL = 60_000;
/** Small segments (a few blocks each) and merges only when asked. */
const SMALL = { segmentBytes: 3 * BS, mergeBoundBytes: 2 ** 40, mergeIdleMs: 1 << 30 };

function setup(writeLog: typeof SMALL = SMALL): { store: MemoryStore; now: { t: number }; mk: (node: string) => StoreDeviceProvider } {
  const store = new MemoryStore();
  const now = { t: 1_000_000 };
  const mk = (nodeId: string): StoreDeviceProvider =>
    new StoreDeviceProvider({ store, cacheMb: 1, nodeId, clock: () => now.t, leaseTtlMs: TTL, writeBackDelayMs: 2, writeLog });
  return { store, now, mk };
}

async function open(p: StoreDeviceProvider, readOnly = false): Promise<DeviceHandle> {
  const h = await p.open('vol', { readOnly });
  assert.ok(h);
  return h;
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const i of store.list(prefix)) out.push(i.key);
  return out;
}

async function segments(store: ObjectStore): Promise<string[]> {
  return (await keys(store, logPrefix('vol'))).filter((k) => parseLogName(k.slice(logPrefix('vol').length))?.kind === 'segment');
}

function log(h: DeviceHandle): WriteLog {
  // A read-only handle is a view of the shared volume.
  const d = h.device as unknown as { volume?: StoreVolume };
  const l = (d.volume ?? (h.device as StoreVolume)).writeLog;
  assert.ok(l);
  return l;
}

/** Random writes, overwrites and trims with FLUSHes in between; returns the model. */
async function scribble(h: DeviceHandle, rounds: number): Promise<Buffer> {
  const model = Buffer.alloc(BLOCKS * BS);
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < 6; j++) {
      const off = randomInt(0, BLOCKS * BS - 1);
      const len = randomInt(1, Math.min(3 * BS, BLOCKS * BS - off) + 1);
      if (randomInt(0, 4) === 0) {
        model.fill(0, off, off + len);
        await h.device.trim(off, len);
      } else {
        const data = randomBytes(len);
        data.copy(model, off);
        await h.device.write(off, data);
      }
    }
    await h.device.flush();
  }
  return model;
}

async function readAll(h: DeviceHandle): Promise<Buffer> {
  return Buffer.from(await h.device.read(0, BLOCKS * BS));
}

test('replay: a reopened volume’s index gives the last writes (several segments, overwrites, trims)', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  const model = await scribble(h, 8);
  // Whole blocks rewritten (logged records), twice over with a FLUSH between: two segments.
  for (let k = 0; k < 2; k++) {
    const data = randomBytes(3 * BS);
    data.copy(model, 10 * BS);
    await h.device.write(10 * BS, data);
    await h.device.flush();
  }
  // Whole blocks trimmed: tombstones.
  await h.device.trim(5 * BS, 2 * BS);
  model.fill(0, 5 * BS, 7 * BS);
  await h.release();
  assert.ok((await segments(store)).length >= 2, 'several segments');
  const r = await open(mk('b'), true);
  assert.deepEqual(await readAll(r), model);
  assert.equal(log(r).locate(5)?.rec.tomb, true);
  assert.equal(log(r).locate(6)?.rec.tomb, true);
  // Counting and downloading read through the index too.
  // (A block zeroed in part while some of its sectors were not in memory may stay stored as zeros.)
  // Partial uploads put block objects directly: a block is stored as its record, else its object.
  const objects = new Set(await keys(store, blocksPrefix('vol')));
  const stored = Array.from({ length: BLOCKS }, (_, i) => log(r).locate(i)).filter((l, i) => (l === undefined ? objects.has(blockKey('vol', i)) : !l.rec.tomb)).length;
  assert.ok(stored >= Array.from({ length: BLOCKS }, (_, i) => !model.subarray(i * BS, (i + 1) * BS).equals(Buffer.alloc(BS))).filter(Boolean).length);
  assert.equal((await countBlocks(store, 'vol')).blocks, stored);
  const dir = await mkdtemp(join(tmpdir(), 'stowage-wlog-'));
  try {
    await downloadVolume(store, 'vol', join(dir, 'img'));
    assert.deepEqual(await readFile(join(dir, 'img')), model);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await r.release();
});

test('merge: block objects hold the newest data and the log is empty; a crash before the segment delete replays the same', async () => {
  const { store, now, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  const model = await scribble(h, 6);
  // Crash between the block puts (synced) and the segment delete.
  const crash = new Error('crash between block puts and segment delete');
  await assert.rejects(log(h).mergeAll({ beforeDelete: () => Promise.reject(crash) }), crash);
  (h.device as StoreVolume).crashForTests();
  const r = await open(mk('b'), true);
  assert.deepEqual(await readAll(r), model, 'replayed after the crashed merge');
  await r.release();
  now.t += 2 * TTL;
  const h2 = await open(mk('c'));
  assert.deepEqual(await readAll(h2), model);
  await log(h2).mergeAll();
  assert.deepEqual(await segments(store), []);
  assert.equal(log(h2).bytes, 0);
  await h2.release();
  // The block objects alone hold the volume now.
  for (let i = 0; i < BLOCKS; i++) {
    const want = model.subarray(i * BS, (i + 1) * BS);
    const got = await store.tryGet(blockKey('vol', i));
    if (want.equals(Buffer.alloc(BS)) && got === undefined) continue;
    assert.deepEqual(got === undefined ? undefined : decodeBlock(blockKey('vol', i), i, got).payload, want, `block ${i}`);
  }
  const r2 = await open(mk('d'), true);
  assert.deepEqual(await readAll(r2), model);
  await r2.release();
});

test('merges during writes (over the bound) and when idle keep every read right', async () => {
  const { store, mk } = setup({ segmentBytes: 2 * BS, mergeBoundBytes: 4 * BS, mergeIdleMs: 20 });
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  const model = await scribble(h, 10);
  assert.deepEqual(await readAll(h), model);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(await segments(store), [], 'merged once idle');
  assert.ok((await keys(store, blocksPrefix('vol'))).length > 0);
  await h.release();
  const r = await open(mk('b'), true);
  assert.deepEqual(await readAll(r), model);
  await r.release();
});

test('fencing: a segment put by an old holder after the new one sealed never comes back', async () => {
  const { store, now, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const a = await open(mk('a'));
  const first = randomBytes(BS);
  await a.device.write(0, first, { fua: true });
  // A stalls; B takes over and seals, accepting A's flushed segment.
  (a.device as StoreVolume).crashForTests();
  now.t += 2 * TTL;
  const b = await open(mk('b'));
  assert.deepEqual(Buffer.from(await b.device.read(0, BS)), first);
  await b.device.write(BS, randomBytes(BS), { fua: true });
  // A's late put (its fence check passed long ago): a segment of epoch 1 holding block 0.
  const late = new WriteLog({ store, name: 'vol', cacheBytes: 1 << 20, maxDirtyBytes: 1 << 19, epoch: () => 1, fence: async () => undefined });
  await late.load(false);
  const e = newEntry(BS / 4096);
  const stale = randomBytes(BS);
  for (let s = 0; s < e.sectors.length; s++) e.sectors[s] = stale.subarray(s * 4096, (s + 1) * 4096);
  const body = new BlockIo(store, 'vol', 3, () => BS).encode(0, e, undefined, 1);
  const put = late.append(0, body);
  late.sealOpen();
  await put;
  assert.equal((await segments(store)).length, 3, 'the late segment is in the store');
  await b.release();
  // C (read-only, then holding the lease) does not see it; the holder deletes it.
  const r = await open(mk('c'), true);
  assert.deepEqual(Buffer.from(await r.device.read(0, BS)), first);
  await r.release();
  const c = await open(mk('c'));
  assert.deepEqual(Buffer.from(await c.device.read(0, BS)), first);
  assert.equal((await segments(store)).length, 2, 'the late segment was deleted');
  assert.equal((await countBlocks(store, 'vol')).blocks, 2);
  await c.release();
});

test('a damaged segment fails the open; a damaged record fails its read', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  await h.device.write(0, randomBytes(BS), { fua: true });
  await h.device.write(BS, randomBytes(BS), { fua: true });
  await h.release();
  const [one, two] = await segments(store);
  assert.ok(one !== undefined && two !== undefined);
  // A flipped data byte: the record's slot check catches it at read time.
  const data = Buffer.from(await store.get(one));
  data[100] = (data[100] as number) ^ 1;
  await store.put(one, data);
  const r = await open(mk('b'), true);
  await assert.rejects(r.device.read(0, 10), (e: unknown) => e instanceof StowageError && e.code === 'STORE_IO');
  await r.release();
  // A flipped trailer byte: the open fails rather than serve older data.
  const seg = Buffer.from(await store.get(two));
  seg[seg.byteLength - 30] = (seg[seg.byteLength - 30] as number) ^ 4;
  await store.put(two, seg);
  await assert.rejects(open(mk('c'), true), (e: unknown) => e instanceof StowageError && e.code === 'STORE_IO' && /damaged/.test(e.message));
  await assert.rejects(countBlocks(store, 'vol'), /damaged/);
});

test('a read-only process whose segment the lease holder merged away reads the block object', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const w = await open(mk('w'));
  const data = randomBytes(2 * BS);
  await w.device.write(0, data, { fua: true });
  const r = await open(mk('r'), true);
  assert.ok(log(r).locate(1) !== undefined, 'the reader indexed the segment');
  await log(w).mergeAll();
  assert.deepEqual(await segments(store), []);
  assert.deepEqual(Buffer.from(await r.device.read(0, 2 * BS)), data);
  assert.equal(log(r).locate(1), undefined, 'the reader reloaded its index');
  await r.release();
  await w.release();
});

test('segments whose records were all superseded are deleted without a merge', async () => {
  const { store, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  await h.device.write(0, randomBytes(3 * BS), { fua: true });
  const [first] = await segments(store);
  const newer = randomBytes(3 * BS);
  await h.device.write(0, newer, { fua: true });
  for (let i = 0; i < 100 && (await segments(store)).includes(first as string); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(!(await segments(store)).includes(first as string), 'the older segment went');
  assert.equal((await segments(store)).length, 1, 'the newer segment stays');
  await h.release();
  const r = await open(mk('b'), true);
  assert.deepEqual(Buffer.from(await r.device.read(0, 3 * BS)), newer);
  await r.release();
});
