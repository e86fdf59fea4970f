import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { settlesWithin } from './settle.js';

test('settlesWithin tells whether work finished before the deadline', async () => {
  assert.equal(await settlesWithin(sleep(5), 1000), true);
  assert.equal(await settlesWithin(sleep(1000), 20), false);
  assert.equal(await settlesWithin(Promise.reject(new Error('x')), 1000), true);
});
