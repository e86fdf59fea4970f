import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { assignmentsFromDocument, assignmentsFromEnv, buildConfig, type ConfigAssignment } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { MemoryStore } from '../storage/memory/memory-store.js';
import { metaSpec, openMetaStore, storeSpec } from './backends.js';

function config(assignments: ConfigAssignment[]) {
  return buildConfig(assignments);
}

const flag = (path: string, value: unknown): ConfigAssignment => ({ path, value, source: `--${path}` });

describe('storeSpec', () => {
  test('the data directory when no store is given; fs:// URLs otherwise', async () => {
    assert.deepEqual(await storeSpec(config([flag('data', 'some/dir')]), {}), { kind: 'fs', root: resolve('some/dir') });
    assert.deepEqual(await storeSpec(config([flag('store', 'fs:///var/lib/stowage')]), {}), { kind: 'fs', root: '/var/lib/stowage' });
    // The store URL wins over the data directory.
    const both = config([flag('data', 'ignored'), flag('store', 'fs:///srv/x')]);
    assert.deepEqual(await storeSpec(both, {}), { kind: 'fs', root: '/srv/x' });
  });

  test('s3 URLs: the s3 config section underneath, the URL on top', async () => {
    const doc = { store: 's3://bucket/pre?endpoint=http://127.0.0.1:9000', s3: { region: 'eu-west-1', access_key_id: 'AK', secret_access_key: 'SK' } };
    const spec = await storeSpec(buildConfig(assignmentsFromDocument(doc, 'stowage.toml')), {});
    assert.equal(spec.kind, 's3');
    if (spec.kind !== 's3') return;
    assert.equal(spec.options.bucket, 'bucket');
    assert.equal(spec.options.endpoint, 'http://127.0.0.1:9000');
    assert.equal(spec.options.region, 'eu-west-1');
    assert.deepEqual(spec.options.credentials, { accessKeyId: 'AK', secretAccessKey: 'SK' });
    const urlRegion = await storeSpec(config([flag('store', 's3://bucket?region=us-west-2'), flag('s3.region', 'eu-west-1')]), {});
    assert.equal(urlRegion.kind === 's3' ? urlRegion.options.region : undefined, 'us-west-2');
    await assert.rejects(storeSpec(config([flag('store', 's3://b'), flag('s3.accessKeyId', 'AK')]), {}), ValidationError);
  });

  test('swift: the seed [swift] file, the swift section and the URL, later winning', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-backends-'));
    try {
      const ini = join(dir, 'swift.conf');
      await writeFile(ini, '[swift]\nauth_url = http://127.0.0.1:5000/v2.0\nauth_ver = 2\nusername = admin;admin\npassword = pass\nregion_name = RegionOne\n');
      const spec = await storeSpec(config([flag('swiftConfig', ini), flag('swift.regionName', 'RegionTwo')]), {});
      assert.equal(spec.kind, 'swift');
      if (spec.kind !== 'swift') return;
      assert.equal(spec.settings.authUrl, 'http://127.0.0.1:5000/v2.0');
      assert.equal(spec.settings.regionName, 'RegionTwo');
      const withUrl = await storeSpec(config([flag('swiftConfig', ini), flag('store', 'swift://box/pre?region_name=RegionThree')]), {});
      assert.equal(withUrl.kind === 'swift' ? withUrl.settings.regionName : undefined, 'RegionThree');
      assert.equal(withUrl.kind === 'swift' ? withUrl.settings.container : undefined, 'box');
      // A Swift file with another kind of store URL is a contradiction, said plainly.
      await assert.rejects(storeSpec(config([flag('swiftConfig', ini), flag('store', 'fs:///x')]), {}), /--swift-config selects the Swift store/);
      await assert.rejects(storeSpec(config([flag('swiftConfig', join(dir, 'missing.conf'))]), {}), /cannot read Swift config file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('unknown schemes and empty fs paths are CONFIG_INVALID with an example', async () => {
    await assert.rejects(storeSpec(config([flag('store', 'ftp://x')]), {}), /expected fs:\/\/\/DIR, s3:\/\//);
    await assert.rejects(storeSpec(config([flag('store', '/plain/path')]), {}), /unknown store URL/);
    await assert.rejects(storeSpec(config([flag('store', 'fs://')]), {}), /names no directory/);
  });

  test('env vars STOWAGE_STORE, STOWAGE_META, STOWAGE_SWIFT_* reach the same keys', async () => {
    const c = buildConfig(assignmentsFromEnv({ STOWAGE_STORE: 'fs:///e', STOWAGE_META: 'etcd://127.0.0.1:2379/p', STOWAGE_SWIFT_AUTH_URL: 'http://a/auth/v1.0' }));
    assert.equal(c.store, 'fs:///e');
    assert.equal(c.meta, 'etcd://127.0.0.1:2379/p');
    assert.equal(c.swift.authUrl, 'http://a/auth/v1.0');
  });
});

describe('meta store choice', () => {
  test('store (default) or etcd URLs; anything else is refused', () => {
    assert.deepEqual(metaSpec(config([]), {}), { kind: 'store' });
    const etcd = metaSpec(config([flag('meta', 'etcd://127.0.0.1:2379,127.0.0.1:22379/stowage')]), {});
    assert.equal(etcd.kind, 'etcd');
    assert.throws(() => metaSpec(config([flag('meta', 'redis://x')]), {}), /expected "store" or etcd:\/\//);
  });

  test('refs in Swift are refused without etcd, with the way out in the message', async () => {
    const store = new MemoryStore();
    await assert.rejects(openMetaStore({ kind: 'store' }, 'swift', store), /keep refs in etcd with --meta etcd:\/\//);
    const meta = await openMetaStore({ kind: 'store' }, 'fs', store);
    await meta.close();
  });
});
