/**
 * Points a scenario suite at a remote object store: sets STOWAGE_STORE and STOWAGE_META in this
 * test process's environment, which every server and CLI run it starts inherits (the flag
 * `--data` those add is then only the fs default that the store URL overrides). Refs go to the
 * shared etcd cluster under a fresh prefix, since neither Swift nor s3api has atomic
 * create-only writes. Returns a skip reason when the services are absent outside CI.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { requireEtcd, requireSwift, uniqueName } from '../infra/services.js';

/** Which remote store a suite runs on. */
export type RemoteStore = 'swift' | 's3';

function etcdUrl(endpoints: readonly string[], prefix: string): string {
  return `etcd://${endpoints.map((e) => new URL(e).host).join(',')}/${prefix}`;
}

/** Sets the environment for `kind`; resolves with a skip reason or undefined when ready. */
export async function useRemoteStore(kind: RemoteStore, what: string): Promise<string | undefined> {
  const swift = requireSwift(what);
  const etcd = requireEtcd(what);
  if (swift === undefined || etcd === undefined) return 'the shared Swift AIO or etcd cluster is not running';
  const name = uniqueName(`e2e-${kind}`);
  process.env['STOWAGE_META'] = etcdUrl(etcd.endpoints, name);
  if (kind === 'swift') {
    const q = new URLSearchParams({ auth_url: swift.authUrl, auth_ver: '1', username: swift.user, password: swift.key });
    process.env['STOWAGE_STORE'] = `swift://${name}/repos-under-prefix?${q.toString()}`;
    return undefined;
  }
  const client = new S3Client({
    endpoint: swift.s3Endpoint,
    region: swift.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.s3AccessKey, secretAccessKey: swift.s3SecretKey },
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  process.env['AWS_ACCESS_KEY_ID'] = swift.s3AccessKey;
  process.env['AWS_SECRET_ACCESS_KEY'] = swift.s3SecretKey;
  const q = new URLSearchParams({ endpoint: swift.s3Endpoint, region: swift.s3Region });
  process.env['STOWAGE_STORE'] = `s3://${name}/stowage?${q.toString()}`;
  return undefined;
}
