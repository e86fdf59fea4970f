/**
 * Test support (not a test): a repository with real history built by `git fast-import`
 * (merges, an octopus, renames, deletes, binary and executable files, a symlink, a gitlink,
 * clock skew, lightweight/annotated/nested tags, tags of a tree and of a blob), stored as
 * two packs the way our repositories hold them: pack A (`git pack-objects`, ofs-deltas) has
 * the early history, pack B is a thin pack of the rest completed by `git index-pack
 * --fix-thin` (ref-deltas to appended bases, objects present in both packs). The bare
 * `oracle` repository holds the same packs and refs, for real git to answer questions.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectId } from '../../../git/hash/object-id.js';
import type { MetaStore, PackRecord, RepoRecord } from '../../../meta/meta-store.js';
import type { ObjectStore } from '../../../storage/object-store.js';
import { idxKey, packKey } from '../../keys.js';
import { mulberry32 as prng } from '../../../core/prng.js';

/** Runs git in `cwd`; resolves stdout (as a Buffer); rejects with stderr on failure. */
export function git(cwd: string, args: readonly string[], input?: Uint8Array | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      ['-c', 'user.name=Fixture', '-c', 'user.email=fixture@example.com', '-c', 'protocol.file.allow=always', ...args],
      { cwd, encoding: 'buffer', maxBuffer: 1 << 30, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`git ${args.join(' ')} failed: ${String(stderr)}`, { cause: err }));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** git's stdout as trimmed lines. */
export async function gitLines(cwd: string, args: readonly string[], input?: string): Promise<string[]> {
  const out = (await git(cwd, args, input)).toString('utf8').trim();
  return out === '' ? [] : out.split('\n');
}

/** One stored pack of the fixture. */
export interface FixturePack {
  readonly name: string;
  readonly pack: Uint8Array;
  readonly idx: Uint8Array;
}

/** The fixture: temp dir, oracle repo, packs (newest first) and refs. */
export interface GitFixture {
  readonly root: string;
  /** Bare repository with the same packs and refs. */
  readonly oracle: string;
  readonly packs: readonly FixturePack[];
  /** Full ref name -> oid (and peeled oid for annotated tags). */
  readonly refs: ReadonlyMap<string, { oid: ObjectId; peeled?: ObjectId }>;
  readonly head: string;
  /** The commit that ends pack A's history. */
  readonly splitCommit: ObjectId;
  cleanup(): Promise<void>;
}


/** Builds the fast-import stream of the fixture history. */
function historyStream(commits: number, seed: number): Buffer {
  const rnd = prng(seed);
  const parts: Buffer[] = [];
  const w = (s: string | Buffer): void => {
    parts.push(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);
  };
  const files = new Map<string, string[]>();
  const dirs = ['src/core', 'src/net/http', 'docs', 'lib', 'test/unit'];
  for (let i = 0; i < 24; i++) {
    const lines = Array.from({ length: 60 + (i % 7) * 10 }, (_, l) => `file ${i} line ${l} ${'abcdefgh'.repeat(1 + ((l * 3 + i) % 6))}`);
    files.set(`${dirs[i % dirs.length]}/f${i}.txt`, lines);
  }
  let binary: Buffer = Buffer.alloc(6000);
  for (let i = 0; i < binary.length; i++) binary[i] = Math.floor(rnd() * 256);
  let mark = 0;
  let time = 1_600_000_000;
  const ident = (who: string, t: number): string => `${who} <${who.toLowerCase()}@example.com> ${t} +0000\n`;
  const data = (body: string | Buffer): void => {
    const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    w(`data ${b.length}\n`);
    w(b);
    w('\n');
  };
  const changeSome = (count: number): string[] => {
    const names = [...files.keys()];
    const ops: string[] = [];
    for (let k = 0; k < count; k++) {
      const name = names[Math.floor(rnd() * names.length)]!;
      const lines = files.get(name)!;
      const at = Math.floor(rnd() * lines.length);
      if (rnd() < 0.3) lines.splice(at, 0, `inserted ${mark} ${rnd().toString(36)}`);
      else lines[at] = `changed ${mark} ${rnd().toString(36)}`;
      ops.push(name);
    }
    return [...new Set(ops)];
  };
  const commit = (ref: string, msg: string, from: number | undefined, merges: number[], body: () => void): number => {
    const m = ++mark;
    time += 600 + Math.floor(rnd() * 3000);
    // Clock skew: now and then a commit claims to be older than its parent.
    const t = m % 97 === 0 ? time - 50_000 : time;
    w(`commit ${ref}\nmark :${m}\n`);
    w(`author ${ident('Author', t - 30)}committer ${ident('Committer', t)}`);
    data(msg);
    if (from !== undefined) w(`from :${from}\n`);
    for (const p of merges) w(`merge :${p}\n`);
    body();
    w('\n');
    return m;
  };
  const modify = (name: string): void => {
    const content = files.get(name)!.join('\n') + '\n';
    w(`M 100644 inline ${name}\n`);
    data(content);
  };

  let main: number | undefined;
  let n = 0;
  let renames = 0;
  // Root commit with everything.
  main = commit('refs/heads/main', 'initial import\n', undefined, [], () => {
    for (const name of files.keys()) modify(name);
    w('M 100755 inline bin/run.sh\n');
    data('#!/bin/sh\necho run\n');
    w('M 120000 inline link-to-docs\n');
    data('docs');
    w('M 100644 inline assets/blob.bin\n');
    data(binary);
  });
  n++;
  const tags: string[] = [];
  while (n < commits) {
    if (n % 23 === 0) {
      // A feature branch of a few commits, merged back (an octopus every third time).
      const base = main;
      let feature = base;
      const extra: number[] = [];
      const len = 2 + Math.floor(rnd() * 4);
      for (let k = 0; k < len && n < commits; k++, n++) {
        const changed = changeSome(2);
        feature = commit(`refs/heads/feature-${n}`, `feature work ${n}\n`, feature, [], () => changed.forEach(modify));
      }
      if (n % 3 === 0 && n < commits) {
        const changed = changeSome(1);
        extra.push(commit(`refs/heads/topic-${n}`, `topic ${n}\n`, base, [], () => changed.forEach(modify)));
        n++;
      }
      const changed = changeSome(1);
      main = commit('refs/heads/main', `merge feature ${n}\n`, main, [feature!, ...extra], () => changed.forEach(modify));
      n++;
      continue;
    }
    const changed = changeSome(1 + Math.floor(rnd() * 3));
    main = commit('refs/heads/main', `commit ${n}\n\nbody of ${n}\n`, main, [], () => {
      changed.forEach(modify);
      if (n % 31 === 0) {
        const names = [...files.keys()];
        const old = names[Math.floor(rnd() * names.length)]!;
        const neu = `moved/r${renames++}-${old.split('/').pop()}`;
        files.set(neu, files.get(old)!);
        files.delete(old);
        w(`R ${old} ${neu}\n`);
      }
      if (n % 41 === 0) {
        const names = [...files.keys()];
        const gone = names[Math.floor(rnd() * names.length)]!;
        files.delete(gone);
        w(`D ${gone}\n`);
      }
      if (n % 17 === 0) {
        const b = Buffer.from(binary);
        for (let k = 0; k < 8; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        binary = b;
        w('M 100644 inline assets/blob.bin\n');
        data(binary);
      }
      if (n === 50) w(`M 160000 ${'1234567890abcdef1234567890abcdef12345678'} vendor/sub\n`);
    });
    if (n % 40 === 0) {
      const t = `v0.${n / 40}`;
      w(`tag ${t}\nfrom :${main}\ntagger ${ident('Tagger', time)}`);
      data(`release ${t}\n`);
      tags.push(t);
    }
    if (n % 55 === 0) w(`reset refs/tags/light-${n}\nfrom :${main}\n\n`);
    n++;
  }
  // An unmerged side branch from an older main commit.
  const side = commit('refs/heads/side', 'side work\n', Math.max(2, mark - 40), [], () => changeSome(2).forEach(modify));
  commit('refs/heads/side', 'more side work\n', side, [], () => changeSome(1).forEach(modify));
  return Buffer.concat(parts);
}

/** Builds the fixture (a few seconds for a few hundred commits). */
export async function buildFixture(opts: { commits?: number; seed?: number } = {}): Promise<GitFixture> {
  const root = await mkdtemp(join(tmpdir(), 'stowage-repo-fixture-'));
  const src = join(root, 'src.git');
  const oracle = join(root, 'oracle.git');
  await git(root, ['init', '-q', '--bare', '-b', 'main', src]);
  await git(src, ['fast-import', '--quiet'], historyStream(opts.commits ?? 300, opts.seed ?? 7));
  // Nested tag, and tags of a tree and of a blob.
  await git(src, ['tag', '-a', '-m', 'outer', 'v-outer', 'v0.1']);
  await git(src, ['tag', '-a', '-m', 'a tree', 'tree-tag', 'main^{tree}']);
  await git(src, ['tag', '-a', '-m', 'a blob', 'blob-tag', 'main:docs/f2.txt']);
  const firstParent = await gitLines(src, ['rev-list', '--first-parent', 'main']);
  const splitCommit = firstParent[Math.floor(firstParent.length * 0.45)]! as ObjectId;

  await git(root, ['init', '-q', '--bare', '-b', 'main', oracle]);
  const packDir = join(oracle, 'objects', 'pack');
  const aName = (await git(src, ['pack-objects', '--revs', '--delta-base-offset', '-q', join(packDir, 'pack')], `${splitCommit}\n`))
    .toString()
    .trim();
  const thin = await git(src, ['pack-objects', '--revs', '--all', '--thin', '--stdout', '--delta-base-offset', '-q'], `^${splitCommit}\n`);
  const bOut = (await git(oracle, ['index-pack', '--stdin', '--fix-thin'], thin)).toString().trim();
  const bName = bOut.split(/\s+/).pop()!;
  await git(src, ['pack-refs', '--all']);
  await copyFile(join(src, 'packed-refs'), join(oracle, 'packed-refs'));
  await git(oracle, ['fsck', '--no-dangling', '--connectivity-only']);

  const packs: FixturePack[] = [];
  for (const name of [`pack-${bName}`, `pack-${aName}`]) {
    packs.push({
      name,
      pack: await readFile(join(packDir, `${name}.pack`)),
      idx: await readFile(join(packDir, `${name}.idx`)),
    });
  }
  const refs = new Map<string, { oid: ObjectId; peeled?: ObjectId }>();
  for (const line of await gitLines(oracle, ['show-ref', '-d'])) {
    const [oid, name] = line.split(' ') as [ObjectId, string];
    if (name.endsWith('^{}')) {
      const base = name.slice(0, -3);
      refs.set(base, { oid: refs.get(base)!.oid, peeled: oid });
    } else {
      refs.set(name, { oid });
    }
  }
  return {
    root,
    oracle,
    packs,
    refs,
    head: 'refs/heads/main',
    splitCommit,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** Writes the fixture's packs (pack, then idx) under `repoId`; returns records, newest first. */
export async function storePacks(store: ObjectStore, repoId: string, packs: readonly FixturePack[]): Promise<PackRecord[]> {
  const records: PackRecord[] = [];
  for (const p of packs) {
    await store.put(packKey(repoId, p.name), p.pack);
    await store.put(idxKey(repoId, p.name), p.idx);
    const count = new DataView(p.pack.buffer, p.pack.byteOffset, 12).getUint32(8);
    records.push({ name: p.name, size: p.pack.byteLength, objects: count, createdMs: 0, source: 'import' });
  }
  return records;
}

/** Creates `name` in the catalog, stores the packs and publishes them with the refs. */
export async function publishFixture(
  store: ObjectStore,
  meta: MetaStore,
  fixture: GitFixture,
  name: string,
): Promise<RepoRecord> {
  const record = await meta.createRepo({ name, head: fixture.head });
  const packs = await storePacks(store, record.id, fixture.packs);
  const refs = [...fixture.refs].map(([ref, v]) => ({
    name: ref,
    expected: { kind: 'must-not-exist' as const },
    value: v.peeled === undefined ? { oid: v.oid } : { oid: v.oid, peeled: v.peeled },
  }));
  // addPacks is newest first, like RepoState.packs.
  const res = await meta.transact(record.id, { refs, addPacks: packs });
  if (!res.ok) throw new Error(`publishing the fixture failed: ${JSON.stringify(res.conflicts)}`);
  return record;
}

/** Every object of the oracle: oid, type, size (git cat-file --batch-all-objects). */
export async function allObjects(oracle: string): Promise<{ oid: ObjectId; type: string; size: number }[]> {
  const lines = await gitLines(oracle, ['cat-file', '--batch-all-objects', '--batch-check']);
  return lines.map((l) => {
    const [oid, type, size] = l.split(' ');
    return { oid: oid as ObjectId, type: type!, size: Number(size) };
  });
}
