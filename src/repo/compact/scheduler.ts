/**
 * Automatic compaction after pushes: at most one compaction per repository at a time in this
 * process (single flight), started in the background when the pack list calls for it
 * (shouldCompact). A push that lands while one runs asks for one more run afterwards, so
 * packs added meanwhile are not left waiting for the next push. Other processes may compact
 * the same repository at the same time; compactRepository makes that harmless.
 */
import type { PackRecord } from '../../meta/meta-store.js';
import { shouldCompact, type AutoCompactPolicy } from './plan.js';

/** Options of a CompactionScheduler. */
export interface CompactionSchedulerOptions {
  readonly policy?: AutoCompactPolicy;
  /** Told about every failed run (the push that started it has already succeeded). */
  readonly onError?: (key: string, err: unknown) => void;
}

/** Runs background compactions, one per repository key at a time. */
export class CompactionScheduler {
  readonly #policy: AutoCompactPolicy;
  readonly #onError: (key: string, err: unknown) => void;
  readonly #running = new Map<string, { promise: Promise<void>; again: (() => Promise<unknown>) | undefined }>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #closed = false;

  constructor(opts: CompactionSchedulerOptions = {}) {
    this.#policy = opts.policy ?? {};
    this.#onError = opts.onError ?? (() => undefined);
  }

  /**
   * After a successful push to the repository `key` whose visible packs are now `packs`:
   * starts `run` in the background if the packs call for a compaction. Returns whether a run
   * was started or queued. Never throws and never waits.
   */
  maybeCompact(key: string, packs: readonly PackRecord[], run: () => Promise<unknown>): boolean {
    if (this.#closed) return false;
    let wanted: boolean;
    try {
      wanted = shouldCompact(packs, this.#policy);
    } catch (err) {
      this.#onError(key, err);
      return false;
    }
    if (!wanted) return false;
    this.#start(key, run);
    return true;
  }

  /**
   * Runs `run` for `key` once after `delayMs` (e.g. a compaction that deletes what an earlier
   * one removed, once its grace has passed, even if no push comes). One timer per key: a later
   * call replaces an earlier one. Timers do not keep the process alive.
   */
  later(key: string, delayMs: number, run: () => Promise<unknown>): void {
    if (this.#closed) return;
    const old = this.#timers.get(key);
    if (old !== undefined) clearTimeout(old);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      if (!this.#closed) this.#start(key, run);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Starts `run` now, or right after the run of `key` in flight. */
  #start(key: string, run: () => Promise<unknown>): void {
    const cur = this.#running.get(key);
    if (cur !== undefined) {
      cur.again = run;
      return;
    }
    const entry: { promise: Promise<void>; again: (() => Promise<unknown>) | undefined } = { promise: Promise.resolve(), again: undefined };
    entry.promise = (async () => {
      let next: (() => Promise<unknown>) | undefined = run;
      while (next !== undefined && !this.#closed) {
        try {
          await next();
        } catch (err) {
          this.#onError(key, err);
        }
        next = entry.again;
        entry.again = undefined;
      }
      this.#running.delete(key);
    })();
    this.#running.set(key, entry);
  }

  /** Whether a compaction of `key` is running in this process. */
  isRunning(key: string): boolean {
    return this.#running.has(key);
  }

  /** Waits until no compaction runs (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running.values()].map((e) => e.promise));
  }

  /** Starts no more runs (queued reruns and timers are dropped) and waits for the running ones. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await this.idle();
  }
}
