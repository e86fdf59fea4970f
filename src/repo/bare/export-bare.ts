/**
 * `stowage repo export`: writes a bare Git repository holding every ref of a repository and
 * one pack (with its idx) of every object reachable from them. The pack comes from
 * packObjects, as a clone would get it, and is indexed here by hashing each object (so the
 * idx is computed from the bytes written, not trusted).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { indexPack } from '../ingest/index-pack.js';
import { SpoolFile } from '../ingest/spool.js';
import type { ProgressFn, Repository } from '../repository.js';

/** Options of exportBareRepository. */
export interface ExportOptions {
  readonly onProgress?: ProgressFn;
  readonly signal?: AbortSignal;
}

/** What an export wrote. */
export interface ExportResult {
  readonly refs: number;
  readonly objects: number;
  /** Name of the pack written (`pack-<hex>`), absent when there are no objects. */
  readonly pack?: string;
}

/** What git init writes as config for a bare repository (sha1, format version 0). */
const CONFIG = '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n';
/** packed-refs header: every annotated tag ref has its ^ line, and names are sorted. */
const PACKED_REFS_HEADER = '# pack-refs with: peeled fully-peeled sorted \n';

/**
 * Creates a bare repository at `path`, which must not exist or be an empty directory
 * (ValidationError('ARG_INVALID') otherwise). On failure what was written is removed.
 */
export async function exportBareRepository(repo: Repository, path: string, opts: ExportOptions = {}): Promise<ExportResult> {
  const existing = await stat(path).catch(() => undefined);
  if (existing !== undefined && (!existing.isDirectory() || (await readdir(path)).length > 0)) {
    throw new ValidationError('ARG_INVALID', `${path} already exists and is not an empty directory; export writes a new repository`);
  }
  await mkdir(path, { recursive: true });
  try {
    return await writeRepository(repo, path, opts);
  } catch (err) {
    if (existing === undefined) await rm(path, { recursive: true, force: true }).catch(() => undefined);
    else await clearDir(path);
    throw err;
  }
}

async function clearDir(path: string): Promise<void> {
  for (const name of await readdir(path).catch(() => [])) await rm(join(path, name), { recursive: true, force: true }).catch(() => undefined);
}

async function writeRepository(repo: Repository, path: string, opts: ExportOptions): Promise<ExportResult> {
  const { signal } = opts;
  const state = await repo.readState();
  const packDir = join(path, 'objects', 'pack');
  for (const dir of ['refs/heads', 'refs/tags', 'objects/info', 'objects/pack', 'info']) await mkdir(join(path, dir), { recursive: true });
  await writeFile(join(path, 'config'), CONFIG);
  await writeFile(join(path, 'description'), 'Exported by stowage.\n');

  const refs = [...state.refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const tips = [...new Set(refs.map(([, v]) => v.oid as ObjectId))];
  let pack: string | undefined;
  let objects = 0;
  if (tips.length > 0) {
    const progress = opts.onProgress === undefined ? {} : { onProgress: opts.onProgress };
    const signalOpt = signal === undefined ? {} : { signal };
    const { objects: list, hints } = await repo.enumerateObjects({ wants: tips, haves: [], ...signalOpt, ...progress });
    const tmpName = `tmp_pack_${randomBytes(6).toString('hex')}`;
    const spool = await SpoolFile.createAt(join(packDir, tmpName));
    try {
      const indexed = await indexPack(repo.packObjects(list, { thin: false, ofsDelta: true, ...(hints === undefined ? {} : { hints }), ...signalOpt, ...progress }), spool, {
        ...signalOpt,
        ...progress,
        accelerator: false,
      });
      await spool.close({ sync: true });
      if (indexed.objectCount !== list.length || indexed.checksum === undefined || indexed.idx === undefined) {
        throw new ValidationError('REPO_CORRUPT', `the pack written has ${indexed.objectCount} objects, but ${list.length} were asked for`);
      }
      const missing = list.find((oid) => !indexed.byOid.has(oid));
      if (missing !== undefined) throw new ValidationError('REPO_CORRUPT', `object ${missing} is missing from the pack written`);
      pack = `pack-${indexed.checksum}`;
      const tmpIdx = join(packDir, `tmp_idx_${randomBytes(6).toString('hex')}`);
      await writeFile(tmpIdx, indexed.idx);
      // Pack first, then idx, as git does: a reader that sees the idx finds the pack.
      await rename(spool.path, join(packDir, `${pack}.pack`));
      await rename(tmpIdx, join(packDir, `${pack}.idx`));
      objects = indexed.objectCount;
    } catch (err) {
      await spool.remove();
      throw err;
    }
  }

  let packed = PACKED_REFS_HEADER;
  for (const [name, value] of refs) {
    signal?.throwIfAborted();
    const oid = value.oid as ObjectId;
    const peeled = value.peeled ?? (await repo.peel(oid));
    packed += `${oid} ${name}\n`;
    if (peeled !== oid) packed += `^${peeled}\n`;
  }
  await writeFile(join(path, 'packed-refs'), packed);
  await writeFile(join(path, 'HEAD'), `ref: ${state.head}\n`);
  return { refs: refs.length, objects, ...(pack === undefined ? {} : { pack }) };
}
