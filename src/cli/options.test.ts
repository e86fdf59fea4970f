import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ValidationError } from '../core/errors.js';
import type { CliIo } from './io.js';
import { configFromFlags, flagAssignments } from './options.js';

function io(env: Record<string, string>): CliIo {
  return { stdout: { write: () => true }, stderr: { write: () => true }, stdin: new PassThrough(), env };
}

test('flags map to config keys and name themselves in errors', () => {
  assert.deepEqual(flagAssignments({ data: 'd', gitListen: '1.2.3.4:5', gitAllowPush: true }), [
    { path: 'data', value: 'd', source: '--data' },
    { path: 'git.listen', value: '1.2.3.4:5', source: '--git-listen' },
    { path: 'git.allowPush', value: true, source: '--git-allow-push' },
  ]);
});

test('config precedence: file < environment < flags, key by key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-cli-'));
  try {
    const file = join(dir, 'stowage.toml');
    await writeFile(
      file,
      ['data = "from-file"', '[git]', 'listen = "127.0.0.1:1001"', 'allowPush = false', '[http]', 'listen = "127.0.0.1:2001"', '[log]', 'level = "warn"', ''].join('\n'),
    );
    const env = { STOWAGE_DATA: 'from-env', STOWAGE_HTTP_LISTEN: '127.0.0.1:2002', STOWAGE_GIT_ALLOW_PUSH: '1' };

    const fileOnly = await configFromFlags({ config: file }, io({}));
    assert.equal(fileOnly.data, 'from-file');
    assert.equal(fileOnly.git.allowPush, false);

    const withEnv = await configFromFlags({ config: file }, io(env));
    assert.equal(withEnv.data, 'from-env');
    assert.equal(withEnv.http.listen.port, 2002);
    assert.equal(withEnv.git.listen.port, 1001);
    assert.equal(withEnv.git.allowPush, true);
    assert.equal(withEnv.log.level, 'warn');

    const withFlags = await configFromFlags({ config: file, data: 'from-flag', httpListen: '127.0.0.1:2003', logLevel: 'debug' }, io(env));
    assert.equal(withFlags.data, 'from-flag');
    assert.equal(withFlags.http.listen.port, 2003);
    assert.equal(withFlags.git.listen.port, 1001);
    assert.equal(withFlags.log.level, 'debug');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a bad flag value is a usage error naming the flag', async () => {
  await assert.rejects(configFromFlags({ gitListen: 'nonsense' }, io({})), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.code, 'ARG_INVALID');
    assert.match(err.message, /--git-listen/);
    return true;
  });
});
