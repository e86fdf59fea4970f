import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { decodeBlock } from './block-codec.js';
import { BlockIo, newEntry } from './block-io.js';
import type { DeviceHandle } from './block-device.js';
import type { StoreVolume } from './store-volume.js';
import { StoreDeviceProvider } from './store-provider.js';
import { blockKey, createVolume } from './volume-layout.js';
import { logPrefix, parseLogName, parseTrailer, type LogRecord } from './write-log-codec.js';
import { LogIndex, type Segment } from './write-log-index.js';
import type { WriteLog } from './write-log.js';

const BS = 16 * 1024;
const BLOCKS = 8;
const TTL = 60_000;
const SMALL = { segmentBytes: 3 * BS, mergeBoundBytes: 2 ** 40, mergeIdleMs: 1 << 30 };

function setup(): { store: MemoryStore; now: { t: number }; mk: (node: string) => StoreDeviceProvider } {
  const store = new MemoryStore();
  const now = { t: 1_000_000 };
  const mk = (nodeId: string): StoreDeviceProvider =>
    new StoreDeviceProvider({ store, cacheMb: 1, nodeId, clock: () => now.t, leaseTtlMs: TTL, writeBackDelayMs: 2, writeLog: SMALL });
  return { store, now, mk };
}

async function open(p: StoreDeviceProvider, readOnly = false): Promise<DeviceHandle> {
  const h = await p.open('vol', { readOnly });
  assert.ok(h);
  return h;
}

async function segments(store: MemoryStore): Promise<string[]> {
  const out: string[] = [];
  for await (const i of store.list(logPrefix('vol'))) {
    if (parseLogName(i.key.slice(logPrefix('vol').length))?.kind === 'segment') out.push(i.key);
  }
  return out;
}

function log(h: DeviceHandle): WriteLog {
  const d = h.device as unknown as { volume?: StoreVolume };
  const l = (d.volume ?? (h.device as StoreVolume)).writeLog;
  assert.ok(l);
  return l;
}

/** Block `index` encoded with `data` (whole block), as an upload would. */
function encoded(store: MemoryStore, index: number, data: Buffer): Buffer {
  const e = newEntry(BS / 4096);
  for (let s = 0; s < e.sectors.length; s++) e.sectors[s] = data.subarray(s * 4096, (s + 1) * 4096);
  const body = new BlockIo(store, 'vol', 3, () => BS).encode(index, e, undefined, 1);
  assert.ok(body);
  return Buffer.from(body);
}

async function objectPayload(store: MemoryStore, index: number): Promise<Buffer | undefined> {
  const bytes = await store.tryGet(blockKey('vol', index));
  return bytes === undefined ? undefined : Buffer.from(decodeBlock(blockKey('vol', index), index, bytes).payload);
}

/** A promise and its resolver. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function ticks(n = 20): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

test('a partial rewrite of a logged block puts its object and logs a marker; replay reads the object', async () => {
  const { store, now, mk } = setup();
  await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
  const h = await open(mk('a'));
  const model = randomBytes(BLOCKS * BS);
  await h.device.write(0, model, { fua: true });
  assert.equal(await store.tryGet(blockKey('vol', 2)), undefined, 'whole blocks went to the log');
  const part = randomBytes(1000);
  part.copy(model, 2 * BS + 300);
  await h.device.write(2 * BS + 300, part, { fua: true });
  assert.deepEqual(await objectPayload(store, 2), model.subarray(2 * BS, 3 * BS), 'the object holds the new version');
  assert.equal(log(h).locate(2), undefined, 'the log no longer shadows the object');
  // The newest segment holds the marker.
  const segs = await segments(store);
  const last = await store.get(segs[segs.length - 1] as string);
  assert.deepEqual(parseTrailer('k', last, last.byteLength), [{ index: 2, offset: 0, length: 0, tomb: false, newer: true }]);
  // Crash and replay: the older record of block 2 stays in its segment, the marker wins.
  (h.device as StoreVolume).crashForTests();
  const r = await open(mk('b'), true);
  assert.equal(log(r).locate(2), undefined);
  assert.ok(log(r).locate(3) !== undefined);
  assert.deepEqual(Buffer.from(await r.device.read(0, BLOCKS * BS)), model);
  await r.release();
  now.t += 2 * TTL;
  const c = await open(mk('c'));
  await log(c).mergeAll();
  assert.deepEqual(await segments(store), []);
  assert.deepEqual(await objectPayload(store, 2), model.subarray(2 * BS, 3 * BS), 'the merge left the newer object');
  assert.deepEqual(Buffer.from(await c.device.read(0, BLOCKS * BS)), model);
  await c.release();
});

for (const where of ['before the block lock', 'inside the block lock'] as const) {
  test(`a merge racing a direct put of the same block (merge paused ${where}): the newest version wins`, async () => {
    const { store, now, mk } = setup();
    await createVolume(store, 'vol', { size: BLOCKS * BS, blockSize: BS });
    const h = await open(mk('a'));
    const older = randomBytes(BS);
    await h.device.write(BS, older, { fua: true });
    const l = log(h);
    assert.ok(l.locate(1) !== undefined, 'block 1 is logged');
    const entered = gate();
    const resume = gate();
    const pause = async (i: number): Promise<void> => {
      if (i !== 1) return;
      entered.open();
      await resume.wait;
    };
    const merge = l.mergeAll(where === 'inside the block lock' ? { inLock: pause } : { beforeLock: pause });
    await entered.wait;
    // The direct put of a newer version (an upload that did not rewrite the whole block).
    const newer = randomBytes(BS);
    let started = false;
    const direct = l.direct(1, encoded(store, 1, newer), () => {
      started = true;
      l.sealOpen();
    });
    await ticks();
    if (where === 'inside the block lock') {
      assert.equal(started, false, 'the direct put waits for the merge’s copy of the block');
      assert.equal(await store.tryGet(blockKey('vol', 1)), undefined);
    } else {
      await direct;
      assert.deepEqual(await objectPayload(store, 1), newer);
    }
    resume.open();
    await Promise.all([merge, direct]);
    assert.ok(started);
    assert.deepEqual(await objectPayload(store, 1), newer, 'the newer version is the object');
    assert.equal(l.locate(1), undefined);
    // Replayed by the next holder: still the newer version.
    (h.device as StoreVolume).crashForTests();
    now.t += 2 * TTL;
    const c = await open(mk('c'));
    assert.deepEqual(Buffer.from(await c.device.read(BS, BS)), newer);
    await log(c).mergeAll();
    assert.deepEqual(await objectPayload(store, 1), newer);
    assert.deepEqual(await segments(store), []);
    await c.release();
  });
}

test('index: a marker ends what a direct put must supersede; a failed segment put leaves its blocks in doubt', () => {
  const idx = new LogIndex();
  const seg = (name: string, records: LogRecord[]): Segment => ({ name, key: `k/${name}`, size: 100, records });
  idx.add(seg('1', [{ index: 4, offset: 0, length: 10, tomb: false }]));
  assert.ok(idx.holds(4));
  idx.supersede(4);
  assert.equal(idx.blocks.get(4), undefined, 'reads go to the object at once');
  assert.ok(idx.holds(4), 'until its marker is indexed');
  assert.equal(idx.dead().length, 0, 'the superseded record’s segment stays until then');
  idx.add(seg('2', [{ index: 4, offset: 0, length: 0, tomb: false, newer: true }]));
  assert.ok(!idx.holds(4));
  assert.deepEqual(idx.dead().map((s) => s.name), ['1'], 'the older segment may go (after a sync), the marker’s stays');
  idx.doubt([9]);
  assert.ok(idx.holds(9));
  idx.add(seg('3', [{ index: 9, offset: 0, length: 0, tomb: false, newer: true }]));
  assert.ok(!idx.holds(9));
});
