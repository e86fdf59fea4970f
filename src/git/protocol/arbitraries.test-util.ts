/** Test support (not a test): fast-check arbitraries for protocol messages and an error check. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import type { Capability } from './capabilities.js';

/** A lowercase 40-hex object id. */
export const oidArb: fc.Arbitrary<ObjectId> = fc
  .uint8Array({ minLength: 20, maxLength: 20 })
  .map((b) => Buffer.from(b).toString('hex') as ObjectId);

const segment = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,11}$/);

/** A valid full ref name under refs/. */
export const refNameArb: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('refs/heads/', 'refs/tags/', 'refs/notes/'), fc.array(segment, { minLength: 1, maxLength: 3 }))
  .map(([p, parts]) => p + parts.join('/'));

/** A v0/v1 capability word. */
export const capabilityArb: fc.Arbitrary<Capability> = fc
  .tuple(fc.stringMatching(/^[a-z0-9_-]{1,20}$/), fc.option(fc.stringMatching(/^[\x21-\x7e]{0,30}$/), { nil: undefined }))
  .map(([name, value]) => (value === undefined ? { name } : { name, value }));

/** Random bytes, usually short, to throw at parsers. */
export const bytesArb: fc.Arbitrary<Uint8Array> = fc.uint8Array({ maxLength: 300 });

/** Random data lines: sometimes protocol-like text, sometimes noise. */
export const linesArb: fc.Arbitrary<Uint8Array[]> = fc.array(
  fc.oneof(
    bytesArb,
    fc
      .tuple(
        fc.constantFrom('want ', 'have ', 'shallow ', 'deepen ', 'deepen-since ', 'deepen-not ', 'filter ', 'done', 'ok ', 'ng ', 'unpack ', 'option ', 'ref-prefix ', 'symrefs', 'peel', 'command=', 'ACK ', 'NAK', ''),
        fc.string({ maxLength: 90 }),
      )
      .map(([a, b]) => Buffer.from(a + b, 'utf8')),
    oidArb.map((o) => Buffer.from(`${o} ${o} refs/heads/x`, 'utf8')),
  ),
  { maxLength: 8 },
);

/** Runs `fn` and fails the test if it throws anything but a StowageError. */
export function onlyStowageErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof StowageError, `expected a StowageError, got ${String(err)}`);
  }
}

/** Lines as pkt payloads with a trailing LF, the way git sends them. */
export function textLines(...lines: string[]): Uint8Array[] {
  return lines.map((l) => Buffer.from(`${l}\n`, 'utf8'));
}
