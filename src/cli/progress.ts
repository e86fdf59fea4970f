/**
 * Progress for long CLI commands (import, export): a cli-progress bar on stderr when it is a
 * terminal, plain `phase: done/total` lines otherwise (at most one per second per phase, plus
 * the last), so logs of scripted runs stay readable.
 */
import { SingleBar } from 'cli-progress';
import type { CliOutput } from './io.js';

/** Progress callback: a phase name, done, total (undefined when unknown). */
export type ProgressFn = (phase: string, done: number, total: number | undefined) => void;

export interface ProgressReporter {
  readonly onProgress: ProgressFn;
  /** Ends the current phase (draws its final state). */
  finish(): void;
}

const LINE_INTERVAL_MS = 1000;

/** A reporter suited to `out`: a bar on a TTY, lines otherwise. */
export function createProgress(out: CliOutput): ProgressReporter {
  return out.isTTY === true ? barProgress(out) : lineProgress(out);
}

function lineProgress(out: CliOutput): ProgressReporter {
  let phase: string | undefined;
  let last = { done: 0, total: undefined as number | undefined };
  let printed = true;
  let lastAt = 0;
  const print = (): void => {
    if (phase === undefined) return;
    out.write(`${phase}: ${last.done}${last.total === undefined ? '' : `/${last.total}`}\n`);
    printed = true;
    lastAt = Date.now();
  };
  return {
    onProgress(p, done, total) {
      if (p !== phase) {
        if (!printed) print();
        phase = p;
        lastAt = 0;
      }
      last = { done, total };
      printed = false;
      if (Date.now() - lastAt >= LINE_INTERVAL_MS || (total !== undefined && done >= total)) print();
    },
    finish() {
      if (!printed) print();
      phase = undefined;
    },
  };
}

function barProgress(out: CliOutput): ProgressReporter {
  let phase: string | undefined;
  let bar: SingleBar | undefined;
  let known = false;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
    phase = undefined;
  };
  return {
    onProgress(p, done, total) {
      if (p !== phase || (total !== undefined) !== known) {
        stop();
        phase = p;
        known = total !== undefined;
        bar = new SingleBar({
          stream: out as NodeJS.WritableStream,
          format: known ? `${p} |{bar}| {percentage}% {value}/{total}` : `${p} {value}`,
          hideCursor: true,
          fps: 10,
        });
        bar.start(total ?? 0, done);
      }
      if (total !== undefined) bar?.setTotal(total);
      bar?.update(done);
    },
    finish: stop,
  };
}
