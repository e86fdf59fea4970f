import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ObjectId } from '../hash/object-id.js';
import { FsckReporter } from './report.js';
import { fsckTreeReference } from './tree-check-reference.test-util.js';
import { fsckTree } from './tree-check.js';

const OID = 'ab'.repeat(20) as ObjectId;
const NAMES = ['a', 'a.c', 'a-b', 'a/b', 'b', 'foo', 'foo.bar', '.', '..', '.git', '.GIT', 'git~1', '.git. ', 'a\\.git', 'x\\.gitmodules',
  '.gitmodules', '.gitattributes', '.gitignore', '.mailmap', '.g\u200cit', 'GITMOD~1', '~', 'c'.repeat(5000)];
const MODES = ['100644', '100755', '120000', '40000', '040000', '160000', '100664', '100600', '0100644', '7', '1006x4'];
const IDS = ['00'.repeat(20), '11'.repeat(20), 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391'];

function findings(run: (r: FsckReporter) => unknown): unknown {
  const r = new FsckReporter(OID, undefined);
  const special = run(r);
  return { messages: r.messages, special };
}

const entry = fc.tuple(fc.constantFrom(...MODES), fc.constantFrom(...NAMES), fc.constantFrom(...IDS));

describe('fsckTree (allocation-free) against the reference implementation', () => {
  test('same findings and special blobs for generated trees, whole or damaged', () => {
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 12 }),
        fc.boolean(),
        fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }))),
        fc.option(fc.nat()),
        (entries, sorted, flip, cut) => {
          const list = sorted ? [...entries].sort((x, y) => (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)) : entries;
          let data: Buffer = Buffer.concat(list.map(([m, n, o]) => Buffer.concat([Buffer.from(`${m} `), Buffer.from(n), Buffer.from([0]), Buffer.from(o, 'hex')])));
          if (flip !== null && data.length > 0) {
            data = Buffer.from(data);
            data[flip[0] % data.length] = flip[1];
          }
          if (cut !== null && data.length > 0) data = data.subarray(0, cut % data.length);
          assert.deepEqual(findings((r) => fsckTree(data, r)), findings((r) => fsckTreeReference(data, r)));
        },
      ),
      { seed: 20261122, numRuns: 3000 },
    );
  });

  test('same findings for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        assert.deepEqual(findings((r) => fsckTree(bytes, r)), findings((r) => fsckTreeReference(bytes, r)));
      }),
      { seed: 7, numRuns: 2000 },
    );
  });
});
