import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../core/errors.js';
import { REPO_NAME_COMPONENT_MAX, REPO_NAME_MAX } from '../core/limits.js';
import { checkRepoName, isValidRepoName } from './name.js';

function rejects(name: string, why?: RegExp): void {
  assert.throws(
    () => checkRepoName(name),
    (err: unknown) => {
      assert.ok(err instanceof StowageError, `expected a StowageError for ${JSON.stringify(name)}`);
      assert.equal(err.code, 'REPO_BAD_NAME');
      if (why !== undefined) assert.match(err.message, why);
      return true;
    },
  );
}

describe('checkRepoName', () => {
  test('accepts ordinary names and normalizes a leading slash and a trailing .git', () => {
    assert.equal(checkRepoName('app'), 'app');
    assert.equal(checkRepoName('team/app'), 'team/app');
    assert.equal(checkRepoName('/team/app.git'), 'team/app');
    assert.equal(checkRepoName('app.git'), 'app');
    assert.equal(checkRepoName('A-b_c.d/e.f-1'), 'A-b_c.d/e.f-1');
    assert.equal(checkRepoName('a'.repeat(REPO_NAME_COMPONENT_MAX)), 'a'.repeat(REPO_NAME_COMPONENT_MAX));
  });

  test('refuses traversal, hidden and option-like components', () => {
    rejects('..', /starts with "\."/);
    rejects('a/../b', /starts with "\."/);
    rejects('a/..', /starts with "\."/);
    rejects('.', /starts with "\."/);
    rejects('.hidden', /starts with "\."/);
    rejects('a/.git/b', /starts with "\."/);
    rejects('-x', /starts with "-"/);
    rejects('a/-rf', /starts with "-"/);
    rejects('a..b', /contains "\.\."/);
  });

  test('refuses empty names and empty components', () => {
    rejects('', /empty/);
    rejects('/', /empty/);
    rejects('.git', /empty/);
    rejects('a//b', /empty component/);
    rejects('//a', /starts with/);
    rejects('a/', /ends with "\/"/);
  });

  test('refuses characters outside the grammar', () => {
    rejects('a b', /only contain/);
    rejects('a\0b', /only contain/);
    rejects('a\nb', /only contain/);
    rejects('a\\b', /only contain/);
    rejects('caf\u00e9', /only contain/);
    rejects('a:b', /only contain/);
    rejects('a%2e%2e', /only contain/);
  });

  test('refuses names over the limits', () => {
    rejects('a'.repeat(REPO_NAME_COMPONENT_MAX + 1), /component is longer/);
    const long = Array.from({ length: 60 }, () => 'abcde').join('/');
    assert.ok(long.length > REPO_NAME_MAX);
    rejects(long, /longer than/);
  });

  test('refuses a second .git suffix (one URL, one name)', () => {
    rejects('a.git.git', /\.git/);
    rejects('x.git/y', /\.git/);
  });

  test('error messages never echo control characters', () => {
    try {
      checkRepoName('bad\u0007name\u001b[31m');
      assert.fail('expected a throw');
    } catch (err) {
      assert.ok(err instanceof StowageError);
      assert.doesNotMatch(err.message, /[\u0000-\u001f\u007f]/);
    }
  });

  test('property: random strings throw only REPO_BAD_NAME; accepted names are normal forms', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
        let out: string;
        try {
          out = checkRepoName(s);
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'REPO_BAD_NAME');
          return;
        }
        assert.match(out, /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/);
        assert.ok(!out.includes('..') && out.length <= REPO_NAME_MAX);
        assert.equal(checkRepoName(out), out);
      }),
      { seed: 42, numRuns: 2000 },
    );
  });

  test('property: names built from the grammar are accepted unchanged', () => {
    const comp = fc
      .stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_-]{0,20}$/)
      .filter((c) => !c.toLowerCase().endsWith('.git'));
    fc.assert(
      fc.property(fc.array(comp, { minLength: 1, maxLength: 5 }), (parts) => {
        const name = parts.join('/');
        assert.equal(checkRepoName(name), name);
        assert.equal(checkRepoName(`/${name}.git`), name);
        assert.ok(isValidRepoName(name));
      }),
      { seed: 7, numRuns: 500 },
    );
  });
});
