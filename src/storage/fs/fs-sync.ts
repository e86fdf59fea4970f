/**
 * The bookkeeping behind the fs store's deferred-durability puts (PutOptions.deferDurability):
 * such a put skips its fsyncs, and records here the file it published and the folder whose
 * entry changed. `sync()` fsyncs every recorded file, then every recorded folder (data before
 * the names that point at it), so afterwards those puts are as durable as plain ones.
 *
 * Group commit: a sync that starts while another runs waits for it and then runs one more
 * round, shared by every caller that arrived meanwhile; a caller arriving with nothing
 * recorded just waits for the running round (its puts were taken by that round's snapshot).
 * A put may hand over its still-open descriptor (at most HELD_MAX are held): the round then
 * fsyncs and closes it, which saves an open and a close per object. Other files are fsynced
 * by path: a file replaced since holds a newer version (synced instead, which supersedes the
 * old one), a file deleted since is skipped (delete syncs its folder). A held descriptor of a
 * file recorded again is closed unsynced: the newer record supersedes it.
 *
 * A failed round leaves its unsynced paths for the next one, except after a write-back error
 * (EIO, ENOSPC, EDQUOT): the kernel may then have dropped the dirty pages and reports the error
 * only once, so a later fsync could succeed without the data. Every later sync then fails with
 * that error (like PostgreSQL after a failed fsync): a caller such as an NBD FLUSH must never
 * be told that lost writes are durable.
 */
import { errnoCode } from './fs-io.js';

/** fsyncs one path; the fs store passes its own helper (tests pass a recorder). */
export type SyncPath = (file: string) => Promise<void>;

/** fsyncs and closes a held descriptor (the fs store passes its own helpers). */
export interface HeldFds {
  sync(d: number): Promise<void>;
  close(d: number): Promise<void>;
}

/** fsyncs run at once by one round. */
const SYNC_PARALLEL = 32;
/** Descriptors held open for a later fsync at most; past it, puts are synced by path. */
export const HELD_MAX = 256;
/** fsync errors after which written data may be lost (see the module doc). */
const LOST_WRITE_CODES: ReadonlySet<string> = new Set(['EIO', 'ENOSPC', 'EDQUOT']);

/** Files and folders awaiting fsync, and the rounds that sync them. */
export class DeferredSyncs {
  /** Files awaiting fsync, each with its held descriptor or -1 (sync by path). */
  private files = new Map<string, number>();
  private dirs = new Set<string>();
  private held = 0;
  /** A write-back error seen by an fsync: every later sync rejects with it. */
  private lost: unknown;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    private readonly syncPath: SyncPath,
    private readonly fds?: HeldFds,
  ) {}

  /** Paths recorded and not yet taken by a round. */
  get pending(): number {
    return this.files.size + this.dirs.size;
  }

  /** Descriptors held for fsync (for tests). */
  get heldFds(): number {
    return this.held;
  }

  /** Whether `record` would take a descriptor now (else the caller closes its own). */
  canHold(): boolean {
    return this.fds !== undefined && this.held < HELD_MAX && this.lost === undefined;
  }

  /**
   * Records a published file and its folder; call before the put resolves. With `fd` (only
   * when canHold() said so), the descriptor is this object's to fsync and close.
   */
  record(file: string, dir: string, fd = -1): void {
    const old = this.files.get(file);
    if (old !== undefined && old >= 0) this.release(old);
    this.files.set(file, fd);
    if (fd >= 0) this.held += 1;
    this.dirs.add(dir);
  }

  private release(d: number): Promise<void> {
    this.held -= 1;
    return this.fds?.close(d) ?? Promise.resolve();
  }

  /** Resolves once everything recorded before this call is durable. */
  sync(): Promise<void> {
    if (this.lost !== undefined) return Promise.reject(this.lost);
    if (this.running === undefined) {
      if (this.pending === 0) return Promise.resolve();
      return this.startRound();
    }
    if (this.pending === 0) return this.running;
    this.queued ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.startRound();
      });
    return this.queued;
  }

  private startRound(): Promise<void> {
    const round = this.round().finally(() => {
      if (this.running === round) this.running = undefined;
    });
    this.running = round;
    return round;
  }

  private async round(): Promise<void> {
    const files = [...this.files];
    const dirs = [...this.dirs];
    this.files = new Map();
    this.dirs = new Set();
    const failed: string[] = [];
    let dirsDone = false;
    try {
      await this.syncAll(files, failed);
      await this.syncAll(
        dirs.map((d) => [d, -1] as const),
        [],
      );
      dirsDone = true;
    } finally {
      // Nothing is lost: the next sync tries again every file this round did not sync (by
      // path: its descriptor is closed) and, unless they all synced, every folder.
      for (const f of failed) if (!this.files.has(f)) this.files.set(f, -1);
      if (!dirsDone) for (const d of dirs) this.dirs.add(d);
    }
  }

  /** Syncs each entry; entries not synced (after the first error) go to `failed`. */
  private async syncAll(entries: readonly (readonly [string, number])[], failed: string[]): Promise<void> {
    let next = 0;
    let error: unknown;
    const worker = async (): Promise<void> => {
      while (next < entries.length) {
        const [p, d] = entries[next++] as readonly [string, number];
        if (error !== undefined) {
          if (d >= 0) await this.release(d);
          failed.push(p);
          continue;
        }
        try {
          if (d >= 0) {
            try {
              await this.fds?.sync(d);
            } finally {
              await this.release(d);
            }
          } else {
            await this.syncPath(p);
          }
        } catch (err) {
          if (errnoCode(err) === 'ENOENT') continue; // deleted since: nothing to make durable
          if (LOST_WRITE_CODES.has(errnoCode(err) ?? '')) this.lost ??= err;
          error ??= err;
          failed.push(p);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(SYNC_PARALLEL, entries.length) }, worker));
    if (error !== undefined) throw error;
  }
}
