import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DeferredSyncs } from './fs-sync.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A recorder: when each path's fsync started (a logical clock), with a random delay. */
function recorder(delays: readonly number[]): { syncPath: (p: string) => Promise<void>; starts: Map<string, number[]>; now: () => number } {
  let clock = 0;
  let k = 0;
  const starts = new Map<string, number[]>();
  return {
    starts,
    now: () => ++clock,
    syncPath: async (p: string) => {
      const at = ++clock;
      const list = starts.get(p) ?? [];
      list.push(at);
      starts.set(p, list);
      for (let i = delays[k++ % delays.length] ?? 0; i > 0; i--) await tick();
    },
  };
}

describe('DeferredSyncs', () => {
  test('a sync covers every path recorded before it, including puts made during a running round', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.record({ op: fc.constant('put' as const), n: fc.nat(5) }), fc.record({ op: fc.constant('sync' as const), n: fc.nat(3) })), { maxLength: 40 }),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 8 }),
        async (ops, delays) => {
          const r = recorder(delays);
          const syncs = new DeferredSyncs(r.syncPath);
          const recordedAt = new Map<string, number>();
          const checks: Promise<void>[] = [];
          let seq = 0;
          for (const o of ops) {
            if (o.op === 'put') {
              const file = `d${o.n}/f${seq++}`;
              syncs.record(file, `d${o.n}`);
              const at = r.now();
              recordedAt.set(file, at);
              recordedAt.set(`d${o.n}`, at);
            } else {
              // Snapshot what must be covered when this sync resolves.
              const due = new Map(recordedAt);
              checks.push(
                syncs.sync().then(() => {
                  for (const [p, at] of due) {
                    const started = r.starts.get(p) ?? [];
                    assert.ok(started.some((s) => s > at), `${p} recorded at ${at} but synced at [${started.join(',')}]`);
                  }
                }),
              );
            }
            for (let i = o.n; i > 0; i--) await tick();
          }
          await Promise.all(checks);
          await syncs.sync();
          assert.equal(syncs.pending, 0);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('a failed round keeps its paths for the next sync; ENOENT (deleted since) is not an error', async () => {
    let fail = true;
    const synced: string[] = [];
    const syncs = new DeferredSyncs(async (p) => {
      if (p === 'gone') throw Object.assign(new Error('gone'), { code: 'ENOENT' });
      if (fail && p === 'a') throw Object.assign(new Error('io'), { code: 'EMFILE' });
      synced.push(p);
    });
    syncs.record('a', 'dir');
    syncs.record('gone', 'dir');
    await assert.rejects(syncs.sync(), /io/);
    assert.equal(syncs.pending, 2); // 'a' and its folder; 'gone' needs nothing

    fail = false;
    await syncs.sync();
    assert.equal(syncs.pending, 0);
    assert.ok(synced.includes('a') && synced.includes('dir'));
    // Files before folders.
    assert.ok(synced.lastIndexOf('a') < synced.lastIndexOf('dir'));
  });

  test('held descriptors: fsynced and closed by the round, closed unsynced when superseded, retried by path after a failure', async () => {
    const log: string[] = [];
    let failFd = -1;
    const syncs = new DeferredSyncs(
      async (p) => {
        log.push(`path ${p}`);
      },
      {
        sync: async (d) => {
          if (d === failFd) throw Object.assign(new Error('io'), { code: 'EMFILE' });
          log.push(`fsync ${d}`);
        },
        close: async (d) => {
          log.push(`close ${d}`);
        },
      },
    );
    assert.ok(syncs.canHold());
    syncs.record('a', 'dir', 3);
    syncs.record('a', 'dir', 4); // a newer version of 'a': fd 3 is closed unsynced
    syncs.record('b', 'dir');
    assert.equal(syncs.heldFds, 1);
    assert.deepEqual(log, ['close 3']);
    await syncs.sync();
    assert.deepEqual(log.slice(1).sort(), ['close 4', 'fsync 4', 'path b', 'path dir']);
    assert.ok(log.indexOf('fsync 4') < log.indexOf('close 4') && log.indexOf('close 4') < log.indexOf('path dir'));
    assert.equal(syncs.heldFds, 0);

    log.length = 0;
    failFd = 5;
    syncs.record('c', 'dir', 5);
    await assert.rejects(syncs.sync(), /io/);
    assert.deepEqual(log, ['close 5']);
    assert.equal(syncs.heldFds, 0);
    assert.equal(syncs.pending, 2);
    await syncs.sync();
    assert.deepEqual(log, ['close 5', 'path c', 'path dir']);
  });

  test('after a write-back error (EIO) every later sync fails: the data may be gone', async () => {
    let fail = true;
    const syncs = new DeferredSyncs(async (p) => {
      if (fail && p === 'a') throw Object.assign(new Error('write-back failed'), { code: 'EIO' });
    });
    syncs.record('a', 'dir');
    await assert.rejects(syncs.sync(), /write-back failed/);
    fail = false;
    syncs.record('b', 'dir');
    await assert.rejects(syncs.sync(), /write-back failed/);
    await assert.rejects(syncs.sync(), /write-back failed/);
  });

  test('nothing recorded: sync resolves at once and fsyncs nothing', async () => {
    let calls = 0;
    const syncs = new DeferredSyncs(async () => {
      calls++;
    });
    await syncs.sync();
    assert.equal(calls, 0);
  });
});
