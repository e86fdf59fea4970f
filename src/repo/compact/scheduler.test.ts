import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PackRecord } from '../../meta/meta-store.js';
import { CompactionScheduler } from './scheduler.js';

function packs(...counts: number[]): PackRecord[] {
  return counts.map((objects, i) => ({ name: `pack-${String(i).padStart(40, '0')}`, size: 100, objects, createdMs: 0, source: 'receive' }));
}

/** A run that waits until released, counting starts. */
function gate(): { run: () => Promise<void>; release: () => void; starts: () => number } {
  let n = 0;
  let release: () => void = () => undefined;
  let p = new Promise<void>((r) => (release = r));
  return {
    run: async () => {
      n++;
      await p;
      p = Promise.resolve();
    },
    release: () => release(),
    starts: () => n,
  };
}

describe('CompactionScheduler', () => {
  test('starts nothing when the packs are fine', async () => {
    const s = new CompactionScheduler();
    let ran = 0;
    assert.equal(s.maybeCompact('r', packs(1000, 100, 10, 1), async () => void ran++), false);
    assert.equal(s.maybeCompact('r', packs(5, 5), async () => void ran++), false); // under minPacks
    await s.idle();
    assert.equal(ran, 0);
  });

  test('one run per repository at a time; a push during a run queues exactly one more', async () => {
    const s = new CompactionScheduler();
    const g = gate();
    const many = packs(3, 3, 3, 3, 3);
    assert.equal(s.maybeCompact('r', many, g.run), true);
    assert.equal(s.isRunning('r'), true);
    assert.equal(s.maybeCompact('r', many, g.run), true);
    assert.equal(s.maybeCompact('r', many, g.run), true);
    await new Promise((r) => setImmediate(r));
    assert.equal(g.starts(), 1);
    g.release();
    await s.idle();
    assert.equal(g.starts(), 2);
    assert.equal(s.isRunning('r'), false);
  });

  test('repositories run independently; failures go to onError and do not stick', async () => {
    const errors: string[] = [];
    const s = new CompactionScheduler({ onError: (key) => errors.push(key) });
    const many = packs(3, 3, 3, 3);
    let b = 0;
    s.maybeCompact('a', many, async () => {
      throw new Error('boom');
    });
    s.maybeCompact('b', many, async () => void b++);
    await s.idle();
    assert.deepEqual(errors, ['a']);
    assert.equal(b, 1);
    let a = 0;
    assert.equal(s.maybeCompact('a', many, async () => void a++), true);
    await s.close();
    assert.equal(a, 1);
    assert.equal(s.maybeCompact('a', many, async () => void a++), false);
  });

  test('later runs once after the delay, a newer call replaces the older, close drops timers', async () => {
    const s = new CompactionScheduler();
    const ran: string[] = [];
    s.later('r', 30, async () => void ran.push('first'));
    s.later('r', 20, async () => void ran.push('second'));
    await new Promise((r) => setTimeout(r, 80));
    await s.idle();
    assert.deepEqual(ran, ['second']);
    s.later('r', 10, async () => void ran.push('third'));
    await s.close();
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual(ran, ['second']);
  });
});
