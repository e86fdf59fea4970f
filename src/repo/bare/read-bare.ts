/**
 * Reads a bare Git repository on local disk for `stowage repo import`: HEAD, refs (loose
 * refs under refs/ and packed-refs with their peeled lines), packs with their .idx, and loose
 * objects. Not followed or not supported, each refused with a clear message: alternates
 * (objects/info/alternates), shallow repositories, partial clones (promisor packs),
 * repositories in the sha256 object format, and reftable ref storage.
 */
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '../../core/errors.js';
import { isObjectId, type ObjectId } from '../../git/hash/object-id.js';
import { PackIndex } from '../../git/pack/idx.js';
import { decodePackHeader, PACK_HEADER_LENGTH } from '../../git/pack/scanner.js';
import { refNameProblem } from '../../git/refname/check.js';
import { readHead } from './loose.js';

/** A direct ref of the bare repository. */
export interface BareRef {
  readonly name: string;
  readonly oid: ObjectId;
  /** From packed-refs' `^` line, when the ref is an annotated tag there. */
  readonly peeled?: ObjectId;
}

/** A ref the import leaves out. */
export interface SkippedRef {
  readonly name: string;
  readonly reason: string;
}

/** A pack file and its index. */
export interface BarePack {
  readonly packPath: string;
  readonly idxPath: string;
  /** Bytes of the .pack file. */
  readonly size: number;
  readonly objectCount: number;
  readonly index: PackIndex;
}

/** A loose object file (objects/xx/yyyy…). */
export interface BareLooseObject {
  readonly oid: ObjectId;
  readonly path: string;
}

/** What readBareRepository found. */
export interface BareRepository {
  readonly path: string;
  /** The ref HEAD names (`refs/heads/main`), or undefined when HEAD is detached. */
  readonly head: string | undefined;
  /** HEAD's object id when detached (not importable: Stowage's HEAD is always a symref). */
  readonly detachedHead: ObjectId | undefined;
  /** Direct refs sorted by name (loose refs win over packed-refs, as git reads them). */
  readonly refs: readonly BareRef[];
  /**
   * Refs not imported, with the reason: symbolic refs under refs/ (e.g. refs/remotes/origin/HEAD;
   * Stowage stores none) and loose ref files with invalid names (git ignores those too).
   */
  readonly skippedRefs: readonly SkippedRef[];
  readonly packs: readonly BarePack[];
  /** Loose objects not also in a pack. */
  readonly looseObjects: readonly BareLooseObject[];
}

function notGit(path: string, why: string): ValidationError {
  return new ValidationError('ARG_INVALID', `${path} is not a bare git repository: ${why}`);
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() === true;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads and validates a bare repository; throws ValidationError('ARG_INVALID') with the reason. */
export async function readBareRepository(path: string): Promise<BareRepository> {
  if (!(await isDir(path))) throw notGit(path, 'no such directory');
  if (!(await isDir(join(path, 'objects'))) || !(await isDir(join(path, 'refs')))) {
    throw notGit(path, 'it has no objects/ and refs/ directories (for a repository with a work tree, give its .git directory)');
  }
  const headText = await readText(join(path, 'HEAD'));
  if (headText === undefined) throw notGit(path, 'it has no HEAD file');
  const head = readHead(headText);
  if (head === undefined) throw notGit(path, `HEAD holds neither "ref: refs/…" nor an object id`);
  const config = (await readText(join(path, 'config'))) ?? '';
  if (/^\s*objectformat\s*=\s*sha256\s*$/im.test(config)) {
    throw new ValidationError('ARG_INVALID', `${path} uses the sha256 object format; Stowage stores sha1 repositories only`);
  }
  if (/^\s*refstorage\s*=\s*reftable\s*$/im.test(config)) {
    throw new ValidationError('ARG_INVALID', `${path} keeps its refs in the reftable format; convert it with \`git refs migrate --ref-format=files\` first`);
  }
  const alternates = (await readText(join(path, 'objects', 'info', 'alternates')))?.trim() ?? '';
  if (alternates !== '') {
    throw new ValidationError(
      'ARG_INVALID',
      `${path} borrows objects from other repositories (objects/info/alternates), which import does not follow; run \`git repack -a -d\` there and remove the alternates file first`,
    );
  }
  if (((await readText(join(path, 'shallow')))?.trim() ?? '') !== '') {
    throw new ValidationError('ARG_INVALID', `${path} is a shallow clone; its history is incomplete (run \`git fetch --unshallow\` first)`);
  }
  const packs = await readPacks(path);
  const refs = await readRefs(path);
  const looseObjects = await readLooseObjectList(path, packs);
  return {
    path,
    head: head.kind === 'symref' ? head.target : undefined,
    detachedHead: head.kind === 'oid' ? head.oid : undefined,
    refs: refs.refs,
    skippedRefs: refs.skipped,
    packs,
    looseObjects,
  };
}

async function readPacks(path: string): Promise<BarePack[]> {
  const dir = join(path, 'objects', 'pack');
  const names = (await isDir(dir)) ? (await readdir(dir)).sort() : [];
  if (names.some((n) => n.endsWith('.promisor'))) {
    throw new ValidationError('ARG_INVALID', `${path} is a partial clone (it has promisor packs); objects are missing from it`);
  }
  const packs: BarePack[] = [];
  for (const name of names) {
    if (!/^pack-[0-9a-f]+\.pack$/.test(name)) continue;
    const packPath = join(dir, name);
    const idxPath = join(dir, name.replace(/\.pack$/, '.idx'));
    const idxBytes = await readFile(idxPath).catch(() => undefined);
    // A pack without its idx is one git itself ignores (an interrupted fetch or repack).
    if (idxBytes === undefined) continue;
    const size = (await stat(packPath)).size;
    const index = PackIndex.decode(idxBytes, size);
    const header = await readHeader(packPath);
    const { objectCount } = decodePackHeader(header);
    if (objectCount !== index.count) {
      throw new ValidationError('ARG_INVALID', `${packPath} says it holds ${objectCount} objects but its idx lists ${index.count}`);
    }
    packs.push({ packPath, idxPath, size, objectCount, index });
  }
  return packs;
}

async function readHeader(packPath: string): Promise<Uint8Array> {
  const fh = await open(packPath, 'r');
  try {
    const buf = Buffer.alloc(PACK_HEADER_LENGTH);
    await fh.read(buf, 0, PACK_HEADER_LENGTH, 0);
    return buf;
  } finally {
    await fh.close();
  }
}

async function readRefs(path: string): Promise<{ refs: BareRef[]; skipped: SkippedRef[] }> {
  const byName = new Map<string, BareRef>();
  const packed = await readText(join(path, 'packed-refs'));
  if (packed !== undefined) {
    let last: BareRef | undefined;
    for (const line of packed.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      if (line.startsWith('^')) {
        const peeled = line.slice(1).trim();
        if (last === undefined || !isObjectId(peeled)) throw badPacked(path, line);
        last = { ...last, peeled };
        byName.set(last.name, last);
        continue;
      }
      const sp = line.indexOf(' ');
      const oid = line.slice(0, sp);
      const name = line.slice(sp + 1).trimEnd();
      if (sp !== 40 || !isObjectId(oid)) throw badPacked(path, line);
      checkName(path, name);
      last = { name, oid };
      byName.set(name, last);
    }
  }
  const skipped: SkippedRef[] = [];
  await walkLooseRefs(path, 'refs', byName, skipped);
  const refs = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { refs, skipped: skipped.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

function badPacked(path: string, line: string): ValidationError {
  return new ValidationError('ARG_INVALID', `${path}/packed-refs has a malformed line: ${JSON.stringify(line.slice(0, 120))}`);
}

function checkName(path: string, name: string): void {
  const problem = refNameProblem(name);
  if (problem !== undefined) throw new ValidationError('ARG_INVALID', `${path} has a ref ${JSON.stringify(name.slice(0, 200))} with an invalid name: ${problem}`);
}

async function walkLooseRefs(root: string, rel: string, byName: Map<string, BareRef>, skipped: SkippedRef[]): Promise<void> {
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries) {
    const name = `${rel}/${e.name}`;
    if (e.isDirectory()) {
      await walkLooseRefs(root, name, byName, skipped);
      continue;
    }
    // Lock files of an interrupted git update are not refs.
    if (!e.isFile() || e.name.endsWith('.lock')) continue;
    const text = (await readFile(join(root, name), 'utf8')).trim();
    const h = readHead(text);
    if (h === undefined) throw new ValidationError('ARG_INVALID', `${root}/${name} holds neither an object id nor "ref: …"`);
    if (h.kind === 'symref') {
      skipped.push({ name, reason: `a symbolic ref (to ${h.target}); only HEAD may be symbolic` });
      byName.delete(name);
      continue;
    }
    const problem = refNameProblem(name);
    if (problem !== undefined) {
      skipped.push({ name, reason: `an invalid ref name: ${problem}` });
      continue;
    }
    // A loose ref overrides a packed one; its peeled value is unknown here (import peels itself).
    byName.set(name, { name, oid: h.oid });
  }
}

async function readLooseObjectList(path: string, packs: readonly BarePack[]): Promise<BareLooseObject[]> {
  const out: BareLooseObject[] = [];
  const objects = join(path, 'objects');
  for (const dir of (await readdir(objects)).sort()) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    for (const file of (await readdir(join(objects, dir))).sort()) {
      const oid = `${dir}${file}`;
      if (!isObjectId(oid)) continue;
      if (packs.some((p) => p.index.has(oid))) continue;
      out.push({ oid, path: join(objects, dir, file) });
    }
  }
  return out;
}
