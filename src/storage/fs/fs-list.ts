/**
 * Lazy, sorted listing of the fs ObjectStore's directory tree. One directory is read (and
 * sorted) at a time, so memory is bounded by the widest directory on the current path, never
 * by the size of the store.
 */
import type { Dirent } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ObjectInfo } from '../object-store.js';
import { errnoCode, ioError } from './fs-io.js';

/** A name the key grammar allows as one component (see key.ts). */
const COMPONENT_RE = /^[A-Za-z0-9._-]+$/;
/** Files of one directory stat'ed concurrently. */
const STAT_BATCH = 32;

interface Item {
  readonly name: string;
  readonly dir: boolean;
  /** The name as it sorts inside full keys: folders sort as `name/`. */
  readonly sortKey: string;
}

/** What to walk: the root, names to skip at the top, the key window. */
export interface WalkOptions {
  readonly root: string;
  /** Names ignored in the root folder (the temp folder). */
  readonly reservedTop: ReadonlySet<string>;
  readonly startAfter: string | undefined;
  readonly signal: AbortSignal | undefined;
}

/** Lists the objects whose key starts with `prefix`, in ascending byte order of the key. */
export function walkPrefix(prefix: string, opts: WalkOptions): AsyncGenerator<ObjectInfo> {
  const slash = prefix.lastIndexOf('/');
  const dirKey = slash < 0 ? '' : prefix.slice(0, slash + 1);
  return walkDir(dirKey, prefix.slice(slash + 1), opts);
}

async function readItems(dirKey: string, namePrefix: string, opts: WalkOptions): Promise<Item[]> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(path.join(opts.root, dirKey), { withFileTypes: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw ioError('list', dirKey, err);
  }
  const items: Item[] = [];
  for (const entry of entries) {
    const name = entry.name;
    if (!name.startsWith(namePrefix) || !COMPONENT_RE.test(name) || name === '.' || name === '..') continue;
    if (dirKey === '' && opts.reservedTop.has(name)) continue;
    let dir = entry.isDirectory();
    let file = entry.isFile();
    if (!dir && !file && !entry.isSymbolicLink()) {
      // Some file systems do not report the type in readdir.
      const st = await fsp.lstat(path.join(opts.root, dirKey, name)).catch(() => undefined);
      dir = st?.isDirectory() ?? false;
      file = st?.isFile() ?? false;
    }
    if (dir || file) items.push({ name, dir, sortKey: dir ? `${name}/` : name });
  }
  // Names are ASCII, so UTF-16 order is byte order; a folder `a` sorts as `a/`.
  items.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
  return items;
}

/** Whether some key starting with `keyPrefix` may be greater than `after`. */
function mayHaveAfter(keyPrefix: string, after: string | undefined): boolean {
  if (after === undefined || keyPrefix > after || after.startsWith(keyPrefix)) return true;
  // keyPrefix < after and not a prefix of it: every extension of keyPrefix sorts before after.
  return false;
}

async function statFile(full: string, key: string): Promise<ObjectInfo | undefined> {
  try {
    const st = await fsp.stat(full);
    return st.isFile() ? { key, size: st.size, mtimeMs: st.mtimeMs } : undefined;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined; // deleted meanwhile
    throw ioError('list', key, err);
  }
}

async function* walkDir(dirKey: string, namePrefix: string, opts: WalkOptions): AsyncGenerator<ObjectInfo> {
  opts.signal?.throwIfAborted();
  const items = await readItems(dirKey, namePrefix, opts);
  let i = 0;
  while (i < items.length) {
    const item = items[i];
    if (item === undefined) break;
    if (item.dir) {
      i += 1;
      const sub = `${dirKey}${item.name}/`;
      if (mayHaveAfter(sub, opts.startAfter)) yield* walkDir(sub, '', opts);
      continue;
    }
    // A run of files: stat them in a bounded batch, yield in order.
    const batch: Item[] = [];
    while (i < items.length && batch.length < STAT_BATCH) {
      const next = items[i];
      if (next === undefined || next.dir) break;
      i += 1;
      const key = `${dirKey}${next.name}`;
      if (opts.startAfter === undefined || key > opts.startAfter) batch.push(next);
    }
    const infos = await Promise.all(
      batch.map((it) => statFile(path.join(opts.root, dirKey, it.name), `${dirKey}${it.name}`)),
    );
    for (const info of infos) {
      if (info !== undefined) yield info;
    }
    opts.signal?.throwIfAborted();
  }
}
