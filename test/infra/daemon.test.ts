/** Process-group daemons, free ports and waiting with a deadline. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findCommand, freePorts, logTail, spawnDaemon, waitUntil } from './daemon.js';

describe('daemon helpers', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-daemon-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('freePorts gives distinct bindable ports', async () => {
    const ports = await freePorts(6);
    assert.equal(new Set(ports).size, 6);
    for (const p of ports) assert.ok(p > 0 && p < 65536);
  });

  test('findCommand finds sh and not a made-up name', () => {
    assert.ok(findCommand('sh')?.endsWith('/sh'));
    assert.equal(findCommand('stowage-no-such-command-xyz'), undefined);
  });

  test('a daemon that dies fails the wait at once, quoting its output', async () => {
    const daemon = await spawnDaemon({
      name: 'dier', command: 'sh', args: ['-c', 'echo "config is broken: line 7" >&2; exit 3'], logFile: join(dir, 'dier.log'),
    });
    await daemon.exited;
    const t0 = Date.now();
    await assert.rejects(
      waitUntil(async () => 'never ready', { what: 'the dier', timeoutMs: 30_000, daemons: [daemon] }),
      /while waiting for the dier: dier \(pid \d+\) exited with code 3; last lines of .*dier\.log:\nconfig is broken: line 7/,
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  test('a wait past its deadline names what it waited for and the last reason', async () => {
    await assert.rejects(
      waitUntil(async () => 'port closed', { what: 'nothing', timeoutMs: 50, intervalMs: 10 }),
      /timed out after 50 ms waiting for nothing \(last: port closed\)/,
    );
    let calls = 0;
    await waitUntil(async () => (++calls >= 3 ? true : 'not yet'), { what: 'three calls', timeoutMs: 5000, intervalMs: 1 });
    assert.equal(calls, 3);
  });

  test('kill() takes the whole process group down', async () => {
    const daemon = await spawnDaemon({
      name: 'parent', command: 'sh', args: ['-c', 'sleep 30 & echo child $!; wait'], logFile: join(dir, 'group.log'),
    });
    let childPid = 0;
    await waitUntil(async () => {
      const m = /child (\d+)/.exec(await logTail(daemon.logFile));
      if (m === null) return 'no child yet';
      childPid = Number(m[1]);
      return true;
    }, { what: 'the child pid', timeoutMs: 5000, intervalMs: 20 });
    const ended = await daemon.kill();
    assert.equal(ended.signal, 'SIGKILL');
    await waitUntil(async () => {
      // gone, or a zombie waiting for an init that may not reap
      const stat = await readFile(`/proc/${childPid}/stat`, 'utf8').catch(() => '');
      return stat === '' || /^\d+ \(.*\) Z/.test(stat) ? true : `child ${childPid} still alive`;
    }, { what: 'the grandchild to die', timeoutMs: 5000, intervalMs: 20 });
  });

  test('a command that does not exist is a clear error', async () => {
    await assert.rejects(
      spawnDaemon({ name: 'ghost', command: join(dir, 'no-such-binary'), args: [], logFile: join(dir, 'ghost.log') }),
      /cannot start ghost: \S+no-such-binary not found/,
    );
  });
});
