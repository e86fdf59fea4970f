/**
 * STARTTLS with X.509 against libnbd's clients (nbdinfo, nbdcopy with `nbds://` URIs and
 * `tls-certificates=DIR`), certificates made by `openssl`: data goes through TLS
 * byte-identical; with TLS required a plain client is refused with NBD_REP_ERR_TLS_REQD; clients
 * that do not trust our CA, or that present no certificate where one is demanded, fail cleanly
 * while the server keeps serving others. Also the settings from configuration.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../core/errors.js';
import * as K from '../protocol/constants.js';
import { decodeOptionReply, encodeClientFlags, encodeOption } from '../protocol/handshake.js';
import { encodeInfoRequest } from '../protocol/option-data.js';
import { ByteInput } from './byte-input.js';
import { missingTools, run, startHarness, type Harness } from './testing/harness.js';
import type { MemoryDevice } from './testing/memory-device.js';
import { makeTlsFiles, type TlsFiles } from './testing/tls-certs.js';
import { nbdTlsFromConfig } from './tls-files.js';

const TOOLS = ['nbdinfo', 'nbdcopy', 'openssl'];

/** The reply types a plain client gets for LIST, GO and ABORT on a raw connection. */
async function plainOptionReplies(port: number): Promise<number[]> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  await once(s, 'connect');
  const input = new ByteInput(s);
  try {
    assert.ok(await input.read(18), 'greeting');
    s.write(encodeClientFlags(K.NBD_FLAG_C_FIXED_NEWSTYLE | K.NBD_FLAG_C_NO_ZEROES));
    const types: number[] = [];
    for (const [opt, data] of [
      [K.NBD_OPT_LIST, undefined],
      [K.NBD_OPT_GO, encodeInfoRequest({ name: 'disk', infos: [] })],
      [K.NBD_OPT_ABORT, undefined],
    ] as const) {
      s.write(encodeOption(opt, data));
      const head = await input.read(K.OPTION_REPLY_HEADER_LENGTH);
      assert.ok(head, 'connection closed before an option reply');
      const len = head.readUInt32BE(16);
      const body = len === 0 ? Buffer.alloc(0) : await input.read(len);
      assert.ok(body);
      const step = decodeOptionReply(Buffer.concat([head, body]));
      assert.ok(step.kind === 'reply');
      assert.equal(step.option, opt);
      types.push(step.type);
    }
    return types;
  } finally {
    s.destroy();
  }
}

describe('nbd STARTTLS', async () => {
  const skip = await missingTools(TOOLS);
  const t = skip === undefined ? test : (name: string, _fn: () => Promise<void>) => test(name, { skip });
  let dir: string;
  let files: TlsFiles;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-nbd-tls-'));
    if (skip === undefined) files = await makeTlsFiles(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('required, with client certificates', () => {
    let h: Harness;
    let tlsUri: (name: string, certDir: string) => string;
    before(async () => {
      if (skip !== undefined) return;
      const tls = nbdTlsFromConfig({ tls: 'require', tlsCert: files.serverCert, tlsKey: files.serverKey, tlsCa: files.caCert });
      h = await startHarness(undefined, { ...(tls === undefined ? {} : { tls }) });
      tlsUri = (name, certDir) => `nbds://127.0.0.1:${h.port}/${name}?tls-certificates=${certDir}`;
    });
    after(async () => {
      await h?.close();
    });

    t('nbdinfo over TLS sees the export', async () => {
      const { stdout } = await run('nbdinfo', ['--json', tlsUri('disk', files.clientDir)]);
      const info = JSON.parse(stdout) as { TLS: boolean; exports: Array<Record<string, unknown>> };
      assert.equal(info.TLS, true);
      assert.equal(info.exports[0]?.['export-size'], 64 * 1024 * 1024);
    });

    t('nbdcopy in and out over TLS is byte-identical', async () => {
      const img = randomBytes(64 * 1024 * 1024);
      img.fill(0, 20 * 1024 * 1024, 30 * 1024 * 1024);
      const src = join(dir, 'in.img');
      const out = join(dir, 'out.img');
      await writeFile(src, img);
      await run('nbdcopy', ['--flush', src, tlsUri('disk', files.clientDir)], { timeoutMs: 120_000 });
      const disk = h.provider.devices.get('disk') as MemoryDevice;
      assert.ok(Buffer.from(await disk.read(0, img.byteLength)).equals(img), 'the device holds the image');
      await run('nbdcopy', [tlsUri('disk', files.clientDir), out], { timeoutMs: 120_000 });
      assert.ok((await readFile(out)).equals(img), 'read back through TLS');
    });

    t('a plain client gets NBD_REP_ERR_TLS_REQD for every option but ABORT', async () => {
      assert.deepEqual(await plainOptionReplies(h.port), [K.NBD_REP_ERR_TLS_REQD, K.NBD_REP_ERR_TLS_REQD, K.NBD_REP_ACK]);
      // libnbd, asked for plain NBD, reports the server's refusal and gives up.
      await assert.rejects(run('nbdinfo', [`nbd://127.0.0.1:${h.port}/disk`], { timeoutMs: 30_000 }), /nbd_opt_go: server replied with error/);
    });

    t('clients that do not trust the CA or have no certificate fail; others are still served', async () => {
      await assert.rejects(run('nbdinfo', [tlsUri('disk', files.untrustingDir)], { timeoutMs: 30_000 }), /certificate verification/i);
      await assert.rejects(run('nbdinfo', [tlsUri('disk', files.noCertDir)], { timeoutMs: 30_000 }), /gnutls|TLS|alert/i);
      // `tls=require` in the URI: libnbd must not fall back to plain.
      await assert.rejects(run('nbdinfo', [`nbd://127.0.0.1:${h.port}/disk?tls=require&tls-certificates=${files.untrustingDir}`], { timeoutMs: 30_000 }));
      const { stdout } = await run('nbdinfo', ['--size', tlsUri('disk', files.clientDir)]);
      assert.equal(stdout.trim(), String(64 * 1024 * 1024));
      // The failed handshakes left no connection behind.
      for (let i = 0; i < 50 && h.server.connectionCount > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(h.server.connectionCount, 0);
    });
  });

  describe('offered (tls = on), no client certificates', () => {
    let h: Harness;
    before(async () => {
      if (skip !== undefined) return;
      const tls = nbdTlsFromConfig({ tls: 'on', tlsCert: files.serverCert, tlsKey: files.serverKey });
      h = await startHarness(undefined, { ...(tls === undefined ? {} : { tls }) });
    });
    after(async () => {
      await h?.close();
    });

    t('plain and TLS clients are both served', async () => {
      const plain = JSON.parse((await run('nbdinfo', ['--json', `nbd://127.0.0.1:${h.port}/disk`])).stdout) as { TLS: boolean };
      assert.equal(plain.TLS, false);
      const tls = JSON.parse((await run('nbdinfo', ['--json', `nbds://127.0.0.1:${h.port}/disk?tls-certificates=${files.noCertDir}`])).stdout) as { TLS: boolean };
      assert.equal(tls.TLS, true);
      await assert.rejects(run('nbdinfo', [`nbds://127.0.0.1:${h.port}/disk?tls-certificates=${files.untrustingDir}`], { timeoutMs: 30_000 }), /certificate verification/i);
    });
  });

  t('configuration: off is no TLS; on/require need readable, matching files', async () => {
    assert.equal(nbdTlsFromConfig({ tls: 'off', tlsCert: 'x' }), undefined);
    assert.throws(() => nbdTlsFromConfig({ tls: 'require' }), (e: unknown) => e instanceof ValidationError && e.code === 'CONFIG_INVALID' && /tlsCert/.test(e.message));
    assert.throws(() => nbdTlsFromConfig({ tls: 'on', tlsCert: join(dir, 'absent.pem'), tlsKey: files.serverKey }), (e: unknown) => e instanceof ValidationError && /absent\.pem/.test(e.message));
    // The client's key does not belong to the server's certificate.
    assert.throws(
      () => nbdTlsFromConfig({ tls: 'on', tlsCert: files.serverCert, tlsKey: join(files.clientDir, 'client-key.pem') }),
      (e: unknown) => e instanceof ValidationError && e.code === 'CONFIG_INVALID',
    );
    const opts = nbdTlsFromConfig({ tls: 'require', tlsCert: files.serverCert, tlsKey: files.serverKey, tlsCa: files.caCert });
    assert.equal(opts?.mode, 'require');
    assert.equal(opts?.requireClientCert, true);
  });
});
