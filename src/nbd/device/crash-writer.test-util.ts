/**
 * Test helper run as a child process by crash.test.ts: writes random data into region k of a
 * volume (one region per round), flushes, prints `flushed <k> <sha256 of the region>`, forever,
 * until it is killed.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { FsStore } from '../../storage/fs/fs-store.js';
import { StoreDeviceProvider } from './store-provider.js';

/** Bytes per round's region. */
export const REGION = 1024 * 1024;

async function run(dir: string): Promise<void> {
  const store = new FsStore({ root: dir });
  const provider = new StoreDeviceProvider({ store, cacheMb: 8, nodeId: `crash-${process.pid}`, writeBackDelayMs: 20 });
  const h = await provider.open('vol', { readOnly: false });
  if (h === undefined) throw new Error('no volume');
  const d = h.device;
  for (let k = 0; (k + 1) * REGION <= d.size; k++) {
    const model = Buffer.alloc(REGION);
    const writes: Promise<void>[] = [];
    for (let j = 0; j < 24; j++) {
      const len = randomInt(1, 200 * 1024);
      const off = randomInt(0, REGION - len);
      const data = randomBytes(len);
      data.copy(model, off);
      // Sequential per round so the model matches; concurrency comes from the uploader.
      writes.push(d.write(k * REGION + off, data));
      await writes[writes.length - 1];
    }
    await d.flush();
    process.stdout.write(`flushed ${k} ${createHash('sha256').update(model).digest('hex')}\n`);
  }
  process.stdout.write('done\n');
  await new Promise(() => undefined);
}

if (process.argv[2] !== undefined && process.argv[1]?.endsWith('crash-writer.test-util.js')) {
  await run(process.argv[2]);
}
