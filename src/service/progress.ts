/**
 * Turns ProgressFn calls into the text git's progress.c prints, so a client shows
 * "remote: Counting objects: 100% (12/12), done." as it would from git: updates end in CR,
 * the last line of a phase ends in ", done." and LF.
 */
import type { ProgressFn } from '../repo/repository.js';

/** Formats one progress line (without its end) as git's display(). */
export function formatProgress(phase: string, done: number, total: number | undefined): string {
  if (total === undefined || total <= 0) return `${phase}: ${done}`;
  const pct = Math.min(100, Math.floor((done * 100) / total));
  return `${phase}: ${String(pct).padStart(3, ' ')}% (${done}/${total})`;
}

/** Collects progress of successive phases and emits git-style text through `emit`. */
export class ProgressText {
  private phase: string | undefined;
  private lastLine = '';
  private readonly seen = new Set<string>();

  constructor(private readonly emit: (text: string) => void) {}

  /** The ProgressFn to hand to the repository. */
  readonly fn: ProgressFn = (phase, done, total) => this.update(phase, done, total);

  /** True if `phase` has been reported. */
  hasSeen(phase: string): boolean {
    return this.seen.has(phase);
  }

  /** Reports a phase's state; a new phase ends the previous one with ", done.". */
  update(phase: string, done: number, total: number | undefined): void {
    // git shows no progress for an empty phase (e.g. no deltas to resolve).
    if (total === 0) return;
    if (this.phase !== undefined && this.phase !== phase) this.finish();
    this.phase = phase;
    this.seen.add(phase);
    const line = formatProgress(phase, done, total);
    if (total !== undefined && total > 0 && done >= total) {
      this.emit(`${line}, done.\n`);
      this.phase = undefined;
      this.lastLine = '';
      return;
    }
    if (line === this.lastLine) return;
    this.lastLine = line;
    this.emit(`${line}\r`);
  }

  /** Ends the open phase, if any, repeating its last line with ", done.". */
  finish(): void {
    if (this.phase === undefined) return;
    this.emit(`${this.lastLine}, done.\n`);
    this.phase = undefined;
    this.lastLine = '';
  }

  /** Emits one whole line (a phase of its own, such as the "Total" summary). */
  line(text: string): void {
    this.finish();
    this.emit(`${text}\n`);
  }
}
