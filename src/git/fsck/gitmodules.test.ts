import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { fsckSpecialBlob, fsckSpecialBlobProblem } from './fsck.js';
import { runFsckCases, type FsckCase } from './fsck-cases.test-util.js';
import { parseGitConfig } from './gitmodules.js';
import { isValidSubmoduleName, isValidSubmoduleUrl, urlNormalize } from './submodule-url.js';

/** A tree naming `blob` as `file`, plus the blob, checked together as git does. */
function withTree(name: string, file: string, blob: string, expect: string[]): FsckCase {
  const data = Buffer.from(blob, 'latin1');
  const oid = hashObject('blob', data);
  const tree = Buffer.concat([Buffer.from(`100644 ${file}\0`), Buffer.from(oid, 'hex')]);
  return { name, type: 'tree', data: tree, expect, oracle: true, extra: [{ type: 'blob', data }] };
}

const CASES: FsckCase[] = [
  withTree('good .gitmodules', '.gitmodules', '[submodule "lib"]\n\tpath = lib\n\turl = https://example.com/lib.git\n', []),
  withTree('submodule name escaping .git/modules', '.gitmodules', '[submodule "../../hooks"]\n\tpath = x\n\turl = ./x\n', ['gitmodulesName:error', 'gitmodulesName:error']),
  withTree('url that looks like an option', '.gitmodules', '[submodule "a"]\n\turl = -oProxyCommand=evil\n', ['gitmodulesUrl:error']),
  withTree('path that looks like an option', '.gitmodules', '[submodule "a"]\n\tpath = -x\n', ['gitmodulesPath:error']),
  withTree('update command', '.gitmodules', '[submodule "a"]\n\tupdate = !rm -rf /\n', ['gitmodulesUpdate:error']),
  withTree('url with an encoded newline', '.gitmodules', '[submodule "a"]\n\turl = https://example.com/%0ahost=evil\n', ['gitmodulesUrl:error']),
  withTree('relative url climbing into the scheme', '.gitmodules', '[submodule "a"]\n\turl = ../../:evil\n', ['gitmodulesUrl:error']),
  withTree('http:: url with a missing host', '.gitmodules', '[submodule "a"]\n\turl = http::https:///example.com/x\n', ['gitmodulesUrl:error']),
  withTree('unparsable .gitmodules', '.gitmodules', '[submodule "a"\n\tpath = x\n', ['gitmodulesParse:warn']),
  withTree('NTFS short name is checked too', 'GITMOD~1', '[submodule ".."]\n\tpath = x\n', ['gitmodulesName:error']),
  withTree('.gitattributes with a too long line', '.gitattributes', `${'x'.repeat(2048)} -text\n`, ['gitattributesLineLength:error']),
  withTree('.gitattributes just under the limit', '.gitattributes', `${'x'.repeat(2047)}\n`, []),
];

describe('fsck .gitmodules and .gitattributes', () => {
  test('cases give git\'s findings and severities', () => {
    runFsckCases(CASES);
  });

  test('blobs git would not load and blobs that are missing or not blobs', () => {
    const oid = '1'.repeat(40) as ObjectId;
    assert.deepEqual(fsckSpecialBlob(oid, 'gitmodules', undefined).map((m) => m.id), ['gitmodulesLarge']);
    assert.deepEqual(fsckSpecialBlob(oid, 'gitattributes', undefined).map((m) => m.id), ['gitattributesLarge']);
    assert.deepEqual(fsckSpecialBlobProblem(oid, 'gitmodules', 'missing').map((m) => `${m.id}:${m.severity}`), ['gitmodulesMissing:error']);
    assert.deepEqual(fsckSpecialBlobProblem(oid, 'gitattributes', 'not-blob').map((m) => `${m.id}:${m.severity}`), ['gitattributesBlob:error']);
  });

  test('config parser follows git\'s syntax', () => {
    const seen: [string, string | undefined][] = [];
    const ok = parseGitConfig(
      '\xef\xbb\xbf# comment\n[Submodule "Mixed Case"]\n\tPath = "a b" ; trailing\n\tflag\n\turl = x\\\n y\n[core]\n\tk = "q\\"t\\n"\n[a.B]\nv=1\r\n',
      (n, v) => seen.push([n, v]),
    );
    assert.equal(ok, true);
    assert.deepEqual(seen, [
      ['submodule.Mixed Case.path', 'a b'],
      ['submodule.Mixed Case.flag', undefined],
      ['submodule.Mixed Case.url', 'x y'],
      ['core.k', 'q"t\n'],
      ['a.b.v', '1'],
    ]);
    for (const bad of ['[a', '[a "b]\n', 'k = "open\n', 'k = \\x\n', '1key = v\n', '[]\n', '[a "b" ]\n']) {
      assert.equal(parseGitConfig(bad, () => undefined), false, JSON.stringify(bad));
    }
  });

  test('submodule names and urls', () => {
    assert.equal(isValidSubmoduleName('a/b'), true);
    assert.equal(isValidSubmoduleName('..'), false);
    assert.equal(isValidSubmoduleName('a/../b'), false);
    assert.equal(isValidSubmoduleName('a\\..'), false);
    assert.equal(isValidSubmoduleName('a..b'), true);
    assert.equal(isValidSubmoduleName(''), false);
    assert.equal(isValidSubmoduleUrl('https://example.com/a.git'), true);
    assert.equal(isValidSubmoduleUrl('git@example.com:a.git'), true);
    assert.equal(isValidSubmoduleUrl('../a.git'), true);
    assert.equal(isValidSubmoduleUrl('./../../../a'), true);
    assert.equal(isValidSubmoduleUrl('../../../../:x'), false);
    assert.equal(isValidSubmoduleUrl('../../..//x'), false);
    assert.equal(isValidSubmoduleUrl('git://host/%0a'), false);
    assert.equal(isValidSubmoduleUrl('https://host:99999/'), false);
    assert.equal(isValidSubmoduleUrl('https://ho st/'), false);
    assert.equal(isValidSubmoduleUrl('https://host/%zz'), false);
    assert.equal(isValidSubmoduleUrl('https://host/a/../../b'), false);
    assert.equal(urlNormalize('HTTPS://User@Example.COM:443/a/./b/../c?q#f'), 'https://User@example.com/a/c?q#f');
  });

  test('random .gitmodules bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        fsckSpecialBlob('0'.repeat(40) as ObjectId, 'gitmodules', b);
      }),
    );
    fc.assert(
      fc.property(fc.string(), (s) => {
        isValidSubmoduleUrl(s);
        isValidSubmoduleUrl(`https://${s}`);
      }),
    );
  });
});
