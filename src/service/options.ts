/** Settings and collaborators the services share, passed down from the composition root. */
import type { FsckConfig } from '../git/fsck/config.js';
import type { Limits } from '../core/limits.js';

/** A minimal logger, pino-compatible (fields first, then the message). */
export interface ServiceLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** upload-pack settings (git's uploadpack.*). */
export interface UploadPackConfig {
  /** uploadpack.allowTipSHA1InWant: advertise allow-tip-sha1-in-want. */
  readonly allowTipSha1InWant: boolean;
  /** uploadpack.allowReachableSHA1InWant: wants reachable from a ref are served. */
  readonly allowReachableSha1InWant: boolean;
}

/** What receive.denyDeleteCurrent may say. */
export type DenyAction = 'refuse' | 'warn' | 'ignore';

/** receive-pack settings (git's receive.*), git's defaults in DEFAULT_RECEIVE_PACK_CONFIG. */
export interface ReceivePackConfig {
  /** receive.denyNonFastForwards: refuse updates of refs/heads/* that are not fast-forwards. */
  readonly denyNonFastForwards: boolean;
  /** receive.denyDeletes: refuse deleting refs/heads/*. */
  readonly denyDeletes: boolean;
  /** receive.denyDeleteCurrent: what to do when the branch HEAD points at is deleted. */
  readonly denyDeleteCurrent: DenyAction;
}

/** git's defaults. */
export const DEFAULT_UPLOAD_PACK_CONFIG: UploadPackConfig = { allowTipSha1InWant: true, allowReachableSha1InWant: true };

/** git's defaults: non-fast-forwards allowed (the client refuses them without '+'), deleting HEAD's branch refused. */
export const DEFAULT_RECEIVE_PACK_CONFIG: ReceivePackConfig = {
  denyNonFastForwards: false,
  denyDeletes: false,
  denyDeleteCurrent: 'refuse',
};

/** Everything a service run needs besides the request and the repository. */
export interface ServiceSettings {
  /** The agent string advertised (`agent=`), e.g. "stowage/0.1.0". */
  readonly agent: string;
  readonly limits: Limits;
  /** Server-wide fsck severities; a repository's settings.fsck override them. */
  readonly fsck: FsckConfig;
  readonly upload: UploadPackConfig;
  readonly receive: ReceivePackConfig;
  readonly logger?: ServiceLogger;
}
