import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseBackendUrl } from './backend-url.js';

class UrlProblem extends Error {}
const rules = {
  scheme: 'x',
  example: 'x://HOST/PATH?…',
  credentialsHint: 'use env',
  keys: { region: 'region', pathstyle: 'pathStyle' } as const,
  fail: (m: string) => new UrlProblem(m),
};

test('authority, decoded path, and keys matched like config keys', () => {
  const u = parseBackendUrl('x://b/a%20b/c?Path_Style=1&region=a+b%2Bc', rules);
  assert.equal(u.authority, 'b');
  assert.equal(u.path, '/a b/c');
  assert.deepEqual(u.params, [
    { key: 'Path_Style', option: 'pathStyle', value: '1' },
    // a literal '+' stays a '+': passwords and tokens are not form-encoded text
    { key: 'region', option: 'region', value: 'a+b+c' },
  ]);
});

test('unknown, repeated, credentials and bad escapes are the caller\'s error', () => {
  for (const bad of ['y://b', 'x://u:p@b', 'x://b?nope=1', 'x://b?region=a&REGION=b', 'x://b/%zz', 'x://b?region=%E0%A4%A']) {
    assert.throws(() => parseBackendUrl(bad, rules), UrlProblem, bad);
  }
});

test('any text either parses or throws the caller\'s error', () => {
  fc.assert(
    fc.property(fc.string(), (tail) => {
      try {
        parseBackendUrl(`x://${tail}`, rules);
      } catch (err) {
        assert.ok(err instanceof UrlProblem);
      }
    }),
  );
});
