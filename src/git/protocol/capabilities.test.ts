import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  capabilityValue,
  formatCapabilityList,
  hasCapability,
  parseCapabilityList,
  sanitizeAgent,
} from './capabilities.js';
import { capabilityArb, onlyStowageErrors } from './arbitraries.test-util.js';

describe('capability lists', () => {
  test('parses names and values as git sends them', () => {
    const caps = parseCapabilityList('multi_ack thin-pack side-band-64k symref=HEAD:refs/heads/main agent=git/2.39.2 ');
    assert.deepEqual(caps, [
      { name: 'multi_ack' },
      { name: 'thin-pack' },
      { name: 'side-band-64k' },
      { name: 'symref', value: 'HEAD:refs/heads/main' },
      { name: 'agent', value: 'git/2.39.2' },
    ]);
    assert.equal(hasCapability(caps, 'thin-pack'), true);
    assert.equal(hasCapability(caps, 'ofs-delta'), false);
    assert.equal(capabilityValue(caps, 'symref'), 'HEAD:refs/heads/main');
    assert.equal(capabilityValue(caps, 'multi_ack'), undefined);
  });

  test('refuses malformed words', () => {
    assert.throws(() => parseCapabilityList('Upper'), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseCapabilityList('a=\x01'), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseCapabilityList('=x'), { code: 'PROTO_BAD_REQUEST' });
    assert.throws(() => parseCapabilityList(Array.from({ length: 300 }, () => 'a').join(' ')), { code: 'PROTO_BAD_REQUEST' });
  });

  test('round trip: parse(format(caps)) = caps', () => {
    fc.assert(
      fc.property(fc.array(capabilityArb, { maxLength: 30 }), (caps) => {
        assert.deepEqual(parseCapabilityList(formatCapabilityList(caps)), caps);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  test('random text throws only StowageErrors', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => onlyStowageErrors(() => parseCapabilityList(s))),
      { seed: 43, numRuns: 500 },
    );
  });

  test('sanitizes agent strings like git', () => {
    assert.equal(sanitizeAgent('stowage/0.1 beta\n'), 'stowage/0.1.beta.');
    assert.equal(sanitizeAgent(''), 'unknown');
  });
});
