import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ObjectId } from '../hash/object-id.js';
import { fsckObject } from './fsck.js';
import { runFsckCases, type FsckCase } from './fsck-cases.test-util.js';

const TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';
const PARENT = 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391';
const WHO = 'A U Thor <author@example.com> 1700000000 +0200';

function commit(name: string, text: string | Buffer, expect: string[], more: Partial<FsckCase> = {}): FsckCase {
  return { name, type: 'commit', data: typeof text === 'string' ? Buffer.from(text, 'utf8') : text, expect, oracle: true, ...more };
}
function withAuthor(ident: string): string {
  return `tree ${TREE}\nauthor ${ident}\ncommitter ${WHO}\n\nmsg\n`;
}

const COMMITS: FsckCase[] = [
  commit('valid commit', `tree ${TREE}\nparent ${PARENT}\nauthor ${WHO}\ncommitter ${WHO}\n\nmsg\n`, []),
  commit('valid commit without body', `tree ${TREE}\nauthor ${WHO}\ncommitter ${WHO}\n`, []),
  commit('signed merge commit', `tree ${TREE}\nparent ${PARENT}\nparent ${TREE}\nauthor ${WHO}\ncommitter ${WHO}\nencoding UTF-8\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nm\n`, []),
  commit('missing tree line', `parent ${PARENT}\nauthor ${WHO}\ncommitter ${WHO}\n\n`, ['missingTree:error'], { oracle: false }),
  commit('bad tree id', `tree ${TREE.slice(0, 39)}x\nauthor ${WHO}\ncommitter ${WHO}\n\n`, ['badTreeSha1:error'], { oracle: false }),
  commit('bad parent id', `tree ${TREE}\nparent 123\nauthor ${WHO}\ncommitter ${WHO}\n\n`, ['badParentSha1:error'], { oracle: false }),
  commit('bad tree id as a warning goes on checking', `tree zz\nauthor ${WHO}\n\n`, ['badTreeSha1:warn', 'missingCommitter:error'], {
    oracle: false,
    config: { badTreeSha1: 'warn' },
  }),
  commit('missing author', `tree ${TREE}\ncommitter ${WHO}\n\n`, ['missingAuthor:error']),
  commit('multiple authors', `tree ${TREE}\nauthor ${WHO}\nauthor ${WHO}\ncommitter ${WHO}\n\n`, ['multipleAuthors:error']),
  commit('missing committer', `tree ${TREE}\nauthor ${WHO}\n\nmsg\n`, ['missingCommitter:error']),
  commit('missing name before email', withAuthor('<a@x> 1 +0000'), ['missingNameBeforeEmail:error']),
  commit('missing email', withAuthor('A a@x 1 +0000'), ['missingEmail:error']),
  commit('bad name', withAuthor('A > <a@x> 1 +0000'), ['badName:error']),
  commit('missing space before email', withAuthor('A<a@x> 1 +0000'), ['missingSpaceBeforeEmail:error']),
  commit('bad email', withAuthor('A <a<x> 1 +0000'), ['badEmail:error']),
  commit('missing space before date', withAuthor('A <a@x>1 +0000'), ['missingSpaceBeforeDate:error']),
  commit('bad date', withAuthor('A <a@x> x +0000'), ['badDate:error']),
  commit('no space after date', withAuthor('A <a@x> 1+0000'), ['badDate:error']),
  commit('zero-padded date', withAuthor('A <a@x> 0123 +0000'), ['zeroPaddedDate:error']),
  commit('zero date is fine', withAuthor('A <a@x> 0 +0000'), []),
  commit('extra whitespace before the date is fine', withAuthor('A <a@x> \t 5 +0000'), []),
  commit('date overflow', withAuthor('A <a@x> 18446744073709551617 +0000'), ['badDateOverflow:error']),
  commit('date beyond time_t', withAuthor('A <a@x> 9223372036854775808 +0000'), ['badDateOverflow:error']),
  commit('largest time_t is fine', withAuthor('A <a@x> 9223372036854775807 +0000'), []),
  commit('short time zone', withAuthor('A <a@x> 1 +000'), ['badTimezone:error']),
  commit('time zone without sign', withAuthor('A <a@x> 1 00000'), ['badTimezone:error']),
  commit('time zone with trailing junk', withAuthor('A <a@x> 1 +0000 x'), ['badTimezone:error']),
  commit('bad committer ident', `tree ${TREE}\nauthor ${WHO}\ncommitter C <c@x>\n\n`, ['missingSpaceBeforeDate:error']),
  commit('first error stops the checks', `tree ${TREE}\nauthor <a> 1 +0000\n\n`, ['missingNameBeforeEmail:error']),
  commit('NUL in the body', Buffer.from(`tree ${TREE}\nauthor ${WHO}\ncommitter ${WHO}\n\nmsg\0tail\n`), ['nulInCommit:warn']),
  commit('NUL in a header', Buffer.from(`tree ${TREE}\nauthor ${WHO}\0\ncommitter ${WHO}\n\nmsg\n`), ['nulInHeader:error']),
  commit('unterminated header', `tree ${TREE}\nauthor ${WHO}\ncommitter ${WHO}`, ['unterminatedHeader:error']),
  commit('empty commit', '', ['unterminatedHeader:error'], { oracle: false }),
];

function tag(name: string, text: string, expect: string[], more: Partial<FsckCase> = {}): FsckCase {
  return { name, type: 'tag', data: Buffer.from(text), expect, oracle: true, ...more };
}
const HEAD = `object ${PARENT}\ntype blob\n`;

const TAGS: FsckCase[] = [
  tag('valid tag', `${HEAD}tag v1.0\ntagger ${WHO}\n\nrelease\n`, []),
  tag('tag without tagger (early git)', `${HEAD}tag v2.6.11\n\nLinux\n`, ['missingTaggerEntry:warn']),
  tag('bad tag name', `${HEAD}tag a..b\ntagger ${WHO}\n\n`, ['badTagName:warn']),
  tag('bad tagger', `${HEAD}tag v1\ntagger T 1 +0000\n\n`, ['missingEmail:error']),
  tag('extra header is ignored by default', `${HEAD}tag v1\ntagger ${WHO}\nfoo bar\n\n`, []),
  tag('extra header as error when configured', `${HEAD}tag v1\ntagger ${WHO}\nfoo bar\n\n`, ['extraHeaderEntry:error'], { config: { extraHeaderEntry: 'error' } }),
  tag('signature header', `${HEAD}tag v1\ntagger ${WHO}\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n -----END SSH SIGNATURE-----\n\nm\n`, []),
  tag('missing object', `type blob\ntag v1\n\n`, ['missingObject:error'], { oracle: false }),
  tag('bad object id', `object 12\ntype blob\ntag v1\n\n`, ['badObjectSha1:error'], { oracle: false }),
  tag('missing type', `object ${PARENT}\ntag v1\n\n`, ['missingTypeEntry:error'], { oracle: false }),
  tag('bad type', `object ${PARENT}\ntype blobby\ntag v1\ntagger ${WHO}\n\n`, ['badType:error'], { oracle: false }),
  tag('missing tag line', `${HEAD}tagger ${WHO}\n\n`, ['missingTagEntry:error'], { oracle: false }),
  tag('unterminated tag', `${HEAD}tag v1`, ['unterminatedHeader:error'], { oracle: false }),
];

describe('fsck commits and tags', () => {
  test('commit cases give git\'s findings and severities', () => {
    runFsckCases(COMMITS);
  });

  test('tag cases give git\'s findings and severities', () => {
    runFsckCases(TAGS);
  });

  test('random bytes never throw', () => {
    const prefixed = fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.concat([Buffer.from(`tree ${TREE}\nauthor `), b]));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), prefixed), (b) => {
        for (const type of ['commit', 'tag'] as const) {
          const r = fsckObject('0'.repeat(40) as ObjectId, type, b);
          assert.ok(r.messages.every((m) => m.severity === 'error' || m.severity === 'warn'));
        }
      }),
    );
  });
});
