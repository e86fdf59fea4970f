import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConflictError, hasCode } from '../../core/errors.js';
import { breakLease, readLatestLease } from '../../nbd/device/lease.js';
import type { VolumeRecords } from '../../nbd/device/lease-records.js';
import { StoreDeviceProvider } from '../../nbd/device/store-provider.js';
import { createVolume, deleteVolumeRecords, readVolumeMeta } from '../../nbd/device/volume-layout.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { EtcdConnection } from './etcd-connection.js';
import { dropPrefix, etcdTarget, testOptions } from './etcd-meta.test-util.js';
import { EtcdNbdRecords } from './nbd-records.js';

const env = etcdTarget('etcd NBD record tests');
const skip = env === undefined ? 'no etcd cluster' : false;
const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const text = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('utf8'));

describe('EtcdNbdRecords', () => {
  test('many concurrent create-once calls on one key from three clients: exactly one wins', { skip, timeout: 60_000 }, async () => {
    if (env === undefined) return;
    const options = testOptions(env);
    const conns = await Promise.all([0, 1, 2].map(() => EtcdConnection.open(options)));
    try {
      const all = conns.map((c) => new EtcdNbdRecords(c));
      for (let round = 0; round < 5; round++) {
        const key = `nbd/race/lease/${String(round + 1).padStart(12, '0')}`;
        const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (all[i % 3] as EtcdNbdRecords).create(key, bytes(`creator ${i}`))));
        const winners = results.flatMap((won, i) => (won ? [i] : []));
        assert.equal(winners.length, 1, `round ${round}: winners ${JSON.stringify(winners)}`);
        assert.equal(text(await (all[1] as EtcdNbdRecords).get(key)), `creator ${winners[0]}`, "the record holds the winner's value");
      }
    } finally {
      for (const c of conns) c.close();
      await dropPrefix(options);
    }
  });

  test('put, get, exists, list in key order within the prefix, delete', { skip, timeout: 60_000 }, async () => {
    if (env === undefined) return;
    const options = testOptions(env);
    const conn = await EtcdConnection.open(options);
    try {
      const r: VolumeRecords = new EtcdNbdRecords(conn);
      assert.equal(r.inObjectStore, false);
      for (const e of [3, 1, 12, 2]) assert.equal(await r.create(`nbd/v/lease/${String(e).padStart(12, '0')}`, bytes(`e${e}`)), true);
      await r.create('nbd/v/meta', bytes('{}'));
      await r.create('nbd/v2/lease/000000000001', bytes('other volume'));
      assert.deepEqual(await r.list('nbd/v/lease/'), ['000000000001', '000000000002', '000000000003', '000000000012'].map((e) => `nbd/v/lease/${e}`));
      assert.deepEqual(await r.list('nbd/nothing/'), []);
      assert.equal(await r.exists('nbd/v/lease/000000000002'), true);
      assert.equal(await r.exists('nbd/v/lease/000000000004'), false);
      assert.equal(await r.get('nbd/v/lease/000000000004'), undefined);
      await r.put('nbd/v/lease/000000000002', bytes('renewed'));
      assert.equal(text(await r.get('nbd/v/lease/000000000002')), 'renewed');
      assert.equal(await r.create('nbd/v/lease/000000000002', bytes('again')), false, 'an existing key is never created again');
      await r.delete('nbd/v/lease/000000000002');
      await r.delete('nbd/v/lease/000000000099');
      assert.equal(await r.exists('nbd/v/lease/000000000002'), false);
      assert.deepEqual(await r.list('nbd/v/lease/'), ['nbd/v/lease/000000000001', 'nbd/v/lease/000000000003', 'nbd/v/lease/000000000012']);
      await assert.rejects(r.create('repos/x', bytes('x')), (e: unknown) => hasCode(e, 'ARG_INVALID'));
    } finally {
      conn.close();
      await dropPrefix(options);
    }
  });

  test('volumes over a store with records in etcd: create once, one writer across nodes, unlock, delete', { skip, timeout: 60_000 }, async () => {
    if (env === undefined) return;
    const options = testOptions(env);
    const conns = await Promise.all([0, 1].map(() => EtcdConnection.open(options)));
    const [one, two] = conns.map((c) => new EtcdNbdRecords(c)) as [EtcdNbdRecords, EtcdNbdRecords];
    const store = new MemoryStore();
    const BS = 64 * 1024;
    try {
      const created = await Promise.allSettled([createVolume(store, 'vol', { size: 4 * BS, blockSize: BS, records: one }), createVolume(store, 'vol', { size: 8 * BS, blockSize: BS, records: two })]);
      const won = created.filter((c) => c.status === 'fulfilled');
      assert.equal(won.length, 1, 'one of two concurrent creators wins');
      const lost = created.find((c) => c.status === 'rejected');
      assert.ok(lost !== undefined && hasCode(lost.reason, 'VOLUME_EXISTS'));
      assert.deepEqual(await readVolumeMeta(store, 'vol'), (won[0] as PromiseFulfilledResult<unknown>).value);

      const a = await new StoreDeviceProvider({ store, records: one, cacheMb: 4, nodeId: 'node-a', writeBackDelayMs: 5 }).open('vol', { readOnly: false });
      assert.ok(a);
      await assert.rejects(
        new StoreDeviceProvider({ store, records: two, cacheMb: 4, nodeId: 'node-b' }).open('vol', { readOnly: false }),
        (e: unknown) => e instanceof ConflictError && /in use by node-a/.test(e.message),
      );
      assert.equal((await readLatestLease(store, 'vol', two))?.record.nodeId, 'node-a');
      assert.equal((await breakLease(store, 'vol', Date.now(), two))?.epoch, 2);
      await a.release();
      const b = await new StoreDeviceProvider({ store, records: two, cacheMb: 4, nodeId: 'node-b' }).open('vol', { readOnly: false });
      assert.ok(b);
      assert.equal((await readLatestLease(store, 'vol', one))?.epoch, 3);
      await b.release();
      assert.equal((await readLatestLease(store, 'vol', one))?.record.state, 'free');

      await deleteVolumeRecords(store, 'vol', one);
      assert.deepEqual(await one.list('nbd/'), []);
    } finally {
      for (const c of conns) c.close();
      await dropPrefix(options);
    }
  });
});
