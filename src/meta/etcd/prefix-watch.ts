/**
 * One etcd watch on the deployment's prefix, feeding in-process caches.
 *
 * A cache read at revision R is kept current by this watch only if every event after R is
 * still to come: the watch is live, was (re)created at or before R, and has not yet
 * delivered anything after R (`tracks(R)`). Each disconnect or cancellation starts a new
 * epoch: caches of older epochs no longer receive events (a resumed stream may have skipped
 * some) and are only used as snapshots checked against etcd.
 */
import type { IEvent, IWatchResponse, Watcher } from 'etcd3';
import { StoreError } from '../../core/errors.js';
import type { EtcdConnection } from './etcd-connection.js';
import { prefixEnd } from './etcd-connection.js';

/** Pause before re-creating a watch that etcd cancelled (e.g. after compaction). */
const RECREATE_DELAY_MS = 250;

/** Receives each revision batch of events, in order. */
export type WatchListener = (events: readonly IEvent[]) => void;

/** The prefix watch (see the header). */
export class PrefixWatch {
  /** Bumped whenever events may have been missed. */
  epoch = 0;
  /** Whether the watch stream is confirmed (created and not disconnected since). */
  live = false;
  /** Revision at which the current stream was created: it delivers every event after it. */
  private startRevision = Number.MAX_SAFE_INTEGER;
  /** Highest revision of any event delivered in this epoch. */
  private lastEventRevision = 0;
  private watcher: Watcher | undefined;
  private closed = false;
  private recreateTimer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly conn: EtcdConnection,
    private readonly onEvents: WatchListener,
  ) {}

  /** Starts watching; resolves once etcd confirmed the watch, or throws STORE_IO after `timeoutMs`. */
  async start(timeoutMs: number): Promise<void> {
    this.create();
    if (await this.waitFor(() => this.live, timeoutMs)) return;
    throw new StoreError(
      'STORE_IO',
      `etcd: cannot start a watch on ${this.conn.prefix}: no confirmation within ${timeoutMs} ms (endpoints: ${this.conn.endpointList})`,
    );
  }

  /** Whether a cache read at `revision` will receive every later event (see the header). */
  tracks(revision: number): boolean {
    return this.live && revision >= this.startRevision && this.lastEventRevision <= revision;
  }

  /** Waits until `done()` holds (checked after each event batch and state change), or `ms` pass. */
  waitFor(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done() && !this.closed) return;
        finish(true);
      };
      const finish = (ok: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok && done());
      };
      const timer = setTimeout(() => finish(false), ms);
      this.waiters.add(check);
    });
  }

  /** Stops watching; pending waits resolve false. */
  async close(): Promise<void> {
    this.closed = true;
    this.live = false;
    clearTimeout(this.recreateTimer);
    this.notify();
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher !== undefined) {
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      // Cancelling waits for etcd's answer; the client is closed right after anyway.
      await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
  }

  private create(): void {
    if (this.closed) return;
    const key = Buffer.from(this.conn.prefix);
    const watcher = this.conn.client.watch().inRange({ start: key, end: prefixEnd(key) }).watcher();
    this.watcher = watcher;
    watcher.on('connected', (res: IWatchResponse) => {
      if (this.watcher !== watcher) return;
      this.reset();
      this.startRevision = Number(res.header.revision);
      this.live = true;
      this.notify();
    });
    watcher.on('disconnected', () => {
      if (this.watcher !== watcher) return;
      this.reset();
      this.notify();
    });
    watcher.on('error', () => {
      // etcd cancelled the watch (e.g. its revision was compacted): start a fresh one.
      if (this.watcher !== watcher) return;
      this.reset();
      this.watcher = undefined;
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      void watcher.cancel().catch(() => undefined);
      this.recreateTimer = setTimeout(() => this.create(), RECREATE_DELAY_MS);
      this.notify();
    });
    watcher.on('data', (res: IWatchResponse) => {
      if (this.watcher !== watcher || !this.live) return;
      for (const ev of res.events) this.lastEventRevision = Math.max(this.lastEventRevision, Number(ev.kv.mod_revision));
      if (res.events.length > 0) this.onEvents(res.events);
      this.notify();
    });
  }

  /** Starts a new epoch: nothing delivered so far may be relied on for later events. */
  private reset(): void {
    this.live = false;
    this.epoch += 1;
    this.startRevision = Number.MAX_SAFE_INTEGER;
    this.lastEventRevision = 0;
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}
