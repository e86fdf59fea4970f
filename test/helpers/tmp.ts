/**
 * Temporary directories for tests and benchmarks. Every directory made here is removed when the
 * process exits (even after a failed test), unless STOWAGE_KEEP_TMP=1 is set for debugging.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();
let hooked = false;

function removeAllSync(): void {
  if (process.env['STOWAGE_KEEP_TMP'] === '1') return;
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', removeAllSync);
}

/** Makes a fresh directory under the OS temp dir, removed at process exit at the latest. */
export async function makeTempDir(prefix = 'stowage-test-'): Promise<string> {
  hookExit();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Synchronous makeTempDir, for module-level set-up. */
export function makeTempDirSync(prefix = 'stowage-test-'): string {
  hookExit();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir now. */
export async function removeTempDir(dir: string): Promise<void> {
  made.delete(dir);
  if (process.env['STOWAGE_KEEP_TMP'] === '1') return;
  await rm(dir, { recursive: true, force: true });
}

/** Runs fn with a fresh temp dir and removes it afterwards, whatever fn does. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix?: string): Promise<T> {
  const dir = await makeTempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await removeTempDir(dir);
  }
}
