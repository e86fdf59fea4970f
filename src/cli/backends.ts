/**
 * Choosing and opening the concrete object store and meta store from the configuration, as
 * restic and rclone users expect: a store URL (`fs:///DIR`, `s3://BUCKET/PREFIX?…`,
 * `swift://CONTAINER/PREFIX?…`), or `--swift-config FILE`, or the data directory; and
 * `--meta etcd://H:P,H:P/PREFIX` or refs in the object store. Only cli/ builds backends.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { StowageConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { parseEtcdUrl, type EtcdOptions } from '../meta/etcd/etcd-options.js';
import type { MetaStore } from '../meta/meta-store.js';
import { StoreMetaStore } from '../meta/store/store-meta.js';
import { FsStore } from '../storage/fs/fs-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { parseS3Url, type S3StoreOptions } from '../storage/s3/s3-options.js';
import { readSwiftConfigIni, readSwiftUrl, type SwiftSettings } from '../storage/swift/swift-options.js';

/** Which object store the configuration selects, with its settings (no connection yet). */
export type StoreSpec =
  | { readonly kind: 'fs'; readonly root: string }
  | { readonly kind: 's3'; readonly options: S3StoreOptions }
  | { readonly kind: 'swift'; readonly settings: SwiftSettings };

/** Where refs and the catalog live. */
export type MetaSpec = { readonly kind: 'store' } | { readonly kind: 'etcd'; readonly options: EtcdOptions };

function schemeOf(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `fs:///abs/dir` or `fs://rel/dir` (relative to the working directory) to a directory. */
function fsRoot(url: string): string {
  const path = decodeURIComponent(url.slice('fs://'.length).replace(/[?#].*$/, ''));
  if (path === '') throw new ValidationError('CONFIG_INVALID', `store URL ${JSON.stringify(url)} names no directory: use fs:///var/lib/stowage`);
  return resolve(path);
}

/** The S3 options: the `s3` config section, overridden by the URL's own settings. */
function s3Options(url: string, config: StowageConfig, env: NodeJS.ProcessEnv): S3StoreOptions {
  const fromUrl = parseS3Url(url, env);
  const s = config.s3;
  const credentials =
    s.accessKeyId !== undefined && s.secretAccessKey !== undefined
      ? { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey, ...(s.sessionToken === undefined ? {} : { sessionToken: s.sessionToken }) }
      : undefined;
  if ((s.accessKeyId === undefined) !== (s.secretAccessKey === undefined)) {
    throw new ValidationError('CONFIG_INVALID', 'config keys s3.access_key_id and s3.secret_access_key go together: set both or neither');
  }
  const fromSection = withoutUndefined({
    endpoint: s.endpoint,
    region: s.region,
    prefix: s.prefix,
    forcePathStyle: s.pathStyle,
    credentials,
  });
  return { ...fromSection, ...withoutUndefined(fromUrl) } as S3StoreOptions;
}

/** Reads the configuration's choice of object store. Throws ValidationError on a bad URL. */
export async function storeSpec(config: StowageConfig, env: NodeJS.ProcessEnv): Promise<StoreSpec> {
  const url = config.store;
  const swiftFile = config.swiftConfig;
  if (url === undefined && swiftFile === undefined) return { kind: 'fs', root: resolve(config.data) };
  const scheme = url === undefined ? 'swift' : schemeOf(url);
  if (swiftFile !== undefined && scheme !== 'swift') {
    throw new ValidationError('CONFIG_INVALID', `--swift-config selects the Swift store, but the store URL ${JSON.stringify(url)} selects another: give one of them`);
  }
  switch (scheme) {
    case 'fs':
      return { kind: 'fs', root: fsRoot(url as string) };
    case 's3':
      return { kind: 's3', options: s3Options(url as string, config, env) };
    case 'swift': {
      let fromFile: SwiftSettings = {};
      if (swiftFile !== undefined) {
        let text: string;
        try {
          text = await readFile(swiftFile, 'utf8');
        } catch (err) {
          throw new ValidationError('CONFIG_INVALID', `cannot read Swift config file ${swiftFile}: ${(err as Error).message}`, { cause: err });
        }
        fromFile = readSwiftConfigIni(text, swiftFile);
      }
      const fromSection = withoutUndefined(config.swift) as SwiftSettings;
      const fromUrl = url === undefined ? {} : readSwiftUrl(url);
      return { kind: 'swift', settings: { ...fromFile, ...fromSection, ...withoutUndefined(fromUrl) } };
    }
    default:
      throw new ValidationError(
        'CONFIG_INVALID',
        `unknown store URL ${JSON.stringify(url)}: expected fs:///DIR, s3://BUCKET/PREFIX?endpoint=… or swift://CONTAINER/PREFIX?auth_url=…`,
      );
  }
}

/** Reads the configuration's choice of meta store. */
export function metaSpec(config: StowageConfig, env: NodeJS.ProcessEnv): MetaSpec {
  const meta = config.meta;
  if (meta === 'store') return { kind: 'store' };
  if (schemeOf(meta) === 'etcd') return { kind: 'etcd', options: parseEtcdUrl(meta, env) };
  throw new ValidationError('CONFIG_INVALID', `unknown meta store ${JSON.stringify(meta)}: expected "store" or etcd://HOST:PORT,HOST:PORT/PREFIX`);
}

/**
 * Builds the object store (no I/O yet for fs; remote stores connect lazily). The S3 and Swift
 * clients are loaded only when chosen: each adds 20 MiB or more to a process that never uses it.
 */
export async function openObjectStore(spec: StoreSpec): Promise<ObjectStore> {
  switch (spec.kind) {
    case 'fs':
      return new FsStore({ root: spec.root });
    case 's3': {
      const { S3Store } = await import('../storage/s3/s3-store.js');
      return new S3Store(spec.options);
    }
    case 'swift': {
      const { SwiftStore } = await import('../storage/swift/swift-store.js');
      return new SwiftStore(spec.settings);
    }
  }
}

/**
 * Builds the meta store. Refs kept in the object store need atomic create-only writes: the fs
 * store has them; an S3 store has them only if it honours If-None-Match (probed here); native
 * Swift answers If-None-Match but lets concurrent creators all win, so refs on Swift need etcd.
 */
export async function openMetaStore(spec: MetaSpec, storeKind: StoreSpec['kind'], store: ObjectStore): Promise<MetaStore> {
  if (spec.kind === 'etcd') {
    // Loaded only when chosen, like the remote object stores.
    const { EtcdMetaStore } = await import('../meta/etcd/etcd-meta.js');
    return EtcdMetaStore.open(spec.options);
  }
  if (storeKind === 'swift') {
    throw new ValidationError(
      'CONFIG_INVALID',
      "refs cannot be kept in Swift: its create-only writes (If-None-Match: *) are not atomic when writers race, so pushes could be lost; keep refs in etcd with --meta etcd://HOST:PORT/PREFIX",
    );
  }
  const s3 = storeKind === 's3' ? (await import('../storage/s3/s3-store.js')).S3Store : undefined;
  if (s3 !== undefined && store instanceof s3 && !(await store.probeCreateOnly())) {
    throw new ValidationError(
      'CONFIG_INVALID',
      `refs cannot be kept in ${store.description}: it does not honour create-only writes (If-None-Match: *); keep refs in etcd with --meta etcd://HOST:PORT/PREFIX`,
    );
  }
  return new StoreMetaStore({ store });
}
