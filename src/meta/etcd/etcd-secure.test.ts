/**
 * TLS (server certificate checked against our CA, client certificate) and password auth,
 * against a one-member etcd of its own started with TLS and `auth enable`; certificates are
 * made with openssl in a temp dir.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findCommand, freePorts, spawnDaemon, waitUntil, type Daemon } from '../../../test/infra/daemon.js';
import { inCi } from '../../../test/infra/services.js';
import { StowageError } from '../../core/errors.js';
import { EtcdConnection } from './etcd-connection.js';
import { EtcdMetaStore } from './etcd-meta.js';
import type { EtcdOptions } from './etcd-options.js';

const run = promisify(execFile);
const missing = ['etcd', 'etcdctl', 'openssl'].filter((c) => findCommand(c) === undefined);
const skip = missing.length > 0 && !inCi() ? `${missing.join(', ')} not found on PATH` : false;

/** Makes a CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
async function makeCerts(dir: string): Promise<void> {
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=stowage-test-ca');
  for (const [name, cn, usage] of [
    ['server', '127.0.0.1', 'serverAuth,clientAuth'],
    ['client', 'stowage-client', 'clientAuth'],
  ] as const) {
    await fsp.writeFile(path.join(dir, `${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    await openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
}

describe('EtcdMetaStore with TLS and auth', { skip }, () => {
  let dir: string;
  let etcd: Daemon | undefined;
  let endpoint: string;
  let tls: NonNullable<EtcdOptions['tls']>;

  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-etcd-tls-'));
    await makeCerts(dir);
    tls = { caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'client.pem'), keyFile: path.join(dir, 'client.key') };
    const [client, peer] = (await freePorts(2)) as [number, number];
    endpoint = `127.0.0.1:${client}`;
    etcd = await spawnDaemon({
      name: 'etcd (tls)',
      command: 'etcd',
      args: [
        '--name', 's0',
        '--data-dir', path.join(dir, 'data'),
        '--listen-client-urls', `https://${endpoint}`,
        '--advertise-client-urls', `https://${endpoint}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `s0=http://127.0.0.1:${peer}`,
        '--cert-file', path.join(dir, 'server.pem'),
        '--key-file', path.join(dir, 'server.key'),
        '--trusted-ca-file', path.join(dir, 'ca.pem'),
        '--client-cert-auth',
      ],
      logFile: path.join(dir, 'etcd.log'),
      cwd: dir,
    });
    const etcdctl = (...args: string[]): Promise<unknown> =>
      run('etcdctl', [`--endpoints=https://${endpoint}`, `--cacert=${tls.caFile}`, `--cert=${tls.certFile}`, `--key=${tls.keyFile}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
        timeout: 20_000,
      });
    await waitUntil(
      async () => {
        await etcdctl('endpoint', 'health');
        return true;
      },
      { what: 'etcd with TLS', timeoutMs: 30_000, daemons: [etcd] },
    );
    await etcdctl('user', 'add', 'root:secret-pw');
    await etcdctl('user', 'grant-role', 'root', 'root');
    await etcdctl('auth', 'enable');
  });

  after(async () => {
    await etcd?.kill('SIGKILL');
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('TLS with a client certificate and a password: everything works', async () => {
    const meta = await EtcdMetaStore.open({ endpoints: [endpoint], tls, auth: { username: 'root', password: 'secret-pw' } });
    try {
      const { id } = await meta.createRepo({ name: 'secure', head: 'refs/heads/main' });
      const res = await meta.transact(id, { refs: [{ name: 'refs/heads/main', expected: { kind: 'must-not-exist' }, value: { oid: 'a'.repeat(40) } }] });
      assert.ok(res.ok);
      assert.equal((await meta.readState(id)).refs.get('refs/heads/main')?.oid, 'a'.repeat(40));
      assert.doesNotMatch(meta.description, /secret-pw/);
    } finally {
      await meta.close();
    }
  });

  test('a wrong password or an unknown CA fails with STORE_IO saying why', async () => {
    const refused = (pattern: RegExp) => (err: unknown) => {
      assert.ok(err instanceof StowageError && err.code === 'STORE_IO', String(err));
      assert.match(err.message, pattern);
      assert.doesNotMatch(err.message, /secret-pw|wrong-pw/);
      return true;
    };
    await assert.rejects(
      () => EtcdConnection.open({ endpoints: [endpoint], tls, auth: { username: 'root', password: 'wrong-pw' }, dialTimeoutMs: 3000 }),
      refused(/refused the credentials/),
    );
    // Without our CA the server's certificate is not trusted: no connection at all.
    await assert.rejects(
      () => EtcdConnection.open({ endpoints: [`https://${endpoint}`], dialTimeoutMs: 2000 }),
      refused(/unavailable/),
    );
    await assert.rejects(
      () => EtcdConnection.open({ endpoints: [endpoint], tls: { caFile: path.join(dir, 'missing.pem') } }),
      refused(/missing\.pem/),
    );
  });
});
