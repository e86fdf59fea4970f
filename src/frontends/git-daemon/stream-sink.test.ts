import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { StowageError } from '../../core/errors.js';
import { StreamSink } from './stream-sink.js';

/** A Writable that holds every write until `flush()` is called. */
function slowWritable(): { stream: Writable; flush: () => void; received: Buffer[] } {
  const pending: Array<() => void> = [];
  const received: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 8,
    write(chunk: Buffer, _enc, cb) {
      received.push(chunk);
      pending.push(cb);
    },
  });
  return { stream, received, flush: () => pending.splice(0).forEach((cb) => cb()) };
}

test('write waits for drain when the stream is full', async () => {
  const w = slowWritable();
  let first = false;
  const sink = new StreamSink(w.stream, () => (first = true));
  assert.equal(sink.started, false);
  let resolved = false;
  const p = sink.write(Buffer.alloc(64)).then(() => (resolved = true));
  assert.equal(first, true);
  assert.equal(sink.started, true);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(resolved, false, 'must not resolve while the stream is over its high-water mark');
  w.flush();
  await p;
  assert.equal(resolved, true);
});

test('settled resolves only once the stream has written every chunk', async () => {
  const w = slowWritable();
  const sink = new StreamSink(w.stream);
  await sink.settled();
  // Below the high-water mark: write resolves at once, but the stream still holds the chunk.
  await sink.write(Buffer.alloc(4, 1));
  let settled = false;
  const p = sink.settled().then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false, 'must not resolve while the stream holds a chunk');
  w.flush();
  await p;
  assert.equal(settled, true);
  assert.deepEqual(w.received, [Buffer.alloc(4, 1)]);
});

test('empty writes do not start the response', async () => {
  const w = slowWritable();
  const sink = new StreamSink(w.stream);
  await sink.write(new Uint8Array(0));
  assert.equal(sink.started, false);
  assert.equal(w.received.length, 0);
});

test('a write waiting for drain fails when the stream closes; later writes fail at once', async () => {
  const w = slowWritable();
  const sink = new StreamSink(w.stream);
  const p = sink.write(Buffer.alloc(64));
  w.stream.destroy();
  await assert.rejects(p, (e: unknown) => e instanceof StowageError && e.code === 'ABORTED');
  await assert.rejects(sink.write(Buffer.alloc(1)), (e: unknown) => e instanceof StowageError && e.code === 'ABORTED');
});
