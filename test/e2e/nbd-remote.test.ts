/**
 * NBD end to end on remote stores: volumes on native Swift and on Swift's s3api (which refuses
 * every conditional PUT), with the writer lease and the volume's create-once name claim in
 * etcd (`--meta etcd://…`). For each store: `stowage nbd create`, `serve --nbd-listen`, nbdcopy
 * a random image in and out byte-identical, qemu-img convert to and from the volume, racing
 * creators of one name (exactly one wins), and a second server refused while the first holds
 * the lease (whose records are in etcd). Needs the shared Swift AIO and etcd cluster
 * (test/infra/services.ts) and libnbd-bin, python3-libnbd (nbdsh), qemu-utils.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, truncate, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EtcdConnection, prefixEnd } from '../../src/meta/etcd/etcd-connection.js';
import { parseEtcdUrl } from '../../src/meta/etcd/etcd-options.js';
import { missingTools, nbdsh } from '../../src/nbd/server/testing/harness.js';
import { cliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { requireEtcd, requireSwift } from '../infra/services.js';
import { requireTools, run, startNbdServer, type NbdServerProcess } from './nbd-helpers.js';
import { useRemoteStore, type RemoteStore } from './remote-store.js';

const MiB = 1024 * 1024;
const VOLUME_BYTES = 256 * MiB;
/** Small enough for about a minute per store on a loaded machine. */
const IMAGE_BYTES = 24 * MiB;

const services = requireSwift('NBD on remote stores') !== undefined && requireEtcd('NBD on remote stores') !== undefined;
const skip = services ? false : 'the shared Swift AIO or etcd cluster is not running';

const holders = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of holders) c.kill('SIGKILL');
});

async function createVolume(dataDir: string, name: string, size: string): Promise<{ code: number; stderr: string }> {
  return cliResult(['nbd', 'create', name, '--size', size], { dataDir, timeoutMs: 120_000 });
}

/** Keys under `<prefix>nbd/<name>/` in the etcd cluster STOWAGE_META names. */
async function etcdVolumeKeys(name: string): Promise<string[]> {
  const conn = await EtcdConnection.open(parseEtcdUrl(process.env['STOWAGE_META'] as string, process.env));
  try {
    const from = Buffer.from(`${conn.prefix}nbd/${name}/`);
    const { kvs } = await conn.rangeAll('list test keys', from, prefixEnd(from));
    return kvs.map((kv) => kv.key.toString('utf8').slice(from.length));
  } finally {
    conn.close();
  }
}

/** nbdsh (`python3 -m nbd`) in the first python3 on PATH that has libnbd's module (as harness.ts runs it). */
const NBDSH = 'for p in $(type -ap python3); do if "$p" -c "import nbd" 2>/dev/null; then exec "$p" -m nbd "$@"; fi; done; exit 127';

/** Opens the export writable with libnbd (nbdsh) and holds it until `release()`. */
async function holdExport(url: string): Promise<{ release(): Promise<void> }> {
  const code = "print('READY', flush=True)\nimport sys\nsys.stdin.read()";
  const child = spawn('bash', ['-c', NBDSH, 'nbdsh', '-u', url, '-c', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  holders.add(child);
  let out = '';
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nbdsh did not connect in 60 s: ${out}`)), 60_000);
    void exited.then(() => reject(new Error(`nbdsh exited before connecting: ${out}`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'READY') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    release: async () => {
      child.stdin.end();
      await exited;
      holders.delete(child);
    },
  };
}

/** Whether a writable libnbd connection to the export succeeds, and the error if not. */
async function probe(url: string): Promise<{ connected: boolean; error: string }> {
  return nbdsh(['-u', url, '-c', 'pass']).then(
    () => ({ connected: true, error: '' }),
    (err: unknown) => ({ connected: false, error: err instanceof Error ? err.message : String(err) }),
  );
}

function defineSuite(kind: RemoteStore): void {
  describe(`NBD on ${kind === 'swift' ? 'native Swift' : "Swift's s3api"} with leases in etcd`, { skip, timeout: 600_000 }, () => {
    let work: string;
    let dataDir: string;
    let server: NbdServerProcess | undefined;

    before(async () => {
      const reason = await useRemoteStore(kind, `NBD on ${kind}`);
      assert.equal(reason, undefined);
      work = await makeTempDir(`stowage-nbd-${kind}-work-`);
      dataDir = await makeTempDir(`stowage-nbd-${kind}-data-`);
      const r = await createVolume(dataDir, 'vol', '256M');
      assert.equal(r.code, 0, r.stderr);
      server = await startNbdServer(dataDir);
    });
    after(async () => {
      await server?.stop();
    });

    test('the volume is claimed in etcd; creating it again and racing creators of a new name: one wins', async () => {
      assert.deepEqual(await etcdVolumeKeys('vol'), ['meta'], 'the name claim is in etcd, no lease yet');
      const again = await createVolume(dataDir, 'vol', '128M');
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /already exists/);
      const racers = await Promise.all([0, 1, 2].map(() => createVolume(dataDir, 'race', '64M')));
      assert.equal(racers.filter((r) => r.code === 0).length, 1, racers.map((r) => r.stderr).join('\n'));
      const info = await cliResult(['nbd', 'info', 'race', '--json'], { dataDir, timeoutMs: 60_000 });
      assert.equal(info.code, 0, info.stderr);
      assert.equal((JSON.parse(info.stdout) as Record<string, unknown>)['size'], 64 * MiB);
    });

    test('nbdcopy: a random image goes in and comes out byte-identical', async (t) => {
      if (!(await requireTools(t, [['nbdcopy', ['--version']]]))) return;
      const url = `${(server as NbdServerProcess).nbdUrl}/vol`;
      const src = join(work, 'random.img');
      const fh = await open(src, 'w');
      await fh.write(randomBytes(IMAGE_BYTES), 0, IMAGE_BYTES, 0);
      await fh.close();
      await run('nbdcopy', ['--flush', src, url]);
      const expected = join(work, 'random.expected');
      await copyFile(src, expected);
      await truncate(expected, VOLUME_BYTES);
      await run('nbdcopy', [url, join(work, 'random.out')]);
      await run('cmp', [expected, join(work, 'random.out')]);
    });

    test('qemu-img convert to and from the volume', async (t) => {
      if (!(await requireTools(t, [['qemu-img', ['--version']]]))) return;
      const url = `${(server as NbdServerProcess).nbdUrl}/vol`;
      const src = join(work, 'sparse.img');
      const fh = await open(src, 'w');
      await fh.truncate(VOLUME_BYTES);
      await fh.write(randomBytes(3 * MiB), 0, 3 * MiB, 100 * MiB + 4096);
      await fh.write(randomBytes(MiB), 0, MiB, VOLUME_BYTES - MiB);
      await fh.close();
      await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url]);
      await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', url, join(work, 'back.qcow2')]);
      await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', src, join(work, 'back.qcow2')]);
    });

    test('a second server on the volume is refused while the first holds the lease in etcd', async (t) => {
      const missing = await missingTools(['nbdsh']);
      if (missing !== undefined) return t.skip(missing);
      const first = server as NbdServerProcess;
      const holder = await holdExport(`${first.nbdUrl}/vol`);
      const second = await startNbdServer(dataDir);
      try {
        const leases = (await etcdVolumeKeys('vol')).filter((k) => k.startsWith('lease/'));
        assert.ok(leases.length >= 1, `lease records are in etcd: ${JSON.stringify(leases)}`);
        const info = JSON.parse((await cliResult(['nbd', 'info', 'vol', '--json'], { dataDir, timeoutMs: 60_000 })).stdout) as Record<string, unknown>;
        assert.notEqual(info['leaseHolder'], null, `the first server holds the lease: ${JSON.stringify(info)}`);

        const refused = await probe(`${second.nbdUrl}/vol`);
        assert.equal(refused.connected, false, 'the second server refuses a writer');
        assert.match(refused.error, /server policy prevents NBD_OPT_GO/);

        // Once the holder disconnects, the first server frees the lease and the second serves.
        await holder.release();
        const started = Date.now();
        let ok = await probe(`${second.nbdUrl}/vol`);
        while (!ok.connected && Date.now() - started < 20_000) {
          await new Promise((r) => setTimeout(r, 500));
          ok = await probe(`${second.nbdUrl}/vol`);
        }
        assert.equal(ok.connected, true, `after release the second server serves the volume: ${ok.error}`);
      } finally {
        await holder.release();
        await second.stop();
      }
      for (const s of [first, second]) assert.doesNotMatch(s.output(), /"level":(50|60)|"level":"(error|fatal)"/, s.output().slice(-4000));
    });
  });
}

defineSuite('swift');
defineSuite('s3');
