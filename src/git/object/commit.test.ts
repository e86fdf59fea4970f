import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { decodeCommit, decodeCommitLinks, encodeCommit, type CommitFields } from './commit.js';
import { gitHashObject, gitRun, tempRepo } from './git-oracle.test-util.js';
import type { Ident } from './ident.js';

const oidArb = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex') as ObjectId);
const identArb: fc.Arbitrary<Ident> = fc.record({
  name: fc.string({ unit: 'grapheme' }).filter((s) => !/[<>\n]/.test(s)).map((s) => s.trim()),
  email: fc.string({ unit: 'grapheme' }).filter((s) => !/[>\n]/.test(s)),
  timestamp: fc.integer({ min: 0, max: 2 ** 40 }),
  tz: fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 2359 })).map(([s, n]) => s + String(n).padStart(4, '0')),
});
const headerArb = fc.record({
  key: fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/),
  value: fc.string({ unit: 'grapheme' }),
});
const fieldsArb: fc.Arbitrary<CommitFields> = fc.record({
  tree: oidArb,
  parents: fc.array(oidArb, { maxLength: 4 }),
  author: identArb,
  committer: identArb,
  message: fc.uint8Array({ maxLength: 200 }),
  extraHeaders: fc.array(headerArb, { maxLength: 3 }),
});

const ALICE: Ident = { name: 'Alice Example', email: 'alice@example.com', timestamp: 1700000000, tz: '+0200' };
const TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904' as ObjectId;

describe('commit', () => {
  let repo: { dir: string; dispose: () => void };
  before(() => {
    repo = tempRepo();
  });
  after(() => repo.dispose());

  test('re-encoding a commit written by git commit-tree gives the same id', () => {
    gitRun(repo.dir, ['hash-object', '-t', 'tree', '-w', '--stdin'], new Uint8Array(0));
    const id = gitRun(repo.dir, ['commit-tree', TREE, '-m', 'hello']).stdout.trim();
    const raw = Buffer.from(gitRun(repo.dir, ['cat-file', 'commit', id]).stdout, 'latin1');
    const c = decodeCommit(raw);
    assert.ok(c.author !== undefined && c.committer !== undefined);
    assert.equal(c.author.email, 'oracle@test.invalid');
    const mine = encodeCommit({ tree: c.tree, parents: c.parents, author: c.author, committer: c.committer, message: c.message });
    assert.equal(hashObject('commit', mine), id);
    assert.equal(Buffer.from(c.message).toString(), 'hello\n');
  });

  test('hashes of encoded commits equal git hash-object', () => {
    const samples = fc.sample(fieldsArb, { numRuns: 8, seed: 7 });
    samples.push({ tree: TREE, parents: [TREE], author: ALICE, committer: ALICE, message: 'm\n', extraHeaders: [{ key: 'encoding', value: 'ISO-8859-1' }] });
    for (const f of samples) {
      const bytes = encodeCommit(f);
      assert.equal(hashObject('commit', bytes), gitHashObject(repo.dir, 'commit', bytes));
    }
  });

  test('decode(encode(x)) round trips', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const c = decodeCommit(encodeCommit(f));
        assert.equal(c.tree, f.tree);
        assert.deepEqual(c.parents, f.parents);
        assert.deepEqual(c.author, { ...f.author });
        assert.deepEqual(c.committer, { ...f.committer });
        assert.equal(c.committerTime, f.committer.timestamp);
        assert.deepEqual(Buffer.from(c.message), Buffer.from(f.message as Uint8Array));
        assert.deepEqual(c.extraHeaders, (f.extraHeaders ?? []).map((h) => ({ ...h })));
        assert.equal(c.encoding, f.extraHeaders?.find((h) => h.key === 'encoding')?.value);
      }),
    );
  });

  test('decodeCommitLinks agrees with decodeCommit', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const bytes = encodeCommit(f);
        const full = decodeCommit(bytes);
        assert.deepEqual(decodeCommitLinks(bytes), { tree: full.tree, parents: full.parents, committerTime: full.committerTime });
      }),
    );
  });

  test('reads gpgsig and mergetag multi-line headers', () => {
    const text =
      `tree ${TREE}\nparent ${TREE}\nparent ${'1'.repeat(40)}\n` +
      'author A <a@x> 1 +0000\ncommitter C <c@x> 1234567890 -0500\n' +
      `mergetag object ${TREE}\n type commit\n tag v1\n tagger T <t@x> 5 +0000\n \n signed tag\n` +
      'gpgsig -----BEGIN PGP SIGNATURE-----\n \n iQEz\n -----END PGP SIGNATURE-----\n\nmerge\n';
    const c = decodeCommit(Buffer.from(text));
    assert.equal(c.parents.length, 2);
    assert.equal(c.committerTime, 1234567890);
    assert.deepEqual(
      c.extraHeaders.map((h) => h.key),
      ['mergetag', 'gpgsig'],
    );
    assert.equal(c.extraHeaders[1]?.value, '-----BEGIN PGP SIGNATURE-----\n\niQEz\n-----END PGP SIGNATURE-----');
    assert.equal(Buffer.from(c.message).toString(), 'merge\n');
    assert.equal(decodeCommitLinks(Buffer.from(text)).committerTime, 1234567890);
    // Re-encoding the decoded headers gives back the same bytes.
    assert.ok(c.author !== undefined && c.committer !== undefined);
    const again = encodeCommit({ tree: c.tree, parents: c.parents, author: c.author, committer: c.committer, message: c.message, extraHeaders: c.extraHeaders });
    assert.equal(Buffer.from(again).toString(), text);
  });

  test('is lenient: no author, odd committer, uppercase hex, no message', () => {
    const c = decodeCommit(Buffer.from(`tree ${TREE.toUpperCase()}\ncommitter broken\n`));
    assert.equal(c.tree, TREE);
    assert.equal(c.author, undefined);
    assert.equal(c.committer, undefined);
    assert.equal(c.committerTime, 0);
    assert.equal(c.message.length, 0);
    assert.equal(decodeCommitLinks(Buffer.from(`tree ${TREE}\nauthor x\ncommitter y <z> notanumber\n\n`)).committerTime, 0);
  });

  test('missing or malformed tree/parent lines throw OBJ_CORRUPT', () => {
    const bad = [
      '',
      `parent ${TREE}\ntree ${TREE}\n`,
      `tree ${TREE.slice(1)}\n`,
      `tree ${'g'.repeat(40)}\n`,
      `tree ${TREE}\nparent 1234\n`,
      `tree ${TREE}\nparent ${'z'.repeat(40)}\n`,
    ];
    for (const text of bad) {
      for (const fn of [decodeCommit, decodeCommitLinks]) {
        assert.throws(() => fn(Buffer.from(text)), (e: unknown) => e instanceof ValidationError && e.code === 'OBJ_CORRUPT', text);
      }
    }
  });

  test('random bytes only throw ValidationError', () => {
    const prefixed = fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.concat([Buffer.from(`tree ${TREE}\n`), b]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), prefixed), (b) => {
        for (const fn of [decodeCommit, decodeCommitLinks]) {
          try {
            fn(b);
          } catch (e) {
            assert.ok(e instanceof ValidationError && e.code === 'OBJ_CORRUPT');
          }
        }
      }),
    );
  });
});
