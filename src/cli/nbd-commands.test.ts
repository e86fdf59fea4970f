import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { StoreDeviceProvider } from '../nbd/device/store-provider.js';
import { FsStore } from '../storage/fs/fs-store.js';
import type { CliIo } from './io.js';
import { main } from './main.js';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, stdin: new PassThrough(), env: {} };
  const code = await main(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

test('stowage nbd: create, list, info, upload, download, resize, unlock, delete, import-secrets', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-nbd-cli-'));
  const data = join(dir, 'data');
  const nbd = (...args: string[]) => run(['nbd', ...args, '--data', data]);
  try {
    let r = await nbd('create', 'disk0', '--size', '4M', '--block-size', '64K', '--description', 'test disk');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /created volume disk0: 4194304 bytes, block size 65536/);
    assert.equal((await nbd('create', 'disk0', '--size', '4M')).code, 1, 'exists');
    assert.equal((await nbd('create', '-bad', '--size', '4M')).code, 2);
    assert.equal((await nbd('create', 'odd', '--size', '1000')).code, 2, 'not a multiple of 512');

    // upload an image with holes; it round-trips through download byte for byte
    const image = Buffer.alloc(3 * 1024 * 1024);
    randomBytes(100_000).copy(image, 70_000);
    randomBytes(5000).copy(image, 2 * 1024 * 1024 + 17);
    await writeFile(join(dir, 'in.img'), image);
    r = await nbd('upload', join(dir, 'in.img'), 'disk0');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /uploaded .* to volume disk0: 4194304 bytes, 3 blocks stored/);
    r = await nbd('download', 'disk0', join(dir, 'out.img'));
    assert.equal(r.code, 0, r.stderr);
    const back = await readFile(join(dir, 'out.img'));
    assert.equal(back.length, 4 * 1024 * 1024);
    assert.deepEqual(back.subarray(0, image.length), image);
    assert.deepEqual(back.subarray(image.length), Buffer.alloc(back.length - image.length));
    const st = await stat(join(dir, 'out.img'));
    assert.ok(st.blocks * 512 < 1024 * 1024, `download is sparse (${st.blocks} sectors allocated)`);

    // upload creates a missing volume sized to the file
    r = await nbd('upload', join(dir, 'in.img'), 'fresh', '--block-size', '1M');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /new volume fresh: 3145728 bytes/);

    r = await nbd('info', 'disk0', '--json');
    const info = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(info['size'], 4194304);
    assert.equal(info['blocksStored'], 3);
    assert.equal(info['description'], 'test disk');
    assert.equal(info['leaseHolder'], null);

    // a server holds the volume: list shows the holder, resize and delete are refused, unlock frees it
    const store = new FsStore({ root: data });
    const h = await new StoreDeviceProvider({ store, cacheMb: 4, nodeId: 'server-1' }).open('disk0', { readOnly: false });
    assert.ok(h);
    r = await nbd('list', '--json');
    const list = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.deepEqual(list.map((v) => [v['name'], v['leaseHolder']]), [['disk0', 'server-1'], ['fresh', null]]);
    assert.match((await nbd('list')).stdout, /disk0\t4194304\t3 blocks\theld by server-1/);
    assert.equal((await nbd('resize', 'disk0', '--size', '8M')).code, 1);
    assert.equal((await nbd('delete', 'disk0', '--yes')).code, 1);
    r = await nbd('unlock', 'disk0');
    assert.match(r.stdout, /unlocked volume disk0 \(was held by server-1/);
    await assert.rejects(h.device.write(0, Buffer.from('late'), { fua: true }), /lease/);
    await h.release();
    await store.close();

    r = await nbd('resize', 'disk0', '--size', '8M');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await nbd('resize', 'disk0', '--size', '1M')).code, 2, 'no shrinking');
    assert.equal((JSON.parse((await nbd('info', 'disk0', '--json')).stdout) as Record<string, unknown>)['size'], 8 * 1024 * 1024);

    assert.equal((await nbd('delete', 'disk0')).code, 2, 'needs --yes');
    r = await nbd('delete', 'disk0', '--yes');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deleted volume disk0 \(3 blocks\)/);
    assert.equal((await nbd('info', 'disk0')).code, 1);

    await writeFile(join(dir, 'secrets.conf'), '[mynbd0]\nusername = user\npassword = s3cret-pw\nobjects = 16\n\n[big]\nusername=u\npassword=p\nsize = 1G\n[nosize]\nusername=u\n[fresh]\nusername=u\n');
    r = await nbd('import-secrets', join(dir, 'secrets.conf'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /mynbd0: created, 1048576 bytes, block size 65536/);
    assert.match(r.stdout, /big: created, 1073741824 bytes/);
    assert.match(r.stdout, /nosize: skipped/);
    assert.match(r.stdout, /fresh: exists/);
    assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
