import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import { REF_NAME_MAX } from '../../core/limits.js';
import { checkRefName, isValidRefName, refNameProblem } from './check.js';

/** `git check-ref-format [--allow-onelevel] <name>` exit status as a boolean. */
function gitAccepts(name: string, allowOneLevel: boolean): boolean {
  const args = ['check-ref-format', ...(allowOneLevel ? ['--allow-onelevel'] : []), name];
  const r = spawnSync('git', args, { encoding: 'utf8' });
  if (r.error !== undefined) throw r.error;
  return r.status === 0;
}

const PIECES = ['a', 'b', 'x', '.', '/', '@', '{', '}', '*', ' ', '\t', '~', '^', ':', '?', '[', ']', '\\', '\x7f', '\x01', '\x1f', '-', '.lock', 'lock', '..', '@{', 'é', '日', 'heads', 'refs/'];
const nameArb = fc.array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 8 }).map((p) => p.join(''));

const HAND: [string, boolean, boolean][] = [
  // name, valid, valid with allowOneLevel
  ['refs/heads/main', true, true],
  ['main', false, true],
  ['HEAD', false, true],
  ['refs/heads/feature/x.y', true, true],
  ['refs/heads/.hidden', false, false],
  ['refs/heads/a..b', false, false],
  ['refs/heads/a.lock', false, false],
  ['refs/heads/a.lock/b', false, false],
  ['refs/heads/a.lockx', true, true],
  ['refs/heads/a.', false, false],
  ['refs/heads/a/', false, false],
  ['/refs/heads/a', false, false],
  ['refs//heads', false, false],
  ['refs/heads/a@{b', false, false],
  ['refs/heads/a@b{', true, true],
  ['@', false, false],
  ['refs/@', true, true],
  ['refs/heads/a b', false, false],
  ['refs/heads/a*', false, false],
  ['refs/heads/ünï', true, true],
  ['', false, false],
];

describe('checkRefName', () => {
  test('hand-picked cases agree with the rules and with git', () => {
    for (const [name, valid, oneLevel] of HAND) {
      assert.equal(isValidRefName(name), valid, name);
      assert.equal(isValidRefName(name, { allowOneLevel: true }), oneLevel, name);
      if (name.length > 0) {
        assert.equal(gitAccepts(name, false), valid, `git: ${name}`);
        assert.equal(gitAccepts(name, true), oneLevel, `git: ${name}`);
      }
    }
  });

  test('agrees with git check-ref-format on generated names', () => {
    const names = new Set<string>();
    for (const n of fc.sample(nameArb, { numRuns: 130, seed: 42 })) names.add(n);
    for (const n of fc.sample(nameArb, { numRuns: 130, seed: 43 })) names.add(`refs/heads/${n}`);
    for (const name of names) {
      // git would read a leading '-' as an option, and argv cannot hold an empty name usefully.
      if (name.length === 0 || name.startsWith('-')) continue;
      for (const allowOneLevel of [false, true]) {
        assert.equal(isValidRefName(name, { allowOneLevel }), gitAccepts(name, allowOneLevel), `${JSON.stringify(name)} allowOneLevel=${allowOneLevel}`);
      }
    }
  });

  test('refspec patterns allow a single star', () => {
    assert.equal(isValidRefName('refs/heads/*', { refspecPattern: true }), true);
    assert.equal(isValidRefName('refs/*/a*', { refspecPattern: true }), false);
    assert.equal(gitAccepts('refs/heads/*', false), false);
  });

  test('throws REF_BAD_NAME naming the rule', () => {
    assert.throws(
      () => checkRefName('refs/heads/a..b'),
      (e: unknown) => e instanceof ValidationError && e.code === 'REF_BAD_NAME' && e.message.includes('".."'),
    );
    assert.throws(() => checkRefName('main'), (e: unknown) => e instanceof ValidationError && /one component/.test(e.message));
    assert.equal(checkRefName('refs/tags/v1'), 'refs/tags/v1');
  });

  test('rejects NUL, lone surrogates and names over REF_NAME_MAX', () => {
    assert.equal(isValidRefName('refs/heads/a\0b'), false);
    assert.equal(isValidRefName('refs/heads/\ud800'), false);
    assert.equal(isValidRefName(`refs/heads/${'a'.repeat(REF_NAME_MAX)}`), false);
    assert.equal(isValidRefName(`refs/heads/${'a'.repeat(REF_NAME_MAX - 11)}`), true);
    assert.equal(refNameProblem(`refs/heads/${'a'.repeat(REF_NAME_MAX)}`, { maxBytes: Number.POSITIVE_INFINITY }), undefined);
  });

  test('never throws anything but ValidationError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        try {
          checkRefName(s, { allowOneLevel: true });
        } catch (e) {
          assert.ok(e instanceof ValidationError && e.code === 'REF_BAD_NAME');
        }
      }),
    );
  });
});
