/**
 * The server against stock NBD clients: nbdinfo, nbdcopy, qemu-img, qemu-io and nbdsh (libnbd's
 * Python shell) driving pipelined I/O, FUA, FLUSH, TRIM, WRITE_ZEROES, CACHE and BLOCK_STATUS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingTools, nbdsh, run, startHarness, type Harness } from './testing/harness.js';
import type { MemoryDevice } from './testing/memory-device.js';

const TOOLS = ['nbdinfo', 'nbdcopy', 'nbdsh', 'qemu-img', 'qemu-io'];

describe('nbd server with stock clients', async () => {
  const skip = await missingTools(TOOLS);
  let h: Harness;
  let dir: string;
  let disk: MemoryDevice;
  before(async () => {
    h = await startHarness();
    disk = h.provider.devices.get('disk') as MemoryDevice;
    dir = await mkdtemp(join(tmpdir(), 'stowage-nbd-'));
  });
  after(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });
  const t = skip === undefined ? test : (name: string, _fn: () => Promise<void>) => test(name, { skip });

  t('nbdinfo shows size, flags and block sizes', async () => {
    const { stdout } = await run('nbdinfo', ['--json', h.uri('disk')]);
    const info = JSON.parse(stdout) as { protocol: string; exports: Array<Record<string, unknown>> };
    assert.match(info.protocol, /newstyle-fixed/);
    const e = info.exports[0] as Record<string, unknown>;
    assert.equal(e['export-size'], 64 * 1024 * 1024);
    assert.equal(e['description'], 'a test disk');
    for (const k of ['can_flush', 'can_fua', 'can_trim', 'can_zero', 'can_fast_zero', 'can_cache', 'can_df', 'can_multi_conn']) assert.equal(e[k], true, k);
    assert.equal(e['is_read_only'], false);
    assert.equal(e['block_size_minimum'], 1);
    assert.equal(e['block_size_preferred'], 4096);
    assert.equal(e['block_size_maximum'], 32 * 1024 * 1024);
    const ro = JSON.parse((await run('nbdinfo', ['--json', h.uri('ro')])).stdout) as { exports: Array<Record<string, unknown>> };
    assert.equal(ro.exports[0]?.['is_read_only'], true);
    assert.equal(ro.exports[0]?.['can_trim'], false);
  });

  t('nbdinfo --list shows every export; an unknown export is refused', async () => {
    const { stdout } = await run('nbdinfo', ['--list', '--json', `nbd://127.0.0.1:${h.port}`]);
    const names = (JSON.parse(stdout) as { exports: Array<{ 'export-name': string }> }).exports.map((e) => e['export-name']).sort();
    assert.deepEqual(names, ['disk', 'ro']);
    await assert.rejects(run('nbdinfo', [h.uri('nope')]), /unknown|not available|export/i);
  });

  t('nbdcopy in and out is byte-identical; --map reports data and holes', async () => {
    const img = Buffer.alloc(64 * 1024 * 1024);
    randomBytes(8 * 1024 * 1024).copy(img, 0);
    randomBytes(1024 * 1024).copy(img, 40 * 1024 * 1024);
    const src = join(dir, 'src.img');
    const back = join(dir, 'back.img');
    await writeFile(src, img);
    await run('nbdcopy', [src, h.uri('disk')]);
    await run('nbdcopy', [h.uri('disk'), back]);
    assert.ok((await readFile(back)).equals(img), 'image read back differs');
    const map = (await run('nbdinfo', ['--map', '--json', h.uri('disk')])).stdout;
    const extents = JSON.parse(map) as Array<{ offset: number; length: number; type: number }>;
    assert.equal(extents[0]?.offset, 0);
    assert.equal(extents[0]?.type, 0, 'the start is data');
    assert.ok(extents.some((e) => e.type === 3), 'some hole,zero extent');
    assert.equal(extents.reduce((s, e) => s + e.length, 0), 64 * 1024 * 1024);
  });

  t('qemu-img convert to and from the export', async () => {
    const src = join(dir, 'q-src.img');
    const data = Buffer.alloc(16 * 1024 * 1024);
    randomBytes(3 * 1024 * 1024).copy(data, 5 * 1024 * 1024);
    await writeFile(src, data);
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `${h.uri('disk')}`]);
    const qcow = join(dir, 'out.qcow2');
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', h.uri('disk'), qcow]);
    const back = join(dir, 'back.raw');
    await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', qcow, back]);
    assert.ok((await readFile(back)).subarray(0, data.byteLength).equals(data));
  });

  t('qemu-io read, write, discard and write -z', async () => {
    const { stdout } = await run('qemu-io', [
      '-f', 'raw',
      '-c', 'write -P 0xab 0 1M',
      '-c', 'read -P 0xab 0 1M',
      '-c', 'discard 0 64k',
      '-c', 'read -P 0 0 64k',
      '-c', 'write -z 1M 1M',
      '-c', 'read -P 0 1M 1M',
      '-c', 'write -P 0x11 2M 4k',
      '-c', 'read -P 0x11 2M 4k',
      h.uri('disk'),
    ]);
    assert.doesNotMatch(stdout, /Pattern verification failed|error/i);
    assert.match(stdout, /discard 65536\/65536/);
  });

  t('nbdsh: pipelined requests complete out of order', async () => {
    disk.readDelay.set(0, 300);
    try {
      const script = `
import nbd
h = nbd.NBD()
h.connect_uri(${JSON.stringify(h.uri('disk'))})
order = []
def done(tag):
    def f(err):
        order.append((tag, getattr(err, "value", err)))
        return 1
    return f
h.aio_pread(nbd.Buffer(4096), 0, completion=done("slow"))
for i in range(8):
    h.aio_pread(nbd.Buffer(4096), 65536 * (i + 1), completion=done(i))
assert h.aio_in_flight() == 9
while h.aio_in_flight() > 0:
    h.poll(-1)
assert len(order) == 9 and all(e == 0 for _, e in order), order
assert order[-1][0] == "slow", order
h.shutdown()
print("ok")
`;
      const { stdout } = await nbdsh(['-c', script]);
      assert.match(stdout, /ok/);
    } finally {
      disk.readDelay.delete(0);
    }
  });

  t('nbdsh: FUA, FLUSH, TRIM, WRITE_ZEROES with flags, CACHE, BLOCK_STATUS', async () => {
    const before = { ...disk.calls };
    const M = 1024 * 1024;
    const script = `
import nbd
h = nbd.NBD()
h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.connect_uri(${JSON.stringify(h.uri('disk'))})
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.pwrite(b"\\x5a" * 65536, ${48 * M}, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(65536, ${48 * M}) == b"\\x5a" * 65536
h.trim(65536, ${48 * M})
h.zero(65536, ${49 * M}, nbd.CMD_FLAG_NO_HOLE)
h.zero(65536, ${50 * M}, nbd.CMD_FLAG_FAST_ZERO | nbd.CMD_FLAG_FUA)
assert h.pread(65536, ${49 * M}) == bytes(65536)
h.cache(65536, 0)
seen = []
def cb(meta, off, entries, err):
    seen.append((meta, off, list(entries)))
    return 0
h.block_status(${2 * M}, ${48 * M}, cb)
h.block_status(${2 * M}, ${48 * M}, cb, nbd.CMD_FLAG_REQ_ONE)
assert seen[0][0] == "base:allocation"
total = sum(seen[0][2][0::2])
assert total >= ${2 * M}, seen
assert seen[0][2][1] == 3, seen  # trimmed block: hole,zero
assert len(seen[1][2]) == 2 and seen[1][2][0] <= ${2 * M}, seen
h.shutdown()
print("ok")
`;
    const { stdout } = await nbdsh(['-c', script]);
    assert.match(stdout, /ok/);
    assert.ok(disk.calls.fuaWrites > before.fuaWrites, 'FUA reached the device');
    assert.ok(disk.calls.flushes > before.flushes, 'FLUSH reached the device');
    assert.ok(disk.calls.trims > before.trims);
    assert.ok(disk.calls.noHoleZeroes > before.noHoleZeroes);
    assert.ok(disk.calls.fastZeroes > before.fastZeroes);
    assert.ok(disk.calls.caches > before.caches);
    assert.ok(disk.calls.blockStatus >= before.blockStatus + 2);
  });

  t('nbdsh: writes to a read-only export fail with EPERM', async () => {
    const script = `
import nbd, errno
h = nbd.NBD()
h.connect_uri(${JSON.stringify(h.uri('ro'))})
assert h.is_read_only()
try:
    h.pread(4096, 1024 * 1024)
    raise SystemExit("read past the end succeeded")
except nbd.Error as e:
    assert e.errnum == errno.EINVAL, e
print(len(h.pread(4096, 0)))
h.shutdown()
`;
    const { stdout } = await nbdsh(['-c', script]);
    assert.match(stdout, /4096/);
  });
});
