/**
 * Test support (not a test): builds packs with the stock git binary, the oracle for
 * the pack tests, and resolves scanned entries to objects.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import type { ObjectType } from '../object/object-type.js';
import { applyDelta } from './delta.js';
import type { ScannedEntry } from './scanner.js';

const run = promisify(execFile);

/** Runs git in `cwd` with a fixed identity; resolves to stdout. */
export async function git(cwd: string, args: string[], input?: Uint8Array): Promise<string> {
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'Pack Test',
    GIT_AUTHOR_EMAIL: 'pack@test.invalid',
    GIT_COMMITTER_NAME: 'Pack Test',
    GIT_COMMITTER_EMAIL: 'pack@test.invalid',
    GIT_AUTHOR_DATE: '1700000000 +0000',
    GIT_COMMITTER_DATE: '1700000000 +0000',
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: cwd,
  };
  if (input === undefined) {
    const { stdout } = await run('git', args, { cwd, env, maxBuffer: 1 << 30, encoding: 'utf8' });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd, env, maxBuffer: 1 << 30, encoding: 'utf8' }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
    child.stdin!.end(input);
  });
}

/** Runs git with `input` on stdin; resolves to stdout as bytes. */
export async function gitBytes(cwd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', args, { cwd, encoding: 'buffer', maxBuffer: 1 << 30, env: { ...process.env, HOME: cwd } }, (err, stdout) => {
      if (err) reject(err);
      else resolve(stdout);
    });
    child.stdin!.end(input);
  });
}

/** A temp dir removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-pack-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** One line of `git verify-pack -v`. */
export interface VerifyLine {
  readonly oid: ObjectId;
  readonly type: ObjectType;
  /** Entry header size: the object's size, or the delta's for deltas. */
  readonly size: number;
  readonly packedLength: number;
  readonly offset: number;
  readonly depth: number;
  readonly base: ObjectId | undefined;
}

/** Parses `git verify-pack -v` output. */
export function parseVerifyPack(text: string): VerifyLine[] {
  const out: VerifyLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40}) (commit|tree|blob|tag) +(\d+) (\d+) (\d+)(?: (\d+) ([0-9a-f]{40}))?$/.exec(line);
    if (m === null) continue;
    out.push({
      oid: m[1] as ObjectId,
      type: m[2] as ObjectType,
      size: Number(m[3]),
      packedLength: Number(m[4]),
      offset: Number(m[5]),
      depth: m[6] === undefined ? 0 : Number(m[6]),
      base: m[7] as ObjectId | undefined,
    });
  }
  return out;
}

/** A pack built by git: its bytes, git's idx and the verify-pack listing. */
export interface GitPack {
  readonly pack: Uint8Array;
  readonly idx: Uint8Array;
  readonly listing: VerifyLine[];
  /** The same objects as sent by `git pack-objects` without --delta-base-offset (ref-deltas). */
  readonly refDelta: { readonly pack: Uint8Array; readonly listing: VerifyLine[] };
}

/** Runs `git verify-pack -v` on `pack` with OUR `idx` beside it; rejects if git refuses them. */
export async function gitVerifyPack(dir: string, pack: Uint8Array, idx: Uint8Array): Promise<VerifyLine[]> {
  const packPath = join(dir, `ours-${Date.now()}-${Math.random().toString(16).slice(2)}.pack`);
  const idxPath = packPath.replace(/\.pack$/, '.idx');
  await writeFile(packPath, pack);
  await writeFile(idxPath, idx);
  try {
    return parseVerifyPack(await git(dir, ['verify-pack', '-v', idxPath]));
  } finally {
    await rm(packPath, { force: true });
    await rm(idxPath, { force: true });
  }
}

/** Indexes `pack` with `git index-pack` (extra args allowed) in `dir`; returns the idx and listing. */
export async function gitIndexPack(dir: string, pack: Uint8Array, args: string[] = []): Promise<{ idx: Uint8Array; listing: VerifyLine[] }> {
  const packPath = join(dir, `check-${Date.now()}-${Math.random().toString(16).slice(2)}.pack`);
  const idxPath = packPath.replace(/\.pack$/, '.idx');
  await writeFile(packPath, pack);
  try {
    await git(dir, ['index-pack', ...args, '-o', idxPath, packPath]);
    const listing = parseVerifyPack(await git(dir, ['verify-pack', '-v', idxPath]));
    return { idx: await readFile(idxPath), listing };
  } finally {
    await rm(packPath, { force: true });
    await rm(idxPath, { force: true });
  }
}

/**
 * Builds a repository of `commits` commits over `files` similar text files (each commit
 * edits a few lines), repacks it with deltas and returns the pack. Deterministic.
 */
export async function makeGitPack(opts: { files: number; commits: number; lines?: number; depth?: number }): Promise<GitPack> {
  const { dir, cleanup } = await tempDir();
  try {
    await git(dir, ['init', '-q', '-b', 'main']);
    const lines = opts.lines ?? 60;
    let seed = 12345;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const contents: string[][] = [];
    for (let f = 0; f < opts.files; f++) {
      contents.push(Array.from({ length: lines }, (_, i) => `file ${f} line ${i}: ${'x'.repeat(rand() % 40)} ${rand()}`));
    }
    for (let c = 0; c < opts.commits; c++) {
      for (let f = 0; f < opts.files; f++) {
        const text = contents[f]!;
        if (c > 0 && rand() % 3 !== 0) continue;
        for (let k = 0; k < 3; k++) text[rand() % text.length] = `edit ${c} ${rand()}`;
        await writeFile(join(dir, `file-${f}.txt`), text.join('\n') + '\n');
      }
      await git(dir, ['add', '-A']);
      await git(dir, ['commit', '-q', '--allow-empty', '-m', `commit ${c}\n\nbody ${rand()}`]);
      if (c === Math.floor(opts.commits / 2)) await git(dir, ['tag', '-a', '-m', 'a tag', 'v1']);
    }
    await git(dir, ['repack', '-adfq', `--depth=${opts.depth ?? 50}`, '--window=50']);
    const packDir = join(dir, '.git', 'objects', 'pack');
    const names = await readdir(packDir);
    const packName = names.find((n) => n.endsWith('.pack'))!;
    const idxName = packName.replace(/\.pack$/, '.idx');
    const listing = parseVerifyPack(await git(dir, ['verify-pack', '-v', join(packDir, idxName)]));
    const objects = await git(dir, ['rev-list', '--objects', '--all']);
    const refPack = await gitBytes(dir, ['pack-objects', '--stdout', '-q'], Buffer.from(objects));
    const refListing = (await gitIndexPack(dir, refPack)).listing;
    return {
      pack: await readFile(join(packDir, packName)),
      idx: await readFile(join(packDir, idxName)),
      listing,
      refDelta: { pack: refPack, listing: refListing },
    };
  } finally {
    await cleanup();
  }
}

/** A resolved object of a scanned pack. */
export interface ResolvedObject {
  readonly oid: ObjectId;
  readonly type: ObjectType;
  readonly data: Uint8Array;
}

/** Resolves every scanned entry (deltas via applyDelta, bases by offset or id). */
export function resolveEntries(entries: readonly ScannedEntry[]): Map<number, ResolvedObject> {
  const byOffset = new Map<number, ScannedEntry>();
  for (const e of entries) byOffset.set(e.offset, e);
  const done = new Map<number, ResolvedObject>();
  const byId = new Map<ObjectId, ResolvedObject>();
  const visiting = new Set<number>();
  const resolve = (e: ScannedEntry): ResolvedObject => {
    const hit = done.get(e.offset);
    if (hit !== undefined) return hit;
    if (visiting.has(e.offset)) throw new Error(`delta cycle at ${e.offset}`);
    visiting.add(e.offset);
    let obj: ResolvedObject;
    const h = e.header;
    if (h.type === 'ofs-delta' || h.type === 'ref-delta') {
      let base: ResolvedObject | undefined;
      if (h.type === 'ofs-delta') base = resolve(byOffset.get(h.baseOffset!)!);
      else base = byId.get(h.baseId!) ?? resolveById(h.baseId!);
      const data = applyDelta(base.data, e.data);
      obj = { oid: hashObject(base.type, data), type: base.type, data };
    } else {
      obj = { oid: hashObject(h.type, e.data), type: h.type, data: e.data };
    }
    done.set(e.offset, obj);
    byId.set(obj.oid, obj);
    return obj;
  };
  const resolveById = (id: ObjectId): ResolvedObject => {
    for (const e of entries) {
      if (visiting.has(e.offset)) continue;
      const o = resolve(e);
      if (o.oid === id) return o;
    }
    throw new Error(`base ${id} not in pack`);
  };
  for (const e of entries) resolve(e);
  return done;
}
