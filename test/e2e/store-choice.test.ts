/**
 * Choosing stores on the command line against the real Swift all-in-one: refs are refused on
 * Swift and on s3api without etcd (with the way out in the message), and the seed's `[swift]`
 * config file drives `repo` commands unchanged.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { cli, cliJson, cliResult } from '../helpers/cli.js';
import { makeTempDir, removeTempDir } from '../helpers/tmp.js';
import { requireEtcd, requireSwift, uniqueName } from '../infra/services.js';

const swift = requireSwift('store choice on the command line');
const etcd = requireEtcd('store choice on the command line');
const skip = swift === undefined || etcd === undefined ? 'the shared Swift AIO or etcd cluster is not running' : undefined;

describe('choosing the object store and meta store', { ...(skip === undefined ? {} : { skip }) }, () => {
  let work: string;
  before(async () => {
    work = await makeTempDir('stowage-store-choice-');
  });
  after(async () => {
    if (work !== undefined) await removeTempDir(work);
  });

  const etcdUrl = (prefix: string): string => `etcd://${(etcd?.endpoints ?? []).map((e) => new URL(e).host).join(',')}/${prefix}`;

  test('refs on Swift without etcd are refused with the way out', async () => {
    const q = new URLSearchParams({ auth_url: swift!.authUrl, auth_ver: '1', username: swift!.user, password: swift!.key });
    const r = await cliResult(['repo', 'list', '--store', `swift://${uniqueName('choice')}?${q.toString()}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^stowage: refs cannot be kept in Swift: .*--meta etcd:\/\//);
  });

  test('refs on an S3 store that ignores If-None-Match are refused after the probe', async () => {
    const bucket = uniqueName('choice');
    const client = new S3Client({
      endpoint: swift!.s3Endpoint,
      region: swift!.s3Region,
      forcePathStyle: true,
      credentials: { accessKeyId: swift!.s3AccessKey, secretAccessKey: swift!.s3SecretKey },
    });
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
    const env = { AWS_ACCESS_KEY_ID: swift!.s3AccessKey, AWS_SECRET_ACCESS_KEY: swift!.s3SecretKey };
    const url = `s3://${bucket}/x?endpoint=${encodeURIComponent(swift!.s3Endpoint)}&region=${swift!.s3Region}`;
    const refused = await cliResult(['repo', 'list', '--store', url], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /does not honour create-only writes .*--meta etcd:\/\//);
    // With etcd it works, and the same store serves repo commands.
    await cli(['repo', 'create', 'on-s3', '--store', url, '--meta', etcdUrl(bucket)], { env });
    const listed = (await cliJson(['repo', 'list', '--json', '--store', url, '--meta', etcdUrl(bucket)], { env })) as Array<{ name: string }>;
    assert.deepEqual(listed.map((r) => r.name), ['on-s3']);
  });

  test("the seed's [swift] file, unchanged in form, drives repo commands", async () => {
    const container = uniqueName('seedconf');
    const conf = join(work, 'swift.conf');
    // The seed's template with this cluster's values (auth v1 instead of Keystone v2).
    await writeFile(
      conf,
      [
        '[swift]',
        '# Authentication URL (Keystone or Swift)',
        `auth_url = ${swift!.authUrl}`,
        '# Authentication version to use',
        'auth_ver = 1',
        '# The tenant and username separated by a semicolon',
        `username = ${swift!.user.replace(':', ';')}`,
        '# The user password',
        `password = ${swift!.key}`,
        'region_name = RegionOne',
        'endpoint_type = internalURL',
        'concurrency = 10',
        'http_pool_length = 10',
        'http_timeout = 20',
        'chunk_length = 12228',
        'cache_length = 20',
        `container = ${container}`,
        '',
      ].join('\n'),
    );
    await cli(['repo', 'create', 'seeded', '--swift-config', conf, '--meta', etcdUrl(container)]);
    const shown = (await cliJson(['repo', 'show', 'seeded', '--json', '--swift-config', conf, '--meta', etcdUrl(container)])) as { name: string };
    assert.equal(shown.name, 'seeded');
  });
});
