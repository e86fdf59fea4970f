import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectDb, RawEntry } from '../object-db/object-db.js';
import { ReadAhead } from './read-ahead.js';

const BLOCK = 1024 * 1024;

/** Just what ReadAhead uses of an ObjectDb: entries of 100 bytes, views of `blockOf(i)`. */
function fakeDb(count: number, blockOf: (i: number) => Buffer): { db: ObjectDb; oids: ObjectId[]; reads: () => number } {
  const oids = Array.from({ length: count }, (_, i) => i.toString(16).padStart(40, '0') as ObjectId);
  const index = new Map(oids.map((o, i) => [o, i]));
  let reads = 0;
  const pack = { index: { nextOffset: (offset: number) => offset + 100 }, record: { size: count * 100 + 32 } };
  const db = {
    locate: (oid: ObjectId) => ({ pack, offset: 12 + index.get(oid)! * 100, position: index.get(oid)! }),
    tryReadRawEntry: async (oid: ObjectId): Promise<RawEntry | undefined> => {
      reads++;
      const i = index.get(oid)!;
      const at = (i * 100) % (BLOCK - 100);
      return { oid, header: { type: 'blob', size: 100 }, compressed: blockOf(i).subarray(at, at + 100) } as unknown as RawEntry;
    },
  } as unknown as ObjectDb;
  return { db, oids, reads: () => reads };
}

async function readAll(ahead: ReadAhead, oids: readonly ObjectId[]): Promise<RawEntry[]> {
  const out: RawEntry[] = [];
  for (let i = 0; i < oids.length; i++) {
    ahead.fill(oids, i + 1, () => false);
    out.push((await ahead.take(oids[i]!))!);
  }
  return out;
}

describe('ReadAhead', () => {
  test('entries sharing a block stay views of it', async () => {
    const block = Buffer.alloc(BLOCK, 1);
    const { db, oids, reads } = fakeDb(200, () => block);
    const ahead = new ReadAhead(db, undefined);
    const got = await readAll(ahead, oids);
    assert.equal(ahead.copies, 0);
    assert.ok(got.every((e) => e.compressed.buffer === block.buffer));
    assert.equal(reads(), 200, 'each entry read once');
  });

  test('entries of scattered blocks are copied out once their blocks would pin more than 4 MiB', async () => {
    const blocks = Array.from({ length: 200 }, (_, i) => Buffer.alloc(BLOCK, i));
    const { db, oids } = fakeDb(200, (i) => blocks[i]!);
    const ahead = new ReadAhead(db, undefined);
    const got = await readAll(ahead, oids);
    assert.ok(ahead.copies > 100, `copies: ${ahead.copies}`);
    got.forEach((e, i) => {
      assert.equal(e.compressed.length, 100);
      assert.ok(e.compressed.every((b) => b === (i & 0xff)));
    });
  });

  test('raises the listener limit of the signal: its reads in flight all listen to it', async () => {
    const block = Buffer.alloc(BLOCK);
    const { db, oids } = fakeDb(100, () => block);
    const ac = new AbortController();
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const ahead = new ReadAhead(db, ac.signal);
      for (let i = 0; i < 70; i++) ac.signal.addEventListener('abort', () => undefined);
      await readAll(ahead, oids);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => w.name), []);
  });
});
