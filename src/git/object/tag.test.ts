import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { gitHashObject, gitRun, tempRepo } from './git-oracle.test-util.js';
import type { Ident } from './ident.js';
import { decodeTag, encodeTag, type TagFields } from './tag.js';

const oidArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId);
const identArb: fc.Arbitrary<Ident> = fc.record({
  name: fc.string({ unit: 'grapheme' }).filter((s) => !/[<>\n]/.test(s)).map((s) => s.trim()),
  email: fc.string({ unit: 'grapheme' }).filter((s) => !/[>\n]/.test(s)),
  timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  tz: fc.constantFrom('+0000', '-0700', '+0530'),
});
const fieldsArb: fc.Arbitrary<TagFields> = fc.record({
  object: oidArb,
  type: fc.constantFrom('commit', 'tree', 'blob', 'tag'),
  tag: fc.string({ unit: 'grapheme', minLength: 1 }).filter((s) => !s.includes('\n')),
  tagger: fc.option(identArb, { nil: undefined }),
  message: fc.uint8Array({ maxLength: 100 }),
  extraHeaders: fc.array(fc.record({ key: fc.stringMatching(/^[a-z][a-z-]{0,8}$/).filter((k) => k !== 'tagger'), value: fc.string() }), { maxLength: 2 }),
});

describe('tag', () => {
  let repo: { dir: string; dispose: () => void };
  before(() => {
    repo = tempRepo();
  });
  after(() => repo.dispose());

  test('decode(encode(x)) round trips', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const t = decodeTag(encodeTag(f));
        assert.equal(t.object, f.object);
        assert.equal(t.type, f.type);
        assert.equal(t.tag, f.tag);
        assert.deepEqual(t.tagger, f.tagger === undefined ? undefined : { ...f.tagger });
        assert.deepEqual(Buffer.from(t.message), Buffer.from(f.message as Uint8Array));
        assert.deepEqual(t.extraHeaders, (f.extraHeaders ?? []).map((h) => ({ ...h })));
      }),
    );
  });

  test('a tag accepted by git mktag encodes to the same id', () => {
    const blob = gitHashObject(repo.dir, 'blob', Buffer.from('hi\n')) as ObjectId;
    const fields: TagFields = {
      object: blob,
      type: 'blob',
      tag: 'v1.0',
      tagger: { name: 'T Agger', email: 't@example.com', timestamp: 1700000000, tz: '+0100' },
      message: 'release\n',
    };
    const bytes = encodeTag(fields);
    const r = gitRun(repo.dir, ['mktag'], bytes);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(hashObject('tag', bytes), r.stdout.trim());
  });

  test('hashes of encoded random tags equal git hash-object', () => {
    for (const f of fc.sample(fieldsArb, { numRuns: 6, seed: 11 })) {
      const bytes = encodeTag(f);
      assert.equal(hashObject('tag', bytes), gitHashObject(repo.dir, 'tag', bytes));
    }
  });

  test('old tags without tagger and signed tags decode', () => {
    const sig = '-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n';
    const t = decodeTag(Buffer.from(`object ${'a'.repeat(40)}\ntype commit\ntag v2.6.11\n\nLinux v2.6.11\n${sig}`));
    assert.equal(t.tagger, undefined);
    assert.equal(Buffer.from(t.message).toString(), `Linux v2.6.11\n${sig}`);
  });

  test('missing or malformed object/type/tag lines throw OBJ_CORRUPT', () => {
    const o = 'b'.repeat(40);
    const bad = ['', `type commit\nobject ${o}\ntag x\n`, `object ${o.slice(2)}\ntype commit\ntag x\n`, `object ${o}\ntype thing\ntag x\n`, `object ${o}\ntype blob\n\n`];
    for (const text of bad) {
      assert.throws(() => decodeTag(Buffer.from(text)), (e: unknown) => e instanceof ValidationError && e.code === 'OBJ_CORRUPT', text);
    }
  });

  test('random bytes only throw ValidationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        try {
          decodeTag(b);
        } catch (e) {
          assert.ok(e instanceof ValidationError && e.code === 'OBJ_CORRUPT');
        }
      }),
    );
  });
});
