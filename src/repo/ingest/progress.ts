/** Rate-limited progress reporting: at most one call per interval, plus the final one. */
import type { ProgressFn } from '../repository.js';

/** Minimum time between two progress calls of one phase. */
const PROGRESS_INTERVAL_MS = 100;

/** Reports `phase` progress through `fn`, dropping calls that come too soon after the last. */
export class ProgressThrottle {
  #last = -Infinity;

  constructor(
    private readonly fn: ProgressFn | undefined,
    private readonly phase: string,
    private total: number | undefined,
  ) {}

  /** Changes the total (e.g. when thin bases join the pack). */
  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Reports `done` if the interval has passed. */
  tick(done: number): void {
    if (this.fn === undefined) return;
    const now = performance.now();
    if (now - this.#last < PROGRESS_INTERVAL_MS) return;
    this.#last = now;
    this.fn(this.phase, done, this.total);
  }

  /** Reports `done` unconditionally (the end of the phase). */
  done(done: number): void {
    this.fn?.(this.phase, done, this.total);
  }
}
