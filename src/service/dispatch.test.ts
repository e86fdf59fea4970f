import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRefAdvertisement } from '../git/protocol/advertisement.js';
import { memoryEnv, runService } from './testing/driver.js';

describe('createGitService', () => {
  test('typed errors before any output: unknown or bad repository, disabled services', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service({ allowReceivePack: (req) => req.repoName !== 'r' });
    const missing = await runService(svc, { service: 'git-upload-pack', repoName: 'nope' });
    assert.equal((missing.error as { code?: string }).code, 'REPO_NOT_FOUND');
    assert.equal(missing.output.length, 0);
    const bad = await runService(svc, { service: 'git-upload-pack', repoName: '../etc' });
    assert.equal((bad.error as { code?: string }).code, 'REPO_BAD_NAME');
    const archive = await runService(svc, { service: 'git-upload-archive', repoName: 'r' });
    assert.equal((archive.error as { code?: string }).code, 'PROTO_SERVICE_DISABLED');
    const push = await runService(svc, { service: 'git-receive-pack', repoName: 'r' });
    assert.equal((push.error as { code?: string }).code, 'AUTH_DENIED');
    assert.equal(push.output.length, 0);
  });

  test('receive-pack answers a v2 request with v0, v1 with a version line', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    const v2 = await runService(svc, { service: 'git-receive-pack', repoName: 'r', protocolVersion: 2 }, Buffer.from('0000'));
    assert.equal(decodeRefAdvertisement(v2.output).version, 0);
    const v1 = await runService(svc, { service: 'git-receive-pack', repoName: 'r', protocolVersion: 1 }, Buffer.from('0000'));
    assert.equal(decodeRefAdvertisement(v1.output).version, 1);
  });

  test('a malformed request after the advertisement is reported with an ERR line and rethrown', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const r = await runService(env.service(), { service: 'git-upload-pack', repoName: 'r' }, Buffer.from('0009bogus0000'));
    assert.equal((r.error as { code?: string }).code, 'PROTO_BAD_WANT');
    assert.match(r.output.toString('latin1'), /ERR git upload-pack: protocol error|ERR protocol error: expected a want line/);
  });

  test('a failing sink fails the request', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    async function* none(): AsyncIterable<Uint8Array> {}
    await assert.rejects(
      svc.serve(
        { service: 'git-upload-pack', repoName: 'r', protocolVersion: 0, statelessRpc: false, advertiseRefs: false, requestId: 't' },
        none(),
        { write: async () => Promise.reject(new Error('socket closed')) },
      ),
      /socket closed/,
    );
  });
});
