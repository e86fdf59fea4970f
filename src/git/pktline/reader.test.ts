import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LimitError, ProtocolError } from '../../core/errors.js';
import type { PktLine } from './decode.js';
import { encodePkt, encodePktLine, FLUSH_PKT } from './encode.js';
import { PktLineReader } from './reader.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

const lineArb: fc.Arbitrary<PktLine> = fc.oneof(
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 200 }).map((payload): PktLine => ({ kind: 'data', payload })) },
  { weight: 1, arbitrary: fc.constantFrom<PktLine>({ kind: 'flush' }, { kind: 'delim' }, { kind: 'response-end' }) },
);

function plain(line: PktLine | undefined): unknown {
  if (line === undefined) return undefined;
  return line.kind === 'data' ? { kind: 'data', payload: Buffer.from(line.payload) } : { kind: line.kind };
}

/** Splits `bytes` at the given cut points (sorted, deduplicated). */
function chunk(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

async function* source(chunks: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const c of chunks) yield c;
}

async function readAll(r: PktLineReader): Promise<unknown[]> {
  const out: unknown[] = [];
  for (;;) {
    const line = await r.read();
    if (line === undefined) return out;
    out.push(plain(line));
  }
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe('PktLineReader', () => {
  test('any chunking of a stream gives the same lines', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(lineArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), async (lines, cuts) => {
        const bytes = Buffer.concat(lines.map(encodePkt));
        const r = new PktLineReader(source(chunk(bytes, cuts)));
        assert.deepEqual(await readAll(r), lines.map(plain));
      }),
    );
  });

  test('rest() yields the bytes after the last line, buffered ones included, for any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(lineArb, { maxLength: 6 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        async (lines, tail, cuts) => {
          const head = Buffer.concat([...lines.map(encodePkt), FLUSH_PKT]);
          const r = new PktLineReader(source(chunk(Buffer.concat([head, tail]), cuts)));
          for (const line of lines) assert.deepEqual(plain(await r.read()), plain(line));
          await r.expectFlush();
          assert.deepEqual(await collect(r.rest()), Buffer.from(tail));
        },
      ),
    );
  });

  test('EOF mid-line throws PKT_TRUNCATED; EOF between lines is undefined', async () => {
    for (const s of ['00', '0009hel', '0009hello00']) {
      const r = new PktLineReader(source([b(s)]));
      await assert.rejects(readAll(r), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_TRUNCATED', s);
    }
    const r = new PktLineReader(source([b('0000')]));
    assert.deepEqual(plain(await r.read()), { kind: 'flush' });
    assert.equal(await r.read(), undefined);
    assert.equal(await r.read(), undefined);
  });

  test('expect helpers and readSection', async () => {
    const bytes = Buffer.concat([encodePktLine('command=ls-refs\n'), b('0001'), encodePktLine('peel\n'), encodePktLine('symrefs'), b('0000')]);
    const r = new PktLineReader(source([bytes]));
    assert.equal(await r.expectText(), 'command=ls-refs');
    await assert.rejects(r.expectData(), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_UNEXPECTED');
    const section = await r.readSection();
    assert.equal(section.end, 'flush');
    assert.deepEqual(section.lines.map((l) => Buffer.from(l).toString()), ['peel\n', 'symrefs']);
    await assert.rejects(r.expectFlush(), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_UNEXPECTED');

    const many = Buffer.concat([encodePktLine('a'), encodePktLine('b'), encodePktLine('c'), b('0000')]);
    await assert.rejects(new PktLineReader(source([many])).readSection(2), (e: unknown) => e instanceof LimitError);
  });

  test('bad lengths from the peer throw typed errors', async () => {
    await assert.rejects(readAll(new PktLineReader(source([b('zzzz')]))), (e: unknown) => e instanceof ProtocolError && e.code === 'PKT_BAD_LENGTH');
    await assert.rejects(readAll(new PktLineReader(source([b('ffff')]))), (e: unknown) => e instanceof LimitError && e.code === 'PKT_TOO_LONG');
  });

  test('large input in tiny chunks stays linear', async () => {
    const payload = Buffer.alloc(60000, 0x61);
    const count = 40;
    const bytes = Buffer.concat(Array.from({ length: count }, () => encodePktLine(payload)));
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += 1000) chunks.push(bytes.subarray(i, i + 1000));
    const r = new PktLineReader(source(chunks));
    let n = 0;
    for (let line = await r.read(); line !== undefined; line = await r.read()) {
      assert.equal(line.kind === 'data' && line.payload.length, payload.length);
      n++;
    }
    assert.equal(n, count);
  });
});
