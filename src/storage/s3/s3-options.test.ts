import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../core/errors.js';
import { parseS3Url, resolveS3Options, S3_DEFAULT_PART_SIZE, type S3StoreOptions } from './s3-options.js';

function rejectsConfig(fn: () => unknown, mentions: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.match(err.message, mentions);
    return true;
  });
}

describe('parseS3Url', () => {
  test('bucket, prefix, endpoint, region and path style', () => {
    const opts = parseS3Url('s3://my-bucket/some/prefix?endpoint=http://127.0.0.1:8080&region=eu-west-1&path_style=true', {});
    assert.deepEqual(opts, {
      bucket: 'my-bucket',
      prefix: '/some/prefix',
      endpoint: 'http://127.0.0.1:8080',
      region: 'eu-west-1',
      forcePathStyle: true,
    });
    const r = resolveS3Options(opts);
    assert.equal(r.prefix, 'some/prefix/');
    assert.equal(r.forcePathStyle, true);
    assert.equal(r.createOnly, 'probe');
    assert.equal(r.partSize, S3_DEFAULT_PART_SIZE);
  });

  test('a bare bucket: AWS, us-east-1, virtual-hosted style, no prefix', () => {
    const opts = parseS3Url('s3://bucket', {});
    assert.deepEqual(opts, { bucket: 'bucket' });
    const r = resolveS3Options(opts);
    assert.equal(r.region, 'us-east-1');
    assert.equal(r.endpoint, undefined);
    assert.equal(r.forcePathStyle, false);
    assert.equal(r.prefix, '');
    assert.deepEqual(parseS3Url('s3://bucket/', {}), { bucket: 'bucket' });
    assert.equal(resolveS3Options({ bucket: 'b', endpoint: 'https://s3.example' }).forcePathStyle, true);
    assert.equal(resolveS3Options({ bucket: 'b', endpoint: 'https://s3.example', forcePathStyle: false }).forcePathStyle, false);
  });

  test('every query key, spelled with _ or - or in camel case', () => {
    const opts = parseS3Url(
      's3://b/p?create_only=unsupported&part-size=16m&concurrency=8&partConcurrency=2&request_timeout_ms=5000' +
        '&connect_timeout_ms=700&max_attempts=2&path_style=0',
      {},
    );
    assert.deepEqual(opts, {
      bucket: 'b',
      prefix: '/p',
      createOnly: 'unsupported',
      partSize: 16 * 1024 * 1024,
      concurrency: 8,
      partConcurrency: 2,
      requestTimeoutMs: 5000,
      connectTimeoutMs: 700,
      maxAttempts: 2,
      forcePathStyle: false,
    });
  });

  test('unknown, repeated and bad query keys name the key', () => {
    rejectsConfig(() => parseS3Url('s3://b?endpoint=http://h&colour=blue', {}), /unknown query key "colour"/);
    rejectsConfig(() => parseS3Url('s3://b?region=a&region=b', {}), /"region" is given twice/);
    rejectsConfig(() => parseS3Url('s3://b?path_style=yes', {}), /path_style must be true or false/);
    rejectsConfig(() => parseS3Url('s3://b?part_size=huge', {}), /part_size/);
    rejectsConfig(() => parseS3Url('s3://b?part_size=1m', {}), /partSize: must be at least 5242880/);
    rejectsConfig(() => parseS3Url('s3://b?max_attempts=-1', {}), /max_attempts must be a whole number/);
    rejectsConfig(() => parseS3Url('s3://b?create_only=maybe', {}), /createOnly/);
    rejectsConfig(() => parseS3Url('s3://b?endpoint=ftp://h', {}), /endpoint: expected an http/);
    rejectsConfig(() => parseS3Url('s3://b?endpoint=not a url', {}), /endpoint/);
  });

  test('bad URLs: scheme, bucket, credentials, prefix', () => {
    rejectsConfig(() => parseS3Url('http://b/p', {}), /expected s3:\/\//);
    rejectsConfig(() => parseS3Url('s3://', {}), /bucket name/);
    rejectsConfig(() => parseS3Url('s3://bad bucket/', {}), /bucket name/);
    rejectsConfig(() => parseS3Url('s3://key:secret@b/p', {}), /credentials do not belong/);
    rejectsConfig(() => parseS3Url('s3://b/a//../c', {}), /prefix/);
    rejectsConfig(() => parseS3Url('s3://b/%zz', {}), /percent-encoding/);
    // Credentials never reach the message.
    assert.throws(
      () => parseS3Url('s3://b?endpoint=http://AKIA:TOPSECRET@h', {}),
      (err: unknown) => err instanceof ValidationError && !err.message.includes('TOPSECRET'),
    );
  });

  test('credentials, region and endpoint from the environment', () => {
    const env = {
      AWS_ACCESS_KEY_ID: 'test:tester',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_SESSION_TOKEN: 'tok',
      AWS_REGION: 'us-west-2',
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9000',
    };
    assert.deepEqual(parseS3Url('s3://b', env), {
      bucket: 'b',
      region: 'us-west-2',
      endpoint: 'http://127.0.0.1:9000',
      credentials: { accessKeyId: 'test:tester', secretAccessKey: 'testing', sessionToken: 'tok' },
    });
    // The URL wins over the environment; AWS_ENDPOINT_URL_S3 over AWS_ENDPOINT_URL.
    const opts = parseS3Url('s3://b?region=eu-central-1', {
      AWS_DEFAULT_REGION: 'ap-south-1',
      AWS_ENDPOINT_URL_S3: 'http://s3.local',
      AWS_ENDPOINT_URL: 'http://other.local',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: '',
    });
    assert.equal(opts.region, 'eu-central-1');
    assert.equal(opts.endpoint, 'http://s3.local');
    assert.deepEqual(opts.credentials, { accessKeyId: 'id', secretAccessKey: 'secret' });
    assert.equal(parseS3Url('s3://b', { AWS_DEFAULT_REGION: 'ap-south-1' }).region, 'ap-south-1');
    // No variables: the SDK's default chain decides later.
    assert.equal(parseS3Url('s3://b', {}).credentials, undefined);
    rejectsConfig(() => parseS3Url('s3://b', { AWS_ACCESS_KEY_ID: 'id' }), /AWS_SECRET_ACCESS_KEY is missing/);
    rejectsConfig(() => parseS3Url('s3://b', { AWS_SECRET_ACCESS_KEY: 'secret' }), /AWS_ACCESS_KEY_ID is missing/);
  });

  test('property: random text parses or throws only ValidationError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `s3://${s}`), fc.webUrl().map((u) => u.replace(/^https?/, 's3'))), (text) => {
        try {
          const opts = parseS3Url(text, {});
          resolveS3Options(opts);
        } catch (err) {
          assert.ok(err instanceof ValidationError, `${JSON.stringify(text)} threw ${String(err)}`);
        }
      }),
      { seed: 0x53, numRuns: 2000 },
    );
  });

  test('property: a URL built from options parses back to them', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{2,20}$/);
    fc.assert(
      fc.property(
        name,
        fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), { maxLength: 3 }),
        fc.option(fc.constantFrom('http://127.0.0.1:8080', 'https://s3.example.com'), { nil: undefined }),
        fc.option(fc.constantFrom('us-east-1', 'eu-west-1'), { nil: undefined }),
        fc.option(fc.boolean(), { nil: undefined }),
        fc.option(fc.integer({ min: 5, max: 64 }), { nil: undefined }),
        (bucket, parts, endpoint, region, pathStyle, partMiB) => {
          const q = new URLSearchParams();
          if (endpoint !== undefined) q.set('endpoint', endpoint);
          if (region !== undefined) q.set('region', region);
          if (pathStyle !== undefined) q.set('path_style', String(pathStyle));
          if (partMiB !== undefined) q.set('part_size', `${partMiB}m`);
          const path = parts.length === 0 ? '' : `/${parts.join('/')}`;
          const query = q.toString();
          const r = resolveS3Options(parseS3Url(`s3://${bucket}${path}${query === '' ? '' : `?${query}`}`, {}));
          const expected: Partial<S3StoreOptions> = {
            bucket,
            prefix: parts.length === 0 ? '' : `${parts.join('/')}/`,
            region: region ?? 'us-east-1',
            forcePathStyle: pathStyle ?? endpoint !== undefined,
            partSize: (partMiB ?? 8) * 1024 * 1024,
          };
          assert.deepEqual({ bucket: r.bucket, prefix: r.prefix, region: r.region, forcePathStyle: r.forcePathStyle, partSize: r.partSize }, expected);
          assert.equal(r.endpoint, endpoint);
        },
      ),
      { seed: 0x533, numRuns: 500 },
    );
  });
});

describe('resolveS3Options', () => {
  test('defaults and limits', () => {
    const r = resolveS3Options({ bucket: 'b' });
    assert.equal(r.concurrency, 64);
    assert.equal(r.partConcurrency, 4);
    assert.equal(r.maxAttempts, 4);
    assert.equal(r.createOnly, 'probe');
    rejectsConfig(() => resolveS3Options({ bucket: 'b', partSize: 4 * 1024 * 1024 }), /partSize/);
    rejectsConfig(() => resolveS3Options({ bucket: 'b', maxAttempts: 0 }), /maxAttempts/);
    rejectsConfig(() => resolveS3Options({ bucket: '' }), /bucket/);
    rejectsConfig(() => resolveS3Options({ bucket: 'b', credentials: { accessKeyId: 'a', secretAccessKey: '' } }), /credentials\.secretAccessKey/);
    rejectsConfig(() => resolveS3Options({ bucket: 'b', colour: 'blue' } as unknown as S3StoreOptions), /colour|options/);
  });

  test('messages never hold the secret', () => {
    assert.throws(
      () => resolveS3Options({ bucket: 'b', credentials: { accessKeyId: 'a', secretAccessKey: 'TOPSECRET', sessionToken: 7 } } as unknown as S3StoreOptions),
      (err: unknown) => err instanceof ValidationError && !err.message.includes('TOPSECRET'),
    );
  });
});
