import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import type { VolumeFormat } from './volume-layout.js';
import { StoreDeviceProvider } from './store-provider.js';
import { createVolume } from './volume-layout.js';

const BS = 16 * 1024;
const SIZE = 6 * BS + 1536; // a short last block

type Op =
  | { readonly kind: 'write'; readonly off: number; readonly len: number; readonly fill: number; readonly fua: boolean }
  | { readonly kind: 'zero' | 'trim'; readonly off: number; readonly len: number }
  | { readonly kind: 'read'; readonly off: number; readonly len: number }
  | { readonly kind: 'flush' };

const range = fc.integer({ min: 0, max: SIZE - 1 }).chain((off) => fc.record({ off: fc.constant(off), len: fc.integer({ min: 1, max: Math.min(SIZE - off, 3 * BS) }) }));
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), r: range, fill: fc.integer({ min: 0, max: 255 }), fua: fc.boolean() }).map(({ kind, r, fill, fua }) => ({ kind, ...r, fill, fua })),
  fc.record({ kind: fc.constantFrom('zero' as const, 'trim' as const), r: range }).map(({ kind, r }) => ({ kind, ...r })),
  fc.record({ kind: fc.constant('read' as const), r: range }).map(({ kind, r }) => ({ kind, ...r })),
  fc.constant({ kind: 'flush' as const }),
);

/** Bytes that differ per position, so misplaced sectors show. */
function pattern(off: number, len: number, fill: number): Buffer {
  const b = Buffer.alloc(len);
  if (fill === 0) return b;
  for (let i = 0; i < len; i++) b[i] = ((off + i) * 31 + fill) & 255;
  return b;
}

/** Format 3 also with tiny write log segments merged as soon as two are put (merges race writes). */
const variants: [VolumeFormat, string, { segmentBytes: number; mergeBoundBytes: number; mergeIdleMs: number } | undefined][] = [
  [3, '', undefined],
  [3, ', write log merging during writes', { segmentBytes: 2 * BS, mergeBoundBytes: 4 * BS, mergeIdleMs: 1 }],
  [2, '', undefined],
  [1, '', undefined],
];

for (const [format, label, writeLog] of variants) {
  describe(`volume (block format ${format}${label}) against a flat model`, () => {
    test('random writes, zeroes, trims and reads, concurrent within each step; a fresh provider reads the same after close', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 12 }), fc.boolean(), async (steps, tiny) => {
          const store = new MemoryStore();
          await createVolume(store, 'vol', { size: SIZE, blockSize: BS, format });
          // A tiny cache forces evictions and back-pressure.
          const p = new StoreDeviceProvider({ store, cacheMb: tiny ? 0 : 4, nodeId: 'm', writeBackDelayMs: tiny ? 0 : 3, ...(writeLog === undefined ? {} : { writeLog }) });
          const h = await p.open('vol', { readOnly: false });
          assert.ok(h);
          const d = h.device;
          const model = Buffer.alloc(SIZE);
          for (const step of steps) {
            // Ops of one step run concurrently only when they do not overlap (NBD leaves overlaps undefined).
            const taken: [number, number][] = [];
            const batch = step.filter((o) => {
              if (o.kind === 'flush') return true;
              const clash = taken.some(([a, b]) => o.off < b && a < o.off + o.len);
              if (!clash) taken.push([o.off, o.off + o.len]);
              return !clash;
            });
            await Promise.all(
              batch.map(async (o) => {
                if (o.kind === 'write') {
                  const data = pattern(o.off, o.len, o.fill);
                  data.copy(model, o.off);
                  await d.write(o.off, data, { fua: o.fua });
                } else if (o.kind === 'zero' || o.kind === 'trim') {
                  model.fill(0, o.off, o.off + o.len);
                  await (o.kind === 'zero' ? d.writeZeroes(o.off, o.len) : d.trim(o.off, o.len));
                } else if (o.kind === 'read') {
                  const expect = Buffer.from(model.subarray(o.off, o.off + o.len));
                  assert.deepEqual(Buffer.from(await d.read(o.off, o.len)), expect);
                } else await d.flush();
              }),
            );
          }
          assert.deepEqual(Buffer.from(await d.read(0, SIZE)), model);
          await h.release();
          const h2 = await new StoreDeviceProvider({ store, cacheMb: 1, nodeId: 'r' }).open('vol', { readOnly: true });
          assert.ok(h2);
          assert.deepEqual(Buffer.from(await h2.device.read(0, SIZE)), model);
          for (let off = 0; off < SIZE; off += 4096) {
            const len = Math.min(4096, SIZE - off);
            assert.deepEqual(Buffer.from(await h2.device.read(off, len)), model.subarray(off, off + len), `sector at ${off}`);
          }
          await h2.release();
        }),
        { numRuns: 40 },
      );
    });
  });
}
