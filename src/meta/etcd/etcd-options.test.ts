import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { StowageError, ValidationError } from '../../core/errors.js';
import { parseEtcdUrl, resolveEtcdOptions } from './etcd-options.js';

function configError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, pattern);
    return true;
  });
}

describe('etcd options', () => {
  test('defaults', () => {
    const o = resolveEtcdOptions({ endpoints: ['127.0.0.1:2379'] });
    assert.equal(o.prefix, 'stowage/');
    assert.equal(o.reads, 'linearizable');
    assert.equal(o.maxTxnOps, 128);
    assert.equal(o.maxRequestBytes, 1.5 * 1024 * 1024);
    assert.ok(o.callTimeoutMs >= 1000 && o.callTimeoutMs <= 10_000);
    assert.ok(o.dialTimeoutMs >= 1000 && o.dialTimeoutMs <= 10_000);
  });

  test('bad options name the key', () => {
    configError(() => resolveEtcdOptions({ endpoints: [] }), /endpoints/);
    configError(() => resolveEtcdOptions({ endpoints: ['nohost'] }), /endpoints\.0/);
    configError(() => resolveEtcdOptions({ endpoints: ['h:1'], prefix: 'a/../b' }), /prefix/);
    configError(() => resolveEtcdOptions({ endpoints: ['h:1'], callTimeoutMs: 0 }), /callTimeoutMs/);
    configError(() => resolveEtcdOptions({ endpoints: ['http://h:1', 'https://h:2'] }), /mix/);
    configError(() => resolveEtcdOptions({ endpoints: ['h:1'], bogus: 1 } as never), /bogus|options/);
  });

  test('parseEtcdUrl: hosts, prefix and every query key', () => {
    assert.deepEqual(parseEtcdUrl('etcd://10.0.0.1:2379,10.0.0.2:2379,[::1]:2379/prod/git'), {
      endpoints: ['10.0.0.1:2379', '10.0.0.2:2379', '[::1]:2379'],
      prefix: '/prod/git',
    });
    assert.deepEqual(parseEtcdUrl('etcd://h:1'), { endpoints: ['h:1'] });
    assert.deepEqual(parseEtcdUrl('etcd://h:1/'), { endpoints: ['h:1'] });
    assert.equal(resolveEtcdOptions(parseEtcdUrl('etcd://h:1/prod/git/')).prefix, 'prod/git/');
    const full = parseEtcdUrl(
      'etcd://h:1/p?ca=%2Fetc%2Fca.pem&cert=c.pem&key=k.pem&user=git&dial_timeout_ms=1000&call-timeout-ms=2000&reads=cached&max_txn_ops=1024&maxRequestBytes=4194304&cache_repos=10',
      { STOWAGE_ETCD_PASSWORD: 'pw' },
    );
    assert.deepEqual(full, {
      endpoints: ['h:1'],
      prefix: '/p',
      tls: { caFile: '/etc/ca.pem', certFile: 'c.pem', keyFile: 'k.pem' },
      auth: { username: 'git', password: 'pw' },
      dialTimeoutMs: 1000,
      callTimeoutMs: 2000,
      reads: 'cached',
      maxTxnOps: 1024,
      maxRequestBytes: 4194304,
      cacheRepos: 10,
    });
    assert.deepEqual(parseEtcdUrl('etcd://h:1?tls=true').tls, {});
  });

  test('parseEtcdUrl refuses what it cannot honour, naming it', () => {
    configError(() => parseEtcdUrl('http://h:1'), /etcd:\/\//);
    configError(() => parseEtcdUrl('etcd:///p'), /HOST:PORT/);
    configError(() => parseEtcdUrl('etcd://u:pw@h:1'), /credentials/);
    configError(() => parseEtcdUrl('etcd://h:1?nope=1'), /nope/);
    configError(() => parseEtcdUrl('etcd://h:1?reads=cached&reads=cached'), /twice/);
    configError(() => parseEtcdUrl('etcd://h:1?call_timeout_ms=soon'), /call_timeout_ms/);
    configError(() => parseEtcdUrl('etcd://h:1?reads=sometimes'), /reads/);
    configError(() => parseEtcdUrl('etcd://h:1?user=git'), /STOWAGE_ETCD_PASSWORD/);
    configError(() => parseEtcdUrl('etcd://h:99999'), /endpoints/);
    configError(() => parseEtcdUrl('etcd://h:1/%zz'), /percent/);
  });

  test('parseEtcdUrl: any string either parses to valid options or throws CONFIG_INVALID', () => {
    const piece = fc.oneof(
      fc.string(),
      fc.constantFrom('etcd://', 'h:1', ',', '/', '?', '&', '=', 'reads', 'cached', 'tls', 'true', 'ca', 'user', '%', '[::1]:2', '@'),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const url = parts.join('');
        try {
          resolveEtcdOptions(parseEtcdUrl(url, { STOWAGE_ETCD_PASSWORD: 'x' }));
        } catch (err) {
          assert.ok(err instanceof StowageError && err.code === 'CONFIG_INVALID', `${JSON.stringify(url)} threw ${String(err)}`);
        }
      }),
      { seed: 20240611, numRuns: 2000 },
    );
  });
});
