/**
 * NBD over TLS end to end: `stowage serve` configured with `nbd.tls = require` and
 * certificates (through STOWAGE_NBD_* variables), libnbd's nbdinfo and nbdcopy with `nbds://`
 * URIs and `tls-certificates=DIR`. Data goes in and out byte-identical (and the CLI reads the
 * same bytes from the store); a plain client is refused with NBD_REP_ERR_TLS_REQD; a client
 * that does not trust the CA fails cleanly and the server keeps serving. Needs libnbd-bin and
 * openssl.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTlsFiles, type TlsFiles } from '../../src/nbd/server/testing/tls-certs.js';
import { cliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { requireTools, run, startNbdServer, type NbdServerProcess } from './nbd-helpers.js';

const MiB = 1024 * 1024;

describe('NBD over TLS with real clients', { timeout: 300_000 }, () => {
  let server: NbdServerProcess;
  let work: string;
  let files: TlsFiles;
  let base: string;

  before(async () => {
    work = await makeTempDir('stowage-nbd-tls-e2e-');
    const dataDir = await makeTempDir('stowage-nbd-tls-e2e-data-');
    const r = await cliResult(['nbd', 'create', 'disk', '--size', '64M'], { dataDir });
    assert.equal(r.code, 0, r.stderr);
    files = await makeTlsFiles(work);
    server = await startNbdServer(dataDir, {
      STOWAGE_NBD_TLS: 'require',
      STOWAGE_NBD_TLS_CERT: files.serverCert,
      STOWAGE_NBD_TLS_KEY: files.serverKey,
      STOWAGE_NBD_TLS_CA: files.caCert,
    });
    base = server.nbdUrl.replace(/^nbds?:/, 'nbds:');
  });
  after(async () => {
    await server?.stop();
  });

  const uri = (certDir: string): string => `${base}/disk?tls-certificates=${certDir}`;

  test('nbdcopy in and out over TLS is byte-identical', async (t) => {
    if (!(await requireTools(t, [['nbdinfo', ['--version']], ['nbdcopy', ['--version']]]))) return;
    const info = JSON.parse((await run('nbdinfo', ['--json', uri(files.clientDir)])).stdout) as { TLS: boolean };
    assert.equal(info.TLS, true);
    const img = randomBytes(64 * MiB);
    img.fill(0, 8 * MiB, 24 * MiB);
    await writeFile(join(work, 'in.img'), img);
    await run('nbdcopy', ['--flush', join(work, 'in.img'), uri(files.clientDir)]);
    await run('nbdcopy', [uri(files.clientDir), join(work, 'out.img')]);
    await run('cmp', [join(work, 'in.img'), join(work, 'out.img')]);
    const r = await cliResult(['nbd', 'download', 'disk', join(work, 'cli.img')], { dataDir: server.dataDir, timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    await run('cmp', [join(work, 'in.img'), join(work, 'cli.img')]);
  });

  test('a plain client is refused with TLS_REQD; an untrusting client fails; others are still served', async (t) => {
    if (!(await requireTools(t, [['nbdinfo', ['--version']]]))) return;
    const plain = base.replace(/^nbds:/, 'nbd:');
    // libnbd names the reply (NBD_REP_ERR_TLS_REQD) in its debug output and passes our message on.
    const err = await run('bash', ['-c', 'LIBNBD_DEBUG=1 nbdinfo "$1" 2>&1; echo "exit=$?"', 'sh', `${plain}/disk`]);
    assert.match(err.stdout, /requires TLS/);
    assert.match(err.stdout, /exit=[1-9]/);
    await assert.rejects(run('nbdinfo', [uri(files.untrustingDir)], 60_000), /certificate verification/i);
    await assert.rejects(run('nbdinfo', [uri(files.noCertDir)], 60_000));
    const { stdout } = await run('nbdinfo', ['--size', uri(files.clientDir)]);
    assert.equal(stdout.trim(), String(64 * MiB));
  });

  test('the server log names no failure', () => {
    assert.doesNotMatch(server.output(), /"level":"(error|fatal)"/, server.output().slice(-4000));
  });
});
