import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProgress } from './progress.js';

test('plain progress lines when the output is not a terminal', () => {
  const lines: string[] = [];
  const p = createProgress({ write: (s: string) => lines.push(s) });
  p.onProgress('Counting objects', 0, 3);
  p.onProgress('Counting objects', 1, 3);
  p.onProgress('Counting objects', 2, 3);
  p.onProgress('Counting objects', 3, 3);
  p.onProgress('Writing refs', 5, undefined);
  p.onProgress('Writing refs', 6, undefined);
  p.finish();
  // The first update of a phase, its completion, and the last state of an open-ended phase.
  assert.deepEqual(lines, ['Counting objects: 0/3\n', 'Counting objects: 3/3\n', 'Writing refs: 5\n', 'Writing refs: 6\n']);
});

test('a bar on a terminal', () => {
  const out: string[] = [];
  const stream = { isTTY: true, columns: 80, write: (s: string) => out.push(s), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream };
  const p = createProgress(stream);
  p.onProgress('Importing', 1, 4);
  p.onProgress('Importing', 4, 4);
  p.finish();
  assert.ok(out.join('').includes('Importing'), out.join(''));
});
