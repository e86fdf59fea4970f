/**
 * The composition root: the only place that builds concrete backends (the object store and
 * meta store that backends.ts chooses from the configuration, the caches, the repository
 * host), the Git service and the frontends, and passes them down.
 */
import { readFileSync } from 'node:fs';
import type { StowageConfig } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { MetaStore } from '../meta/meta-store.js';
import { createRepoCaches } from '../repo/cache/repo-caches.js';
import { StoredRepositoryHost } from '../repo/host.js';
import { CompactionScheduler } from '../repo/compact/scheduler.js';
import { createGitService } from '../service/dispatch.js';
import type { GitService } from '../service/git-service.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { DeviceProvider } from '../nbd/device/block-device.js';
import type { VolumeRecords } from '../nbd/device/lease-records.js';
import type { EtcdMetaStore } from '../meta/etcd/etcd-meta.js';
import { StoreDeviceProvider, defaultNodeId } from '../nbd/device/store-provider.js';
import { NbdServer } from '../nbd/server/server.js';
import { nbdTlsFromConfig } from '../nbd/server/tls-files.js';
import { GitDaemon } from '../frontends/git-daemon/server.js';
import { SmartHttpServer } from '../frontends/smart-http/server.js';
import { metaSpec, openMetaStore, openObjectStore, storeSpec } from './backends.js';

/** The backends of one process. */
export interface Backends {
  readonly host: StoredRepositoryHost;
  /** The object store everything lives in (NBD volumes too). */
  readonly store: ObjectStore;
  readonly meta: MetaStore;
  /** NBD lease records and volume name claims in etcd, when refs live there (else in the object store). */
  readonly volumeRecords?: VolumeRecords;
  /** Closes the meta store (and anything else holding resources). */
  close(): Promise<void>;
}

/** The running servers of `stowage serve`. */
export interface Frontends {
  readonly gitDaemon?: GitDaemon;
  readonly http?: SmartHttpServer;
  readonly nbd?: NbdServer;
}

/** Slack above limits.packSizeMax for the ref commands and push options in a push body. */
const PUSH_COMMANDS_SLACK = 64 * 1024 * 1024;

/** `stowage/<version>`, for the agent capability. */
export function stowageAgent(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return `stowage/${typeof pkg.version === 'string' ? pkg.version : 'dev'}`;
  } catch {
    return 'stowage/dev';
  }
}

/** What only a long-running server wants of its backends. */
export interface BackendOptions {
  /** Compacts packs in the background after pushes (config compact.auto); failures go to this logger. */
  readonly autoCompact?: Logger;
}

/** Builds the store, meta store, caches and repository host from the configuration. */
export async function openBackends(config: StowageConfig, env: NodeJS.ProcessEnv = process.env, opts: BackendOptions = {}): Promise<Backends> {
  const spec = await storeSpec(config, env);
  const metaChoice = metaSpec(config, env);
  const store = await openObjectStore(spec);
  let meta: MetaStore;
  let volumeRecords: VolumeRecords | undefined;
  try {
    meta = await openMetaStore(metaChoice, spec.kind, store);
  } catch (err) {
    await store.close();
    throw err;
  }
  if (metaChoice.kind === 'etcd') {
    const { EtcdNbdRecords } = await import('../meta/etcd/nbd-records.js');
    volumeRecords = new EtcdNbdRecords((meta as EtcdMetaStore).connection);
  }
  const caches = createRepoCaches({
    blockCacheMb: config.cache.blockMb,
    indexCacheMb: config.cache.indexMb,
    objectCacheMb: config.cache.objectMb,
    accelCacheMb: config.cache.accelMb,
    cloneCacheMb: config.cache.cloneMb,
    bitmapCacheMb: config.cache.bitmapMb,
  });
  const logger = opts.autoCompact;
  const compactor =
    logger !== undefined && config.compact.auto
      ? new CompactionScheduler({
          policy: { minPacks: config.compact.minPacks },
          onError: (repo, err) => logger.warn({ err, repo }, 'background compaction failed'),
        })
      : undefined;
  const host = new StoredRepositoryHost({
    store,
    meta,
    caches,
    clock: Date.now,
    ...(compactor === undefined ? {} : { compactor, autoCompact: { graceMs: config.compact.graceMinutes * 60_000 } }),
  });
  return {
    host,
    store,
    meta,
    ...(volumeRecords === undefined ? {} : { volumeRecords }),
    close: async () => {
      try {
        await compactor?.close();
        await meta.close();
      } finally {
        await store.close();
      }
    },
  };
}

/** The Git service over a host. Push is allowed at the service; git:// gates it itself. */
export function createService(config: StowageConfig, backends: Backends, logger: Logger): GitService {
  return createGitService({
    host: backends.host,
    fsck: config.fsck,
    limits: config.limits,
    // git:// refuses pushes itself unless enabled; HTTP's authorisation hook decides there.
    allowReceivePack: () => true,
    logger,
    agent: stowageAgent(),
    receive: { denyNonFastForwards: config.receive.denyNonFastForwards },
  });
}

/** Builds the enabled frontends (not started). */
export function createFrontends(config: StowageConfig, service: GitService, logger: Logger): Frontends {
  const gitDaemon = config.git.enabled
    ? new GitDaemon({
        service,
        logger: logger.child({ frontend: 'git' }),
        listen: config.git.listen,
        allowPush: config.git.allowPush,
        idleTimeoutMs: config.limits.idleTimeoutMs,
        maxConnections: config.git.maxConnections,
      })
    : undefined;
  const http = config.http.enabled
    ? new SmartHttpServer({
        service,
        logger: logger.child({ frontend: 'http' }),
        listen: config.http.listen,
        receivePack: true,
        receiveBodyMax: config.limits.packSizeMax + PUSH_COMMANDS_SLACK,
        idleTimeoutMs: config.limits.idleTimeoutMs,
        maxConnections: config.http.maxConnections,
      })
    : undefined;
  return { ...(gitDaemon === undefined ? {} : { gitDaemon }), ...(http === undefined ? {} : { http }) };
}

/** Where NBD lease records and volume name claims live: etcd when refs do (atomic create-once), else the object store. */
export function volumeRecordsOf(backends: Backends): VolumeRecords | undefined {
  return backends.volumeRecords;
}

/** The device provider NBD serves: volumes in the object store (nbd/<name>/...). */
export function createDeviceProvider(config: StowageConfig, backends: Backends, logger: Logger): DeviceProvider {
  const records = volumeRecordsOf(backends);
  return new StoreDeviceProvider({
    store: backends.store,
    cacheMb: config.nbd.cacheMb,
    nodeId: defaultNodeId(),
    logger: logger.child({ component: 'nbd-device' }),
    ...(records === undefined ? {} : { records }),
  });
}

/** The NBD server when enabled (not started). */
export function createNbdServer(config: StowageConfig, backends: Backends, logger: Logger): NbdServer | undefined {
  if (!config.nbd.enabled) return undefined;
  const tls = nbdTlsFromConfig(config.nbd);
  return new NbdServer({
    ...(tls === undefined ? {} : { tls }),
    provider: createDeviceProvider(config, backends, logger),
    listen: config.nbd.listen,
    logger: logger.child({ frontend: 'nbd' }),
    maxConnections: config.nbd.maxConnections,
  });
}
