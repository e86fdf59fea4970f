import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProgress, ProgressText } from './progress.js';

describe('progress text', () => {
  test('formats like git progress.c', () => {
    assert.equal(formatProgress('Counting objects', 3, 16), 'Counting objects:  18% (3/16)');
    assert.equal(formatProgress('Counting objects', 16, 16), 'Counting objects: 100% (16/16)');
    assert.equal(formatProgress('Enumerating objects', 42, undefined), 'Enumerating objects: 42');
  });

  test('updates end in CR, a finished phase in ", done." and LF; a new phase ends the old one', () => {
    const out: string[] = [];
    const p = new ProgressText((t) => out.push(t));
    p.fn('Enumerating objects', 5, undefined);
    p.fn('Enumerating objects', 5, undefined);
    p.fn('Enumerating objects', 9, undefined);
    p.fn('Resolving deltas', 1, 2);
    p.fn('Resolving deltas', 2, 2);
    p.fn('Empty', 0, 0);
    p.line('Total 9');
    p.finish();
    assert.deepEqual(out, [
      'Enumerating objects: 5\r',
      'Enumerating objects: 9\r',
      'Enumerating objects: 9, done.\n',
      'Resolving deltas:  50% (1/2)\r',
      'Resolving deltas: 100% (2/2), done.\n',
      'Total 9\n',
    ]);
  });
});
