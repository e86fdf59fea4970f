/**
 * The bookkeeping behind the fs store's deferred-durability puts (PutOptions.deferDurability):
 * such a put skips its fsyncs, and records here the file it published and the folder whose
 * entry changed. `sync()` fsyncs every recorded file, then every recorded folder (data before
 * the names that point at it), so afterwards those puts are as durable as plain ones.
 *
 * Group commit: a sync that starts while another runs waits for it and then runs one more
 * round, shared by every caller that arrived meanwhile; a caller arriving with nothing
 * recorded just waits for the running round (its puts were taken by that round's snapshot).
 * Files are fsynced by path: a file replaced since holds a newer version (synced instead,
 * which supersedes the old one), a file deleted since is skipped (delete syncs its folder).
 */
import { errnoCode } from './fs-io.js';

/** fsyncs one path; the fs store passes its own helper (tests pass a recorder). */
export type SyncPath = (file: string) => Promise<void>;

/** fsyncs run at once by one round. */
const SYNC_PARALLEL = 32;

/** Files and folders awaiting fsync, and the rounds that sync them. */
export class DeferredSyncs {
  private files = new Set<string>();
  private dirs = new Set<string>();
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private readonly syncPath: SyncPath) {}

  /** Paths recorded and not yet taken by a round. */
  get pending(): number {
    return this.files.size + this.dirs.size;
  }

  /** Records a published file and its folder; call before the put resolves. */
  record(file: string, dir: string): void {
    this.files.add(file);
    this.dirs.add(dir);
  }

  /** Resolves once everything recorded before this call is durable. */
  sync(): Promise<void> {
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
    this.files = new Set();
    this.dirs = new Set();
    try {
      await this.syncAll(files);
      await this.syncAll(dirs);
    } catch (err) {
      // Nothing is lost: the next sync tries every path of this round again.
      for (const f of files) this.files.add(f);
      for (const d of dirs) this.dirs.add(d);
      throw err;
    }
  }

  private async syncAll(paths: readonly string[]): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < paths.length) {
        const p = paths[next++] as string;
        try {
          await this.syncPath(p);
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err; // deleted since: nothing to make durable
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(SYNC_PARALLEL, paths.length) }, worker));
  }
}
