import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lazyList } from './lazy-list.js';

describe('lazyList', () => {
  test('reads by index, iteration and array methods give the computed values, each computed once', () => {
    const calls: number[] = [];
    const list = lazyList(5, (i) => {
      calls.push(i);
      return `v${i}`;
    });
    assert.equal(list.length, 5);
    assert.equal(calls.length, 0);
    assert.equal(list[3], 'v3');
    assert.equal(list[3], 'v3');
    assert.deepEqual(calls, [3]);
    assert.equal(list[5], undefined);
    assert.deepEqual([...list], ['v0', 'v1', 'v2', 'v3', 'v4']);
    assert.deepEqual([...new Set(list)], ['v0', 'v1', 'v2', 'v3', 'v4']);
    assert.ok(list.every((v, i) => v === `v${i}`));
    assert.deepEqual(list.slice(1, 3), ['v1', 'v2']);
    assert.equal(list.includes('v4'), true);
    assert.equal(Array.isArray(list), true);
    assert.deepEqual(Object.keys(list), ['0', '1', '2', '3', '4']);
    assert.deepEqual(JSON.parse(JSON.stringify(list)), ['v0', 'v1', 'v2', 'v3', 'v4']);
    assert.deepEqual(calls.sort(), [0, 1, 2, 3, 4]);
    assert.equal(2 in list, true);
    assert.equal(7 in list, false);
  });

  test('it cannot be modified', () => {
    const list = lazyList(2, (i) => i);
    assert.throws(() => {
      'use strict';
      (list as number[])[0] = 9;
    }, TypeError);
    assert.throws(() => (list as number[]).push(1), TypeError);
    assert.equal(list[0], 0);
  });
});
