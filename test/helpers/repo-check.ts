/** Compares repositories the way a user would notice: refs, reachable objects, fsck. */
import assert from 'node:assert/strict';
import { git, lines, type ClientProtocol } from './git.js';

/** `refname -> objectname` of every ref under refs/ (for-each-ref). */
export async function refsOf(gitDir: string, prefix = 'refs/'): Promise<Map<string, string>> {
  const out = await git(['--git-dir', gitDir, 'for-each-ref', '--format=%(objectname) %(refname)', prefix]);
  return new Map(lines(out.stdout).map((l) => {
    const [id, name] = l.split(' ');
    return [name ?? '', id ?? ''];
  }));
}

/** Sorted ids of every object reachable from any ref (rev-list --objects --all). */
export async function objectsOf(gitDir: string): Promise<string[]> {
  const out = await git(['--git-dir', gitDir, 'rev-list', '--objects', '--all']);
  return [...new Set(lines(out.stdout).map((l) => l.slice(0, 40)))].sort();
}

/** `git ls-remote` of a URL or path, as `ref -> id` (HEAD and peeled `^{}` entries included). */
export async function lsRemote(urlOrPath: string, protocolVersion: ClientProtocol = 2, extra: readonly string[] = []): Promise<Map<string, string>> {
  const out = await git(['ls-remote', ...extra, urlOrPath], { protocolVersion });
  return new Map(lines(out.stdout).map((l) => {
    const [id, name] = l.split('\t');
    return [name ?? '', id ?? ''];
  }));
}

/** Map as sorted `name id` lines, for readable assertion diffs. */
export function asLines(map: ReadonlyMap<string, string>): string[] {
  return [...map].map(([k, v]) => `${k} ${v}`).sort();
}

/** Asserts `git fsck --strict --full` finds nothing at all (no errors, no warnings). */
export async function assertFsckClean(gitDir: string): Promise<void> {
  const out = await git(['--git-dir', gitDir, 'fsck', '--strict', '--full', '--no-dangling', '--no-progress']);
  const noise = lines(`${out.stdout}\n${out.stderr}`).filter((l) => !/^(Checking|notice: HEAD points to an unborn branch)/.test(l));
  assert.deepEqual(noise, [], `git fsck --strict reported problems in ${gitDir}`);
}

/** Asserts two repositories have equal refs (under prefix) and equal reachable object sets. */
export async function assertSameContent(actualDir: string, expectedDir: string, prefix = 'refs/'): Promise<void> {
  assert.deepEqual(asLines(await refsOf(actualDir, prefix)), asLines(await refsOf(expectedDir, prefix)), 'refs differ');
  const [a, e] = await Promise.all([objectsOf(actualDir), objectsOf(expectedDir)]);
  if (a.length !== e.length || a.some((id, i) => id !== e[i])) {
    const aSet = new Set(a);
    const eSet = new Set(e);
    const missing = e.filter((id) => !aSet.has(id)).slice(0, 10);
    const extra = a.filter((id) => !eSet.has(id)).slice(0, 10);
    assert.fail(`reachable objects differ: ${a.length} vs ${e.length}; missing ${missing.join(',')}; extra ${extra.join(',')}`);
  }
}
