import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZERO_OID, type ObjectId } from '../git/hash/object-id.js';
import type { RepoState } from '../meta/meta-store.js';
import type { CommitLinks } from '../repo/repository.js';
import { checkDelete, checkDuplicates, checkFastForward, checkNameConflicts, checkRefNameForPush, type CommandState } from './receive-checks.js';
import { DEFAULT_RECEIVE_PACK_CONFIG } from './options.js';

const id = (n: string): ObjectId => n.padEnd(40, '0') as ObjectId;
const cmd = (name: string, oldOid: ObjectId, newOid: ObjectId): CommandState => ({ cmd: { name, oldOid, newOid } });
const state = (...names: string[]): RepoState => ({ version: 1, head: 'refs/heads/main', refs: new Map(names.map((n) => [n, { oid: id('1') }])), packs: [] });

describe('receive checks', () => {
  test('ref names as git: under refs/, check-ref-format, one level only for deletes', () => {
    const said: string[] = [];
    const say = (t: string): void => void said.push(t);
    const bad = [cmd('HEAD', ZERO_OID, id('a')), cmd('refs/heads/a..b', ZERO_OID, id('a')), cmd('refs/x', ZERO_OID, id('a'))];
    for (const c of bad) assert.equal(checkRefNameForPush(c, say), false, c.cmd.name);
    assert.ok(bad.every((c) => c.error === 'funny refname'));
    assert.equal(checkRefNameForPush(cmd('refs/x', id('a'), ZERO_OID), say), true, 'a one-level delete is allowed');
    assert.equal(checkRefNameForPush(cmd('refs/heads/ok', ZERO_OID, id('a')), say), true);
    assert.equal(said.length, 3);
  });

  test('duplicates, deletes of HEAD, directory/file conflicts', () => {
    const say = (): void => undefined;
    const dups = [cmd('refs/heads/a', ZERO_OID, id('a')), cmd('refs/heads/a', ZERO_OID, id('b')), cmd('refs/heads/b', ZERO_OID, id('b'))];
    checkDuplicates(dups, say);
    assert.deepEqual(dups.map((c) => c.error), ['failed to update ref', 'failed to update ref', undefined]);
    const del = cmd('refs/heads/main', id('1'), ZERO_OID);
    checkDelete(del, state('refs/heads/main'), DEFAULT_RECEIVE_PACK_CONFIG, say);
    assert.equal(del.error, 'deletion of the current branch prohibited');
    const warn = cmd('refs/heads/main', id('1'), ZERO_OID);
    checkDelete(warn, state('refs/heads/main'), { ...DEFAULT_RECEIVE_PACK_CONFIG, denyDeleteCurrent: 'warn' }, say);
    assert.equal(warn.error, undefined);
    const cmds = [
      cmd('refs/heads/a/b', ZERO_OID, id('a')),
      cmd('refs/heads/x', ZERO_OID, id('a')),
      cmd('refs/heads/y/z', ZERO_OID, id('a')),
      cmd('refs/heads/y', id('1'), ZERO_OID),
    ];
    checkNameConflicts(cmds, state('refs/heads/a', 'refs/heads/x/1', 'refs/heads/y'), say);
    assert.deepEqual(cmds.map((c) => c.error), ['refname conflict', 'refname conflict', undefined, undefined]);
  });

  test('fast-forward walk', async () => {
    // a - b - c - d ; x off b
    const g: Record<string, CommitLinks> = {};
    const add = (n: string, t: number, ps: string[]): void => void (g[id(n)] = { tree: id('t'), parents: ps.map(id), committerTime: t });
    add('a', 1, []);
    add('b', 2, ['a']);
    add('c', 3, ['b']);
    add('d', 4, ['c']);
    add('x', 5, ['b']);
    const linksOf = async (o: ObjectId): Promise<CommitLinks | undefined> => g[o];
    const say = (): void => undefined;
    const ff = cmd('refs/heads/main', id('b'), id('d'));
    await checkFastForward(ff, linksOf, say);
    assert.equal(ff.error, undefined);
    const nf = cmd('refs/heads/main', id('c'), id('x'));
    await checkFastForward(nf, linksOf, say);
    assert.equal(nf.error, 'non-fast-forward');
    const tagMove = cmd('refs/tags/t', id('c'), id('x'));
    await checkFastForward(tagMove, linksOf, say);
    assert.equal(tagMove.error, undefined, 'only branches are checked');
    const unknown = cmd('refs/heads/main', id('c'), id('q'));
    await checkFastForward(unknown, linksOf, say);
    assert.equal(unknown.error, 'bad ref');
  });
});
