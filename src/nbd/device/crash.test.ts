import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FsStore } from '../../storage/fs/fs-store.js';
import { REGION } from './crash-writer.test-util.js';
import { StoreDeviceProvider } from './store-provider.js';
import { createVolume } from './volume-layout.js';

test('kill -9 after some FLUSHes: every flushed write reads back from a new provider', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-nbd-crash-'));
  try {
    const store = new FsStore({ root: dir });
    await createVolume(store, 'vol', { size: 64 * REGION, blockSize: 64 * 1024 });
    const child = spawn(process.execPath, [fileURLToPath(new URL('./crash-writer.test-util.js', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const flushed = new Map<number, string>();
    const exited = new Promise((r) => child.once('exit', r));
    for await (const line of createInterface({ input: child.stdout })) {
      const m = /^flushed (\d+) ([0-9a-f]{64})$/.exec(line);
      if (m !== null) flushed.set(Number(m[1]), m[2] as string);
      if (flushed.size === 6) {
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    assert.equal(flushed.size, 6);
    // The dead writer's lease is still live: read-only access works without waiting.
    const h = await new StoreDeviceProvider({ store, cacheMb: 8, nodeId: 'checker' }).open('vol', { readOnly: true });
    assert.ok(h);
    for (const [k, digest] of flushed) {
      const got: string = createHash('sha256').update(await h.device.read(k * REGION, REGION)).digest('hex');
      assert.equal(got, digest, `region ${k} was flushed but reads back different`);
    }
    await h.release();
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
