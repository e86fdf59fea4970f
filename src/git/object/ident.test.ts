import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIdent, parseIdent } from './ident.js';

describe('parseIdent', () => {
  test('splits a well-formed ident', () => {
    assert.deepEqual(parseIdent('A U Thor <author@example.com> 1112911993 -0700'), {
      name: 'A U Thor',
      email: 'author@example.com',
      timestamp: 1112911993,
      tz: '-0700',
    });
  });

  test('is lenient about missing dates, extra spaces and broken emails', () => {
    assert.deepEqual(parseIdent('Name <e@x>'), { name: 'Name', email: 'e@x', timestamp: 0, tz: '+0000' });
    assert.deepEqual(parseIdent('  Name   <e@x>   42   +0100'), { name: 'Name', email: 'e@x', timestamp: 42, tz: '+0100' });
    assert.deepEqual(parseIdent('<e@x> 5 +0000'), { name: '', email: 'e@x', timestamp: 5, tz: '+0000' });
    // An extra '>' in the email: the date still comes after the last '>'.
    assert.deepEqual(parseIdent('N <a>b> 7 -0130'), { name: 'N', email: 'a', timestamp: 7, tz: '-0130' });
    assert.deepEqual(parseIdent('N <e> garbage'), { name: 'N', email: 'e', timestamp: 0, tz: '+0000' });
    assert.equal(parseIdent('N <e> 99999999999999999999999 +0000')?.timestamp, 0);
  });

  test('returns undefined without an email', () => {
    assert.equal(parseIdent('no email here 123 +0000'), undefined);
    assert.equal(parseIdent('N <unterminated 1 +0000'), undefined);
  });

  test('formatIdent and parseIdent round trip', () => {
    const name = fc.string({ unit: 'grapheme' }).filter((s) => !/[<>\n]/.test(s)).map((s) => s.trim());
    const email = fc.string({ unit: 'grapheme' }).filter((s) => !/[>\n]/.test(s));
    const tz = fc.tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 9999 })).map(([s, n]) => s + String(n).padStart(4, '0'));
    fc.assert(
      fc.property(fc.record({ name, email, timestamp: fc.integer({ min: 0, max: 2 ** 40 }), tz }), (i) => {
        assert.deepEqual(parseIdent(formatIdent(i)), { ...i });
      }),
    );
  });
});
