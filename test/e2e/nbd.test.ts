/**
 * NBD end to end with real clients against `stowage serve --nbd-listen`: nbdinfo, nbdcopy
 * (1 GiB random image in and out), qemu-img, an ext4 image checked by e2fsck, and fio's nbd
 * engine with verification. Needs libnbd-bin, qemu-utils, e2fsprogs and fio.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { requireTools, run, startNbdServer, type NbdServerProcess } from './nbd-helpers.js';

const GiB = 1024 * 1024 * 1024;

async function createVolume(dataDir: string, name: string, size: string, extra: string[] = []): Promise<void> {
  const r = await cliResult(['nbd', 'create', name, '--size', size, ...extra], { dataDir });
  assert.equal(r.code, 0, r.stderr);
}

async function writeRandomFile(file: string, size: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    const chunk = 16 * 1024 * 1024;
    for (let off = 0; off < size; off += chunk) await fh.write(randomBytes(Math.min(chunk, size - off)), 0, Math.min(chunk, size - off), off);
  } finally {
    await fh.close();
  }
}

async function sameFiles(a: string, b: string): Promise<void> {
  await run('cmp', [a, b]);
}

describe('NBD with real clients', { timeout: 900_000 }, () => {
  let server: NbdServerProcess;
  let work: string;

  before(async () => {
    work = await makeTempDir('stowage-nbd-e2e-work-');
    const dataDir = await makeTempDir('stowage-nbd-e2e-data-');
    await createVolume(dataDir, 'big', '1G');
    await createVolume(dataDir, 'small', '256M', ['--block-size', '64K', '--description', 'swiftnbd layout']);
    await createVolume(dataDir, 'fs', '256M');
    await createVolume(dataDir, 'fio', '128M');
    server = await startNbdServer(dataDir);
  });
  after(async () => {
    await server?.stop();
  });

  test('nbdinfo shows the exports, their size and limits', async (t) => {
    if (!(await requireTools(t, [['nbdinfo', ['--version']]]))) return;
    const list = await run('nbdinfo', ['--list', '--json', `${server.nbdUrl}/`]);
    const names = (JSON.parse(list.stdout) as { exports: { 'export-name': string }[] }).exports.map((e) => e['export-name']).sort();
    assert.deepEqual(names, ['big', 'fio', 'fs', 'small']);
    const info = JSON.parse((await run('nbdinfo', ['--json', `${server.nbdUrl}/small`])).stdout) as { exports: Record<string, unknown>[] };
    const e = info.exports[0] as Record<string, unknown>;
    assert.equal(e['export-size'], 256 * 1024 * 1024);
    assert.equal(e['can_multi_conn'], true);
    assert.equal(e['can_flush'], true);
    assert.equal(e['can_fua'], true);
    assert.equal(e['block_size_preferred'], 65536);
    assert.equal(e['block_size_maximum'], 32 * 1024 * 1024);
  });

  test('nbdcopy: a 1 GiB random image goes in and comes out byte-identical', async (t) => {
    if (!(await requireTools(t, [['nbdcopy', ['--version']]]))) return;
    const src = join(work, 'random.img');
    await writeRandomFile(src, GiB);
    await run('nbdcopy', ['--flush', src, `${server.nbdUrl}/big`]);
    await run('nbdcopy', [`${server.nbdUrl}/big`, join(work, 'random.out')]);
    await sameFiles(src, join(work, 'random.out'));
    // What was flushed is in the store: the CLI reads it back directly, even while served.
    const r = await cliResult(['nbd', 'download', 'big', join(work, 'random.cli')], { dataDir: server.dataDir, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    await sameFiles(src, join(work, 'random.cli'));
  });

  test('qemu-img convert in and out; holes stay holes', async (t) => {
    if (!(await requireTools(t, [['qemu-img', ['--version']]]))) return;
    const src = join(work, 'sparse.img');
    const fh = await open(src, 'w');
    await fh.truncate(256 * 1024 * 1024);
    await fh.write(randomBytes(3 * 1024 * 1024), 0, 3 * 1024 * 1024, 100 * 1024 * 1024 + 4096);
    await fh.close();
    await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, `${server.nbdUrl}/small`]);
    await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', `${server.nbdUrl}/small`, join(work, 'back.qcow2')]);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', src, join(work, 'back.qcow2')]);
    const map = JSON.parse((await run('qemu-img', ['map', '--output=json', '-f', 'raw', `${server.nbdUrl}/small`])).stdout) as { data: boolean; length: number }[];
    const data = map.filter((m) => m.data).reduce((n, m) => n + m.length, 0);
    assert.ok(data <= 4 * 1024 * 1024 + 128 * 1024, `only the written blocks are allocated (${data} bytes)`);
  });

  test('an ext4 image goes in with nbdcopy, comes back out and e2fsck finds it clean', async (t) => {
    if (!(await requireTools(t, [['nbdcopy', ['--version']], ['mkfs.ext4', ['-V']], ['e2fsck', ['-V']]]))) return;
    const img = join(work, 'ext4.img');
    const fh = await open(img, 'w');
    await fh.truncate(256 * 1024 * 1024);
    await fh.close();
    await run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0', img]);
    await run('nbdcopy', ['--flush', img, `${server.nbdUrl}/fs`]);
    const back = join(work, 'ext4.out');
    await run('nbdcopy', [`${server.nbdUrl}/fs`, back]);
    await run('e2fsck', ['-fn', back]);
    await sameFiles(img, back);
    assert.equal((await stat(back)).size, 256 * 1024 * 1024);
  });

  test('fio 4k randrw with verification through its nbd engine', async (t) => {
    if (!(await requireTools(t, [['fio', ['--enghelp=nbd']]]))) return;
    const r = await run('fio', [
      '--name=nbd-verify',
      '--ioengine=nbd',
      `--uri=${server.nbdUrl}/fio`,
      '--rw=randrw',
      '--bs=4k',
      '--size=64M',
      '--iodepth=16',
      '--verify=crc32c',
      '--do_verify=1',
      '--verify_fatal=1',
      // fio would otherwise leave a verify-state file in the working directory.
      '--verify_state_save=0',
      '--output-format=json',
    ]);
    const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: { error: number; write: { io_bytes: number } }[] }).jobs[0];
    assert.equal(job?.error, 0);
    assert.ok((job?.write.io_bytes ?? 0) > 0);
  });

  test('the server log names no failure', async () => {
    assert.doesNotMatch(server.output(), /"level":"(error|fatal)"/, server.output().slice(-4000));
  });
});
