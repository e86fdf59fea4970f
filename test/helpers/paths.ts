/** Where the project's files are, found from this compiled file (dist/test/helpers/). */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin'))) return dir;
    const up = resolve(dir, '..');
    if (up === dir) break;
    dir = up;
  }
  // compiled elsewhere (tsc --outDir): the project is where we run from
  if (existsSync(join(process.cwd(), 'package.json'))) return process.cwd();
  throw new Error('cannot find the project root (package.json next to bin/) above the test helpers or in the working directory');
}

/** The project root (holds package.json, bin/, dist/). */
export const PROJECT_ROOT = findRoot();

/**
 * The stowage command line entry point; STOWAGE_E2E_BIN runs the suites against another build
 * of the same command line instead.
 */
export const STOWAGE_BIN = process.env['STOWAGE_E2E_BIN'] ?? join(PROJECT_ROOT, 'bin', 'stowage.js');
