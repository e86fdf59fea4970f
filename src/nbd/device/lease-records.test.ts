import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError, StoreError, hasCode } from '../../core/errors.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { ObjectStore, PutOptions, PutResult } from '../../storage/object-store.js';
import { breakLease, readLatestLease } from './lease.js';
import { StoreVolumeRecords, type VolumeRecords } from './lease-records.js';
import { StoreDeviceProvider } from './store-provider.js';
import { createVolume, deleteVolumeRecords, leaseKey, metaKey, readVolumeMeta } from './volume-layout.js';

const BS = 64 * 1024;
const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

/** A store like Swift's s3api: every conditional put is refused. */
class NoConditionStore extends MemoryStore {
  override put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts: PutOptions = {}): Promise<PutResult> {
    if (opts.ifAbsent === true) return Promise.reject(new StoreError('STORE_CONDITION_UNSUPPORTED', `create-only put of ${key} refused`));
    return super.put(key, body, opts);
  }
}

/** Records kept in a Map: what etcd gives, without etcd (the etcd one is tested in meta/etcd). */
class MapRecords implements VolumeRecords {
  readonly description = 'map';
  readonly inObjectStore = false;
  readonly map = new Map<string, Uint8Array>();
  async create(key: string, value: Uint8Array): Promise<boolean> {
    await Promise.resolve();
    if (this.map.has(key)) return false;
    this.map.set(key, value);
    return true;
  }
  async put(key: string, value: Uint8Array): Promise<void> {
    await Promise.resolve();
    this.map.set(key, value);
  }
  async get(key: string): Promise<Uint8Array | undefined> {
    await Promise.resolve();
    return this.map.get(key);
  }
  async exists(key: string): Promise<boolean> {
    await Promise.resolve();
    return this.map.has(key);
  }
  async list(prefix: string): Promise<string[]> {
    await Promise.resolve();
    return [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
  async delete(key: string): Promise<void> {
    await Promise.resolve();
    this.map.delete(key);
  }
}

test('StoreVolumeRecords: create once, overwrite, read, list in key order, delete', async () => {
  const store = new MemoryStore();
  const r = new StoreVolumeRecords(store);
  assert.equal(r.inObjectStore, true);
  assert.equal(await r.create('nbd/v/lease/000000000002', bytes('two')), true);
  assert.equal(await r.create('nbd/v/lease/000000000002', bytes('again')), false);
  assert.equal(text(await r.get('nbd/v/lease/000000000002')), 'two');
  await r.create('nbd/v/lease/000000000001', bytes('one'));
  await r.create('nbd/vv/lease/000000000001', bytes('other volume'));
  assert.deepEqual(await r.list('nbd/v/lease/'), ['nbd/v/lease/000000000001', 'nbd/v/lease/000000000002']);
  await r.put('nbd/v/lease/000000000001', bytes('renewed'));
  assert.equal(text(await store.tryGet('nbd/v/lease/000000000001')), 'renewed', 'records are the store keys themselves');
  assert.equal(await r.exists('nbd/v/lease/000000000001'), true);
  await r.delete('nbd/v/lease/000000000001');
  assert.equal(await r.exists('nbd/v/lease/000000000001'), false);
  assert.equal(await r.get('nbd/v/lease/000000000001'), undefined);
});

test('without separate records a store that refuses create-only puts cannot create volumes', async () => {
  await assert.rejects(createVolume(new NoConditionStore(), 'vol', { size: 4 * BS, blockSize: BS }), (e: unknown) => hasCode(e, 'STORE_CONDITION_UNSUPPORTED'));
});

test('with separate records: create, lease, refuse a second writer, unlock, delete records', async () => {
  const store: ObjectStore = new NoConditionStore();
  const records = new MapRecords();
  const meta = await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS, records });
  assert.deepEqual(await readVolumeMeta(store, 'vol'), meta, 'the meta object is in the store');
  assert.ok(records.map.has(metaKey('vol')), 'the name is claimed in the records');
  await assert.rejects(createVolume(store, 'vol', { size: 8 * BS, blockSize: BS, records }), (e: unknown) => hasCode(e, 'VOLUME_EXISTS'));
  assert.equal((await readVolumeMeta(store, 'vol'))?.size, 4 * BS, 'a losing creator changes nothing');

  const mk = (nodeId: string): StoreDeviceProvider => new StoreDeviceProvider({ store, records, cacheMb: 4, nodeId, writeBackDelayMs: 5 });
  const a = await mk('a').open('vol', { readOnly: false });
  assert.ok(a);
  await a.device.write(0, Buffer.alloc(BS, 7));
  await a.device.flush();
  assert.equal((await readLatestLease(store, 'vol', records))?.record.nodeId, 'a');
  assert.ok(records.map.has(leaseKey('vol', 1)));
  for await (const info of store.list('nbd/vol/lease/')) assert.fail(`no lease record in the store: ${info.key}`);
  await assert.rejects(mk('b').open('vol', { readOnly: false }), (e: unknown) => e instanceof ConflictError && /in use by a/.test(e.message));

  const broken = await breakLease(store, 'vol', Date.now(), records);
  assert.equal(broken?.epoch, 2);
  await assert.rejects(a.device.write(BS, Buffer.alloc(BS, 1)).then(() => a.device.flush()), (e: unknown) => hasCode(e, 'VOLUME_LEASE_LOST'));
  await a.release();
  const b = await mk('b').open('vol', { readOnly: false });
  assert.ok(b);
  assert.equal((await readLatestLease(store, 'vol', records))?.epoch, 3);
  assert.ok(Buffer.from(await b.device.read(0, BS)).equals(Buffer.alloc(BS, 7)), 'flushed data survives the takeover');
  await b.release();

  await deleteVolumeRecords(store, 'vol', records);
  assert.deepEqual([...records.map.keys()], []);
});

test('a claim whose store write was lost is completed by the next creator', async () => {
  const store = new NoConditionStore();
  const records = new MapRecords();
  const claimed = { format: 2, size: 4 * BS, blockSize: BS, created: new Date(0).toISOString(), description: 'first' };
  await records.create(metaKey('vol'), bytes(`${JSON.stringify(claimed)}\n`));
  await assert.rejects(createVolume(store, 'vol', { size: 8 * BS, blockSize: BS, records }), (e: unknown) => hasCode(e, 'VOLUME_EXISTS'));
  assert.deepEqual(await readVolumeMeta(store, 'vol'), claimed, "the first creator's meta, not the second's");
});

test('the store records keep fs behaviour: the meta object is the claim', async () => {
  const store = new MemoryStore();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS, records: new StoreVolumeRecords(store) });
  await assert.rejects(createVolume(store, 'vol', { size: 4 * BS, blockSize: BS }), (e: unknown) => hasCode(e, 'VOLUME_EXISTS'));
  await deleteVolumeRecords(store, 'vol');
  assert.ok((await readVolumeMeta(store, 'vol')) !== undefined, 'deleting store records leaves the meta object to deleteVolume');
});

test('a volume whose meta object predates the records is not created over', async () => {
  const store = new MemoryStore();
  await createVolume(store, 'vol', { size: 4 * BS, blockSize: BS });
  const records = new MapRecords();
  await assert.rejects(createVolume(store, 'vol', { size: 8 * BS, blockSize: BS, records }), (e: unknown) => hasCode(e, 'VOLUME_EXISTS'));
  assert.equal((await readVolumeMeta(store, 'vol'))?.size, 4 * BS);
  assert.equal(records.map.size, 0, 'no claim taken');
});
