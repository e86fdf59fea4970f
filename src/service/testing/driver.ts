/**
 * Test support (not a test): a GitService over a StoredRepository in memory (MemoryStore +
 * StoreMetaStore), a way to run one request with given input bytes, and git-built histories
 * and packs to push.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LIMITS } from '../../core/limits.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { ZERO_OID } from '../../git/hash/object-id.js';
import type { PktLine } from '../../git/pktline/decode.js';
import { decodePktLine } from '../../git/pktline/decode.js';
import { encodeReceiveRequest } from '../../git/protocol/receive-commands.js';
import { createRepoCaches } from '../../repo/cache/repo-caches.js';
import { StoredRepositoryHost } from '../../repo/host.js';
import { MemoryStore } from '../../storage/memory/memory-store.js';
import { createGitService, type GitServiceDeps } from '../dispatch.js';
import type { GitRequest, GitService } from '../git-service.js';
import { StoreMetaStore } from '../../meta/store/store-meta.js';

/** A host in memory and services over it. */
export interface MemoryEnv {
  readonly host: StoredRepositoryHost;
  readonly meta: StoreMetaStore;
  service(overrides?: Partial<GitServiceDeps>): GitService;
}

/** Builds an in-memory environment. */
export function memoryEnv(): MemoryEnv {
  const store = new MemoryStore();
  const meta = new StoreMetaStore({ store });
  const host = StoredRepositoryHost.of(store, meta, createRepoCaches({ blockCacheMb: 8, indexCacheMb: 8, objectCacheMb: 8 }));
  return {
    host,
    meta,
    service: (overrides = {}) =>
      createGitService({ host, fsck: {}, limits: DEFAULT_LIMITS, allowReceivePack: () => true, agent: 'stowage/test', ...overrides }),
  };
}

/** What a request produced. */
export interface RunResult {
  readonly output: Buffer;
  readonly error: unknown;
}

/** Runs one request with `input` as the whole client side; never throws (the error is returned). */
export async function runService(
  service: GitService,
  req: Partial<GitRequest> & Pick<GitRequest, 'service' | 'repoName'>,
  input: Uint8Array | readonly Uint8Array[] = [],
): Promise<RunResult> {
  const chunks: Uint8Array[] = [];
  const parts = input instanceof Uint8Array ? [input] : input;
  async function* source(): AsyncIterable<Uint8Array> {
    for (const p of parts) yield p;
  }
  let error: unknown;
  try {
    await service.serve(
      { protocolVersion: 0, statelessRpc: false, advertiseRefs: false, requestId: 'test', ...req },
      source(),
      { write: async (c) => void chunks.push(Buffer.from(c)) },
    );
  } catch (err) {
    error = err;
  }
  return { output: Buffer.concat(chunks), error };
}

/** Splits output into pkt-lines; bytes after the last whole line (a raw pack) are returned as `rest`. */
export function splitPkts(output: Uint8Array): { pkts: PktLine[]; rest: Uint8Array } {
  const pkts: PktLine[] = [];
  let off = 0;
  while (off < output.length) {
    if (output.length - off >= 4 && Buffer.from(output.subarray(off, off + 4)).toString('latin1') === 'PACK') break;
    const step = decodePktLine(output.subarray(off));
    if (step.kind === 'need-more') break;
    pkts.push(step.line);
    off += step.consumed;
  }
  return { pkts, rest: output.subarray(off) };
}

/** Text of data pkt-lines (one trailing LF dropped), specials as "<flush>", "<delim>". */
export function pktTexts(pkts: readonly PktLine[]): string[] {
  return pkts.map((p) => (p.kind === 'data' ? Buffer.from(p.payload).toString('latin1').replace(/\n$/, '') : `<${p.kind}>`));
}

/** Runs git; resolves stdout. */
export function git(cwd: string, args: readonly string[], input?: Uint8Array | string, env: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        cwd,
        encoding: 'buffer',
        maxBuffer: 1 << 28,
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: cwd,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_AUTHOR_NAME: 'T',
          GIT_AUTHOR_EMAIL: 't@example.com',
          GIT_COMMITTER_NAME: 'T',
          GIT_COMMITTER_EMAIL: 't@example.com',
          ...env,
        },
      },
      (err, stdout, stderr) => (err ? reject(new Error(`git ${args.join(' ')}: ${String(stderr)}`)) : resolve(stdout)),
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

/** A local repository with a linear history, one commit per day from 2020-09-13. */
export interface History {
  readonly dir: string;
  /** Commit ids, oldest first. */
  readonly commits: ObjectId[];
  /** Adds `n` more commits on the current branch. */
  commit(n: number, label?: string): Promise<ObjectId[]>;
  rev(name: string): Promise<ObjectId>;
  /** A pack of `revs --not nots` (git pack-objects --revs). */
  pack(revs: readonly string[], nots?: readonly string[]): Promise<Buffer>;
  cleanup(): Promise<void>;
}

/** Creates a local repository with `n` commits on main. */
export async function makeHistory(n: number): Promise<History> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-hist-'));
  await git(dir, ['init', '-q', '-b', 'main']);
  let count = 0;
  const commits: ObjectId[] = [];
  const h: History = {
    dir,
    commits,
    async commit(k, label = 'c') {
      const made: ObjectId[] = [];
      for (let i = 0; i < k; i++, count++) {
        await writeFile(join(dir, 'file.txt'), `${label} ${count}\n`);
        await writeFile(join(dir, `f${count % 7}.txt`), `${count}\n`);
        await git(dir, ['add', '-A']);
        const when = `${1600000000 + count * 86400} +0000`;
        await git(dir, ['commit', '-q', '-m', `${label} ${count}`], undefined, { GIT_AUTHOR_DATE: when, GIT_COMMITTER_DATE: when });
        const oid = (await git(dir, ['rev-parse', 'HEAD'])).toString().trim() as ObjectId;
        made.push(oid);
        commits.push(oid);
      }
      return made;
    },
    rev: async (name) => (await git(dir, ['rev-parse', name])).toString().trim() as ObjectId,
    pack: (revs, nots = []) => git(dir, ['pack-objects', '--revs', '--stdout', '-q'], [...revs, ...nots.map((x) => `^${x}`), ''].join('\n')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  await h.commit(n);
  return h;
}

/** One ref update for pushRefs. */
export interface Update {
  readonly name: string;
  readonly oldOid?: ObjectId;
  readonly newOid?: ObjectId;
}

/** Pushes updates with a pack (stateless, like one HTTP POST) and returns the run. */
export async function pushRefs(
  service: GitService,
  repoName: string,
  updates: readonly Update[],
  pack: Uint8Array | undefined,
  caps: readonly string[] = ['report-status', 'side-band-64k'],
  extra: readonly Uint8Array[] = [],
): Promise<RunResult> {
  const cmds = encodeReceiveRequest({
    commands: updates.map((u) => ({ oldOid: u.oldOid ?? ZERO_OID, newOid: u.newOid ?? ZERO_OID, name: u.name })),
    capabilities: caps.map((c) => {
      const eq = c.indexOf('=');
      return eq < 0 ? { name: c } : { name: c.slice(0, eq), value: c.slice(eq + 1) };
    }),
    shallows: [],
  });
  return runService(service, { service: 'git-receive-pack', repoName, statelessRpc: true }, [cmds, ...extra, ...(pack === undefined ? [] : [pack])]);
}

/** A fetch response split into its parts (after an optional advertisement). */
export interface FetchOutput {
  /** Advertisement lines (up to its flush) when one was sent. */
  readonly adv: string[];
  /** Lines between the advertisement and the pack: shallow, ACK, NAK, ERR, "<flush>". */
  readonly lines: string[];
  /** Pack bytes (band 1, or raw without side-band). */
  readonly pack: Buffer;
  /** Band 2 text. */
  readonly progress: string;
  /** Band 3 text. */
  readonly fatal: string;
}

/** Splits a v0/v1 fetch response. */
export function parseFetchOutput(output: Uint8Array, opts: { advertised: boolean; sideband: boolean }): FetchOutput {
  const { pkts, rest } = splitPkts(output);
  let i = 0;
  const adv: string[] = [];
  if (opts.advertised) {
    for (; i < pkts.length; i++) {
      const p = pkts[i] as PktLine;
      if (p.kind === 'flush') {
        i++;
        break;
      }
      adv.push(pktTexts([p])[0] as string);
    }
  }
  const lines: string[] = [];
  const bands: Buffer[][] = [[], [], []];
  let inBands = false;
  for (; i < pkts.length; i++) {
    const p = pkts[i] as PktLine;
    const first = p.kind === 'data' ? p.payload[0] : undefined;
    if (opts.sideband && p.kind === 'data' && (first === 1 || first === 2 || first === 3)) inBands = true;
    if (inBands) {
      if (p.kind !== 'data') break;
      (bands[(first as number) - 1] as Buffer[]).push(Buffer.from(p.payload.subarray(1)));
      continue;
    }
    lines.push(pktTexts([p])[0] as string);
  }
  const pack = opts.sideband ? Buffer.concat(bands[0] as Buffer[]) : Buffer.from(rest);
  return { adv, lines, pack, progress: Buffer.concat(bands[1] as Buffer[]).toString(), fatal: Buffer.concat(bands[2] as Buffer[]).toString() };
}

/** Indexes a pack in a fresh bare repository (thin packs completed from `base` when given); returns its object ids. */
export async function indexPack(pack: Uint8Array, base?: string): Promise<{ objects: ObjectId[]; dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-idx-'));
  await git(dir, ['init', '-q', '--bare']);
  if (base !== undefined) await writeFile(join(dir, 'objects', 'info', 'alternates'), `${join(base, '.git', 'objects')}\n`);
  const out = (await git(dir, ['index-pack', '--stdin', ...(base === undefined ? [] : ['--fix-thin'])], pack)).toString().trim();
  const name = out.split(/\s+/).pop() as string;
  const idx = await readFile(join(dir, 'objects', 'pack', `pack-${name}.idx`));
  const list = (await git(dir, ['show-index'], idx)).toString().trim();
  const objects = list === '' ? [] : list.split('\n').map((l) => l.split(' ')[1] as ObjectId);
  return { objects, dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
