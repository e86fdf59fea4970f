/**
 * Where the benchmark's Stowage keeps its data: the fs store in a data dir, or a remote object
 * store (Swift, or S3 through Swift's s3api) with refs in etcd, as DESIGN.md's remote stores
 * need (neither Swift nor s3api has atomic create-only writes). Remote services are either
 * started here (a Swift all-in-one and a 1-member etcd, both removed at the end) or taken from
 * STOWAGE_TEST_SWIFT / STOWAGE_TEST_ETCD (the test suite's JSON), where each backend gets a
 * fresh container or bucket and etcd prefix that are deleted at the end.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../test/infra/etcd-cluster.js';
import { etcdTestEnv, swiftTestEnv, uniqueName, type EtcdTestEnv, type SwiftTestEnv } from '../../test/infra/services.js';
import { startSwiftAio, type SwiftAio } from '../../test/infra/swift-aio.js';
import { cpuSeconds } from './proc-stats.js';

/** The backends `--backends` knows. */
export const BACKENDS = ['fs', 'swift', 's3'] as const;
/** One of BACKENDS, or `custom` for a store given with --store / STOWAGE_STORE. */
export type BackendName = (typeof BACKENDS)[number] | 'custom';

/** How the CLI and server reach one backend. */
export interface BenchStore {
  readonly name: BackendName;
  /** One line for the report: the store and meta store, without secrets. */
  readonly description: string;
  /** Flags for every `stowage` run (`--store URL --meta URL`; empty: the CLI's own default or env). */
  readonly args: readonly string[];
  /** Environment for every `stowage` run (S3 credentials). */
  readonly env: Readonly<Record<string, string>>;
  /** Removes what this backend wrote (bucket, container, etcd prefix). */
  cleanup(): Promise<void>;
}

/** A Swift AIO and an etcd cluster, started here or shared. */
export class RemoteServices {
  readonly swift: SwiftTestEnv;
  readonly etcd: EtcdTestEnv;
  readonly #owned: { readonly aio: SwiftAio; readonly cluster: EtcdCluster } | undefined;

  private constructor(swift: SwiftTestEnv, etcd: EtcdTestEnv, owned?: { aio: SwiftAio; cluster: EtcdCluster }) {
    this.swift = swift;
    this.etcd = etcd;
    this.#owned = owned;
  }

  /** Whether the services were started by this process (so their CPU can be read). */
  get owned(): boolean {
    return this.#owned !== undefined;
  }

  /** The shared services named by STOWAGE_TEST_SWIFT and STOWAGE_TEST_ETCD. */
  static fromEnv(): RemoteServices {
    const swift = swiftTestEnv();
    const etcd = etcdTestEnv();
    if (swift === undefined || etcd === undefined) {
      throw new Error('--services env needs STOWAGE_TEST_SWIFT and STOWAGE_TEST_ETCD (the JSON the test suite passes); or use --services own');
    }
    return new RemoteServices(swift, etcd);
  }

  /** Starts a Swift AIO and a 1-member etcd on 127.0.0.1. */
  static async start(): Promise<RemoteServices> {
    const aio = await startSwiftAio({ startTimeoutMs: 120_000 });
    try {
      const cluster = await startEtcdCluster({ members: 1, startTimeoutMs: 60_000 });
      return new RemoteServices(aio.env, cluster.env, { aio, cluster });
    } catch (err) {
      await aio.stop();
      throw err;
    }
  }

  /**
   * CPU seconds used so far by the Swift servers and etcd started here (memcached not included),
   * or undefined for shared services, whose processes are not known.
   */
  cpuSeconds(): number | undefined {
    if (this.#owned === undefined) return undefined;
    const marks = [this.#owned.aio.dir, this.#owned.cluster.dir];
    let sum = 0;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${name}/cmdline`, 'latin1');
      } catch {
        continue;
      }
      if (marks.some((m) => cmdline.includes(m))) sum += cpuSeconds(Number(name)) ?? 0;
    }
    return sum;
  }

  /** Stops services started here; shared ones are left running. */
  async stop(): Promise<void> {
    if (this.#owned === undefined) return;
    await Promise.allSettled([this.#owned.aio.stop(), this.#owned.cluster.stop()]);
  }
}

function etcdUrl(endpoints: readonly string[], prefix: string): string {
  return `etcd://${endpoints.map((e) => new URL(e).host).join(',')}/${prefix}/`;
}

async function deleteEtcdPrefix(endpoints: readonly string[], prefix: string): Promise<void> {
  const client = new Etcd3({ hosts: [...endpoints], dialTimeout: 5000 });
  try {
    await client.delete().prefix(`${prefix}/`);
  } finally {
    client.close();
  }
}

/** Deletes a Swift container and every object in it (tempauth v1); an absent container is fine. */
async function swiftDeleteContainer(swift: SwiftTestEnv, container: string): Promise<void> {
  const auth = await fetch(swift.authUrl, { headers: { 'X-Auth-User': swift.user, 'X-Auth-Key': swift.key }, signal: AbortSignal.timeout(10_000) });
  await auth.arrayBuffer();
  const token = auth.headers.get('x-auth-token');
  const storage = auth.headers.get('x-storage-url');
  if (token === null || storage === null) throw new Error(`tempauth answered ${auth.status} without a token`);
  const base = `${storage}/${encodeURIComponent(container)}`;
  const headers = { 'X-Auth-Token': token };
  for (;;) {
    const res = await fetch(`${base}?format=json&limit=1000`, { headers, signal: AbortSignal.timeout(30_000) });
    if (res.status === 404) return;
    const list = res.status === 204 ? [] : ((await res.json()) as Array<{ name: string }>);
    if (list.length === 0) break;
    for (const o of list) {
      const del = await fetch(`${base}/${o.name.split('/').map(encodeURIComponent).join('/')}`, { method: 'DELETE', headers, signal: AbortSignal.timeout(30_000) });
      await del.arrayBuffer();
    }
  }
  const del = await fetch(base, { method: 'DELETE', headers, signal: AbortSignal.timeout(30_000) });
  await del.arrayBuffer();
}

function s3Client(swift: SwiftTestEnv): S3Client {
  // as bin/stowage.js does: no warning about the SDK's future Node 22 requirement
  process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';
  return new S3Client({
    endpoint: swift.s3Endpoint,
    region: swift.s3Region,
    forcePathStyle: true,
    credentials: { accessKeyId: swift.s3AccessKey, secretAccessKey: swift.s3SecretKey },
  });
}

/** Deletes an S3 bucket and every object in it. */
export async function s3DeleteBucket(swift: SwiftTestEnv, bucket: string): Promise<void> {
  const client = s3Client(swift);
  try {
    for (;;) {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, MaxKeys: 1000 }));
      const keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
      if (keys.length === 0) break;
      for (const Key of keys) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** Creates an S3 bucket on the services' s3api endpoint. */
export async function createS3Bucket(swift: SwiftTestEnv, bucket: string): Promise<void> {
  const client = s3Client(swift);
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

/** The fs backend: the data dir, named explicitly so STOWAGE_STORE in the environment cannot redirect it. */
export function fsStore(dataDir: string): BenchStore {
  return {
    name: 'fs',
    description: 'fs store (local disk), refs in the store',
    args: ['--store', `fs://${dataDir}`, '--meta', 'store'],
    env: {},
    cleanup: async () => undefined,
  };
}

/** A store given with --store / --meta (or STOWAGE_STORE / STOWAGE_META); nothing is cleaned up. */
export function customStore(store: string | undefined, meta: string | undefined): BenchStore {
  const args = [...(store === undefined ? [] : ['--store', store]), ...(meta === undefined ? [] : ['--meta', meta])];
  const shown = (store ?? process.env['STOWAGE_STORE'] ?? 'the data dir').replace(/\?.*$/, '');
  return { name: 'custom', description: `${shown}, meta ${(meta ?? process.env['STOWAGE_META'] ?? 'store').replace(/\?.*$/, '')}`, args, env: {}, cleanup: async () => undefined };
}

/** Swift (native API, tempauth v1) or S3 (s3api on the same proxy), refs in etcd under a fresh prefix. */
export async function remoteStore(kind: 'swift' | 's3', services: RemoteServices): Promise<BenchStore> {
  const { swift, etcd } = services;
  const name = uniqueName(`bench-${kind}`);
  const meta = etcdUrl(etcd.endpoints, name);
  const etcdNote = `refs in etcd (${etcd.endpoints.length} member${etcd.endpoints.length === 1 ? '' : 's'})`;
  const dropMeta = (): Promise<void> => deleteEtcdPrefix(etcd.endpoints, name);
  if (kind === 'swift') {
    const q = new URLSearchParams({ auth_url: swift.authUrl, auth_ver: '1', username: swift.user, password: swift.key });
    return {
      name: 'swift',
      description: `Swift AIO (native API, tempauth v1, one proxy), ${etcdNote}`,
      args: ['--store', `swift://${name}/bench?${q.toString()}`, '--meta', meta],
      env: {},
      cleanup: async () => {
        await Promise.allSettled([swiftDeleteContainer(swift, name), swiftDeleteContainer(swift, `${name}+segments`), dropMeta()]);
      },
    };
  }
  await createS3Bucket(swift, name);
  const q = new URLSearchParams({ endpoint: swift.s3Endpoint, region: swift.s3Region });
  return {
    name: 's3',
    description: `S3 (Swift AIO's s3api, path style, one proxy), ${etcdNote}`,
    args: ['--store', `s3://${name}/bench?${q.toString()}`, '--meta', meta],
    env: { AWS_ACCESS_KEY_ID: swift.s3AccessKey, AWS_SECRET_ACCESS_KEY: swift.s3SecretKey },
    cleanup: async () => {
      await Promise.allSettled([s3DeleteBucket(swift, name), dropMeta()]);
    },
  };
}
