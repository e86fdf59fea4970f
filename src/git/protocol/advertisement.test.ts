import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ZERO_OID, type ObjectId } from '../hash/object-id.js';
import { decodeRefAdvertisement, encodeRefAdvertisement, type AdvertisedRef } from './advertisement.js';
import { bytesArb, capabilityArb, oidArb, onlyStowageErrors, refNameArb } from './arbitraries.test-util.js';

const A = 'a'.repeat(40) as ObjectId;
const B = 'b'.repeat(40) as ObjectId;

/** A pkt-line of ASCII text, written out by hand. */
function pkt(s: string): string {
  return (s.length + 4).toString(16).padStart(4, '0') + s;
}

describe('ref advertisement', () => {
  test('encodes the empty repository as capabilities^{}', () => {
    const bytes = encodeRefAdvertisement({ version: 0, refs: [], capabilities: [{ name: 'ofs-delta' }], shallows: [] });
    assert.equal(Buffer.from(bytes).toString('latin1'), `${pkt(`${ZERO_OID} capabilities^{}\0ofs-delta\n`)}0000`);
  });

  test('puts capabilities on the first ref, peeled lines after their ref, version 1 first', () => {
    const bytes = encodeRefAdvertisement({
      version: 1,
      refs: [
        { name: 'HEAD', oid: A },
        { name: 'refs/tags/v1', oid: B, peeled: A },
      ],
      capabilities: [{ name: 'agent', value: 'x/1' }],
      shallows: [],
    });
    const text = Buffer.from(bytes).toString('latin1');
    assert.equal(text, pkt('version 1\n') + pkt(`${A} HEAD\0agent=x/1\n`) + pkt(`${B} refs/tags/v1\n`) + pkt(`${A} refs/tags/v1^{}\n`) + '0000');
  });

  test('round trip', () => {
    const refsArb = fc.uniqueArray(
      fc.record({ name: refNameArb, oid: oidArb, peeled: fc.option(oidArb, { nil: undefined }) }),
      { selector: (r) => r.name, maxLength: 10 },
    );
    fc.assert(
      fc.property(refsArb, fc.array(capabilityArb, { maxLength: 8 }), fc.array(oidArb, { maxLength: 3 }), fc.constantFrom(0 as const, 1 as const), (refs, caps, shallows, version) => {
        const clean: AdvertisedRef[] = refs.map((r) => (r.peeled === undefined ? { name: r.name, oid: r.oid } : { name: r.name, oid: r.oid, peeled: r.peeled }));
        const adv = { version, refs: clean, capabilities: caps, shallows };
        assert.deepEqual(decodeRefAdvertisement(encodeRefAdvertisement(adv)), adv);
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  test('random bytes throw only StowageErrors', () => {
    fc.assert(fc.property(bytesArb, (b) => onlyStowageErrors(() => decodeRefAdvertisement(b))), { seed: 8, numRuns: 500 });
  });

  test('decodes what git upload-pack advertises', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stowage-adv-'));
    try {
      const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
      const git = (...args: string[]): Buffer => execFileSync('git', args, { cwd: dir, env });
      git('init', '-q', '-b', 'main');
      git('commit', '-q', '--allow-empty', '-m', 'one');
      git('tag', '-a', '-m', 'v1', 'v1');
      const raw = execFileSync('git', ['upload-pack', '--advertise-refs', '.'], { cwd: dir, env: { ...env, GIT_PROTOCOL: 'version=1' } });
      const adv = decodeRefAdvertisement(raw);
      const head = git('rev-parse', 'HEAD').toString().trim();
      const tag = git('rev-parse', 'v1').toString().trim();
      assert.equal(adv.version, 1);
      assert.deepEqual(adv.refs, [
        { name: 'HEAD', oid: head },
        { name: 'refs/heads/main', oid: head },
        { name: 'refs/tags/v1', oid: tag, peeled: head },
      ]);
      assert.ok(adv.capabilities.some((c) => c.name === 'symref' && c.value === 'HEAD:refs/heads/main'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
