import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { StowageError } from '../../core/errors.js';
import { DAEMON_PARAMS_MAX } from '../../core/limits.js';
import { parseDaemonRequest, parseGitProtocolHeader, protocolVersionFromParams } from './request.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');

function expectCode(payload: string | Uint8Array, code: string): void {
  assert.throws(
    () => parseDaemonRequest(typeof payload === 'string' ? bytes(payload) : payload),
    (err: unknown) => err instanceof StowageError && err.code === code,
    `expected ${code} for ${JSON.stringify(typeof payload === 'string' ? payload : 'bytes')}`,
  );
}

describe('parseDaemonRequest', () => {
  test("git's request with a host", () => {
    const r = parseDaemonRequest(bytes('git-upload-pack /project.git\0host=myserver.com\0'));
    assert.equal(r.service, 'git-upload-pack');
    assert.equal(r.repoName, 'project.git');
    assert.equal(r.host, 'myserver.com');
    assert.equal(r.protocolVersion, 0);
    assert.equal(r.statelessRpc, false);
    assert.equal(r.advertiseRefs, false);
  });

  test('extra parameters after the second NUL select the version', () => {
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /a/b.git\0host=h:9418\0\0version=2\0')).protocolVersion, 2);
    assert.equal(parseDaemonRequest(bytes('git-receive-pack /a\0host=h\0\0version=1\0')).protocolVersion, 1);
    // No host, straight to extra parameters.
    const r = parseDaemonRequest(bytes('git-upload-pack /x\0\0version=2\0'));
    assert.equal(r.protocolVersion, 2);
    assert.equal(r.host, undefined);
  });

  test('greatest known version wins; unknown versions and unknown extra keys are ignored', () => {
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /x\0\0version=1\0version=2\0version=9\0object-format=sha1\0flag\0')).protocolVersion, 2);
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /x\0\0version=3\0')).protocolVersion, 0);
    assert.deepEqual(parseDaemonRequest(bytes('git-upload-pack /x\0\0a=1\0b\0')).extraParams, ['a=1', 'b']);
  });

  test('old clients: no NUL, trailing LF, or an unterminated last field', () => {
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /x.git\n')).repoName, 'x.git');
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /x.git')).repoName, 'x.git');
    assert.equal(parseDaemonRequest(bytes('git-upload-pack /x\0host=h')).host, 'h');
  });

  test('turnip named parameters', () => {
    const r = parseDaemonRequest(bytes('git-upload-pack /x\0turnip-stateless-rpc=yes\0turnip-advertise-refs=yes\0host=h\0'));
    assert.equal(r.statelessRpc, true);
    assert.equal(r.advertiseRefs, true);
    assert.equal(r.host, 'h');
    expectCode('git-upload-pack /x\0turnip-stateless-rpc=perhaps\0', 'PROTO_BAD_REQUEST');
  });

  test('unknown named parameters are refused', () => {
    expectCode('git-upload-pack /x\0user=root\0', 'PROTO_UNKNOWN_PARAM');
    expectCode('git-upload-pack /x\0host=h\0turnip-authenticated-user=admin\0', 'PROTO_UNKNOWN_PARAM');
    expectCode('git-upload-pack /x\0version=2\0', 'PROTO_UNKNOWN_PARAM');
    expectCode('git-upload-pack /x\0=v\0', 'PROTO_UNKNOWN_PARAM');
    expectCode('git-upload-pack /x\0host=a\0host=b\0', 'PROTO_BAD_REQUEST');
  });

  test('control bytes are refused in every field', () => {
    expectCode('git-upload-pack /x\ny\0host=h\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack /x\0host=h\nevil\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack /x\0host=h\0\0version=2\r\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack /x\x7f\0', 'PROTO_BAD_REQUEST');
    expectCode(Buffer.from([...bytes('git-upload-pack /'), 0xff, 0xfe, 0]), 'PROTO_BAD_REQUEST');
  });

  test('bad services and paths', () => {
    expectCode('git-frobnicate /x\0', 'PROTO_BAD_REQUEST');
    expectCode('upload-pack /x\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack x\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack /\0', 'PROTO_BAD_REQUEST');
    expectCode('git-upload-pack\0', 'PROTO_BAD_REQUEST');
    expectCode('', 'PROTO_BAD_REQUEST');
  });

  test('the number of parameters is bounded', () => {
    const ok = `git-upload-pack /x\0host=h\0\0${'a\0'.repeat(DAEMON_PARAMS_MAX - 2)}`;
    assert.equal(parseDaemonRequest(bytes(ok)).extraParams.length, DAEMON_PARAMS_MAX - 2);
    expectCode(`git-upload-pack /x\0host=h\0\0${'a\0'.repeat(DAEMON_PARAMS_MAX)}`, 'LIMIT_EXCEEDED');
  });

  test('round trip of generated requests', () => {
    const field = fc.stringMatching(/^[a-z0-9][a-z0-9.:_-]{0,20}$/);
    fc.assert(
      fc.property(
        fc.constantFrom('git-upload-pack', 'git-receive-pack', 'git-upload-archive'),
        fc.stringMatching(/^[a-z0-9][a-z0-9/._-]{0,40}$/),
        fc.option(field, { nil: undefined }),
        fc.array(field, { maxLength: 10 }),
        fc.constantFrom(0, 1, 2),
        (service, path, host, extra, version) => {
          const params = version === 0 ? extra : [...extra, `version=${version}`];
          const hostPart = host === undefined ? '' : `host=${host}\0`;
          const extraPart = params.length === 0 ? '' : `\0${params.map((p) => `${p}\0`).join('')}`;
          const r = parseDaemonRequest(Buffer.from(`${service} /${path}\0${hostPart}${extraPart}`, 'utf8'));
          assert.equal(r.service, service);
          assert.equal(r.repoName, path);
          assert.equal(r.host, host);
          assert.deepEqual(r.extraParams, params);
          assert.equal(r.protocolVersion, protocolVersionFromParams(params));
          assert.ok(version === 0 || r.protocolVersion === version || r.protocolVersion === 2);
        },
      ),
      { seed: 20240901, numRuns: 300 },
    );
  });

  test('random bytes throw only StowageErrors', () => {
    const prefix = fc.constantFrom('', 'git-upload-pack /', 'git-receive-pack /x\0', 'git-upload-pack /x\0host=');
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 300 }), (p, tail) => {
        try {
          parseDaemonRequest(Buffer.concat([bytes(p), tail]));
        } catch (err) {
          assert.ok(err instanceof StowageError, String(err));
        }
      }),
      { seed: 7, numRuns: 2000 },
    );
  });
});

describe('parseGitProtocolHeader', () => {
  test('colon-separated extra parameters', () => {
    assert.deepEqual(parseGitProtocolHeader('version=2'), ['version=2']);
    assert.deepEqual(parseGitProtocolHeader('version=1:version=2:'), ['version=1', 'version=2']);
    assert.deepEqual(parseGitProtocolHeader(''), []);
    assert.equal(protocolVersionFromParams(parseGitProtocolHeader('foo:version=2')), 2);
  });

  test('bounded and free of control bytes', () => {
    assert.throws(() => parseGitProtocolHeader('a:'.repeat(DAEMON_PARAMS_MAX + 1)), (e: unknown) => e instanceof StowageError && e.code === 'LIMIT_EXCEEDED');
    assert.throws(() => parseGitProtocolHeader('version=2\x01'), (e: unknown) => e instanceof StowageError && e.code === 'PROTO_BAD_REQUEST');
  });
});
