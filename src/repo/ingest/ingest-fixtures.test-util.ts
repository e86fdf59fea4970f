/**
 * Test support (not a test) for ingest and bare import/export: runs the stock git binary
 * (the oracle), builds packs by hand with PackWriter, and serves objects from a Map.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashObject, type ObjectId } from '../../git/hash/object-id.js';
import type { GitObject, ObjectType } from '../../git/object/object-type.js';
import { deflate } from '../../git/pack/inflate.js';
import { encodePackHeader } from '../../git/pack/scanner.js';
import { PackWriter } from '../../git/pack/writer.js';
import type { ObjectHeader } from '../repository.js';
import type { ObjectSource } from './verify.js';

/** Environment for reproducible git runs. */
export function gitEnv(home: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_AUTHOR_NAME: 'Ingest Test',
    GIT_AUTHOR_EMAIL: 'ingest@test.invalid',
    GIT_COMMITTER_NAME: 'Ingest Test',
    GIT_COMMITTER_EMAIL: 'ingest@test.invalid',
    GIT_AUTHOR_DATE: '1700000000 +0000',
    GIT_COMMITTER_DATE: '1700000000 +0000',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    HOME: home,
  };
}

/** Runs git in `cwd` (optionally with stdin); resolves to stdout bytes, rejects with stderr. */
export function gitRun(cwd: string, args: readonly string[], input?: Uint8Array | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: gitEnv(cwd) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`git ${args.join(' ')} failed (${code}): ${Buffer.concat(err).toString()}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Runs git and returns stdout as text. */
export async function gitText(cwd: string, args: readonly string[], input?: Uint8Array | string): Promise<string> {
  return (await gitRun(cwd, args, input)).toString('utf8');
}

/** Runs git expecting success; resolves to what it printed on stdout and stderr. */
export function gitOutput(cwd: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: gitEnv(cwd), maxBuffer: 1 << 28 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`git ${args.join(' ')} failed: ${String(stderr)}`, { cause: err }));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Runs git expecting failure; resolves to stderr text. */
export function gitFails(cwd: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('git', args, { cwd, env: gitEnv(cwd) }, (err, _stdout, stderr) => {
      if (err) resolve(String(stderr));
      else reject(new Error(`git ${args.join(' ')} unexpectedly succeeded`));
    });
  });
}

/** A temp dir and its cleanup. */
export async function tempDir(prefix = 'stowage-ingest-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Yields `bytes` in pieces of `size` (or the given sizes, cycling). */
export async function* chunked(bytes: Uint8Array, sizes: number | readonly number[]): AsyncGenerator<Uint8Array> {
  const list = typeof sizes === 'number' ? [sizes] : sizes;
  let k = 0;
  for (let p = 0; p < bytes.length; ) {
    const n = Math.max(1, list[k++ % list.length]!);
    yield bytes.subarray(p, p + n);
    p += n;
    await Promise.resolve();
  }
}

/** An ObjectSource over a Map (the "repository" of a test). */
export class MapObjects implements ObjectSource {
  readonly objects = new Map<ObjectId, GitObject>();

  add(type: ObjectType, data: Uint8Array | string): ObjectId {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const oid = hashObject(type, bytes);
    this.objects.set(oid, { type, data: bytes });
    return oid;
  }

  async hasObject(oid: ObjectId): Promise<boolean> {
    return this.objects.has(oid);
  }

  async tryReadObject(oid: ObjectId): Promise<GitObject | undefined> {
    return this.objects.get(oid);
  }

  async tryReadHeader(oid: ObjectId): Promise<ObjectHeader | undefined> {
    const o = this.objects.get(oid);
    return o === undefined ? undefined : { type: o.type, size: o.data.length };
  }
}

/** Loads every object `git rev-list --objects <revs>` lists from a repository into `into`. */
export async function loadObjects(repo: string, revs: readonly string[], into: MapObjects): Promise<void> {
  const list = await gitText(repo, ['rev-list', '--objects', ...revs]);
  const ids = list.split('\n').filter((l) => l.length > 0).map((l) => l.slice(0, 40));
  const out = await gitRun(repo, ['cat-file', '--batch'], ids.join('\n') + '\n');
  let p = 0;
  while (p < out.length) {
    const nl = out.indexOf(0x0a, p);
    const [, type, size] = out.toString('latin1', p, nl).split(' ');
    const n = Number(size);
    into.add(type as ObjectType, Buffer.from(out.subarray(nl + 1, nl + 1 + n)));
    p = nl + 1 + n + 1;
  }
}

/** One entry of a hand-made pack. */
export type CraftEntry =
  | { readonly type: ObjectType; readonly data: Uint8Array | string }
  | { readonly refDelta: ObjectId; readonly delta: Uint8Array }
  | { readonly ofsDelta: number; readonly delta: Uint8Array };

/** Builds a pack of `entries` (ofsDelta names an earlier entry by position). */
export function craftPack(entries: readonly CraftEntry[]): Uint8Array {
  const w = new PackWriter(entries.length);
  const parts: Uint8Array[] = [w.header()];
  const offsets: number[] = [];
  for (const e of entries) {
    offsets.push(w.offset);
    if ('type' in e) {
      parts.push(w.addObject(e.type, typeof e.data === 'string' ? Buffer.from(e.data) : e.data));
    } else if ('refDelta' in e) {
      parts.push(w.addRaw({ type: 'ref-delta', size: e.delta.length, baseId: e.refDelta }, deflate(e.delta)));
    } else {
      parts.push(w.addRaw({ type: 'ofs-delta', size: e.delta.length, baseOutputOffset: offsets[e.ofsDelta]! }, deflate(e.delta)));
    }
  }
  parts.push(w.finish());
  return Buffer.concat(parts);
}

/** A pack of `count` entries whose bytes are `body` (header and trailer computed). */
export function rawPack(count: number, body: Uint8Array): Uint8Array {
  const head = encodePackHeader(count);
  const sum = createHash('sha1').update(head).update(body).digest();
  return Buffer.concat([head, body, sum]);
}

/** A raw tree entry: `<mode> <name>\0<20-byte id>`. */
export function treeEntry(mode: string, name: string, oid: ObjectId): Buffer {
  return Buffer.concat([Buffer.from(`${mode} ${name}\0`, 'latin1'), Buffer.from(oid, 'hex')]);
}

/** Commit text with a fixed identity. */
export function commitText(tree: ObjectId | undefined, parents: readonly ObjectId[], message = 'm\n'): string {
  let s = tree === undefined ? '' : `tree ${tree}\n`;
  for (const p of parents) s += `parent ${p}\n`;
  s += 'author A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\n' + message;
  return s;
}
