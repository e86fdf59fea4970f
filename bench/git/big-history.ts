/**
 * A large deterministic history for the benchmark, built with `git fast-import` (the approach
 * of test/fixtures/make-history.ts, at scale): deep history (tens of thousands of commits on a
 * main line, with topic branches merged back), wide trees (hundreds of entries at the root and
 * in each directory), small text files that change a line at a time (so packs hold long delta
 * chains) and some large random blobs. About 13 objects per commit: 25,000 commits give about
 * 330,000 objects. Then `git repack -ad` makes one pack, as a served repository has.
 *
 *   node dist/bench/git/big-history.js OUT.git [--commits N] [--seed S]
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { git, gitStreamIn } from '../../test/helpers/git.js';
import { mulberry32 as prng } from '../../src/core/prng.js';

/** What to generate. */
export interface BigHistoryOptions {
  readonly commits?: number;
  readonly seed?: number;
}

const DIRS = 120;
const FILES_PER_DIR = 60;
const ROOT_FILES = 150;
const LINES = 30;
/** Files changed per commit. */
const CHANGES = 4;
/** Every this many commits a large random blob is added (or replaced). */
const LARGE_EVERY = 2500;
const LARGE_BYTES = 3 * 1024 * 1024;
/** Topic branches: every this many commits one forks, and is merged this many commits later. */
const TOPIC_EVERY = 200;
const TOPIC_LENGTH = 20;


/** The fast-import stream, produced lazily (hundreds of MB). */
function* stream(commits: number, seed: number): Generator<string | Uint8Array> {
  const rnd = prng(seed);
  const pick = (n: number): number => Math.floor(rnd() * n);
  const paths: string[] = [];
  for (let f = 0; f < ROOT_FILES; f++) paths.push(`file-${f}.txt`);
  for (let d = 0; d < DIRS; d++) for (let f = 0; f < FILES_PER_DIR; f++) paths.push(`dir-${d}/sub-${f % 3}/f-${f}.c`);
  const contents = new Map<string, string[]>();
  const lineOf = (p: string, l: number, v: number): string => `${p} line ${l} version ${v} ${'abcdefghij'.repeat(1 + ((l * 7) % 5))}`;
  const body = (p: string): string => {
    let c = contents.get(p);
    if (c === undefined) {
      c = Array.from({ length: LINES }, (_, l) => lineOf(p, l, 0));
      contents.set(p, c);
    }
    return `${c.join('\n')}\n`;
  };
  const data = (text: string | Uint8Array): (string | Uint8Array)[] => {
    const bytes = typeof text === 'string' ? Buffer.from(text) : text;
    return [`data ${bytes.length}\n`, bytes, '\n'];
  };
  let mark = 0;
  let time = 1500000000;
  const commit = function* (ref: string, parents: number[], files: readonly string[], msg: string, large?: Uint8Array): Generator<string | Uint8Array> {
    mark++;
    time += 60 + pick(600);
    yield `commit ${ref}\nmark :${mark}\ncommitter Bench <bench@example.org> ${time} +0000\n`;
    yield* data(msg);
    if (parents.length > 0) yield `from :${parents[0]}\n`;
    for (const p of parents.slice(1)) yield `merge :${p}\n`;
    for (const f of files) {
      yield `M 100644 inline ${f}\n`;
      yield* data(body(f));
    }
    if (large !== undefined) {
      yield `M 100644 inline assets/large-${mark % 7}.bin\n`;
      yield* data(large);
    }
  };
  // The first commit holds every file.
  yield* commit('refs/heads/main', [], paths, 'initial\n');
  let main = mark;
  let topic: { start: number; tip: number; name: string } | undefined;
  for (let c = 1; c < commits; c++) {
    const files = new Set<string>();
    while (files.size < CHANGES) files.add(paths[pick(paths.length)]!);
    for (const f of files) {
      const lines = contents.get(f)!;
      const l = pick(LINES);
      lines[l] = lineOf(f, l, c);
    }
    let large: Uint8Array | undefined;
    if (c % LARGE_EVERY === 0) {
      const buf = Buffer.alloc(LARGE_BYTES);
      for (let i = 0; i < LARGE_BYTES; i += 4) buf.writeUInt32LE((rnd() * 4294967296) >>> 0, i);
      large = buf;
    }
    if (topic !== undefined && c - topic.start >= TOPIC_LENGTH) {
      yield* commit('refs/heads/main', [main, topic.tip], [...files], `merge ${topic.name}\n`);
      main = mark;
      topic = undefined;
      continue;
    }
    if (topic === undefined && c % TOPIC_EVERY === 0) topic = { start: c, tip: main, name: `topic-${c}` };
    if (topic !== undefined && pick(2) === 0) {
      yield* commit(`refs/heads/${topic.name}`, [topic.tip], [...files], `topic work ${c}\n`, large);
      topic.tip = mark;
    } else {
      yield* commit('refs/heads/main', [main], [...files], `work ${c}\n`, large);
      main = mark;
    }
    if (c % 1000 === 0) yield `reset refs/tags/v${c / 1000}\nfrom :${main}\n\n`;
  }
  yield 'done\n';
}

/** Generates the history into a new bare repository at gitDir (which must not exist). */
export async function makeBigHistory(gitDir: string, opts: BigHistoryOptions = {}): Promise<void> {
  const commits = opts.commits ?? 25_000;
  if (!Number.isInteger(commits) || commits < 2) throw new Error(`commits must be an integer >= 2, got ${commits}`);
  await git(['init', '--bare', '--quiet', '--initial-branch=main', gitDir]);
  await gitStreamIn(['--git-dir', gitDir, 'fast-import', '--quiet', '--done', '--date-format=raw'], stream(commits, opts.seed ?? 1234), { timeoutMs: 3_600_000 });
  await git(['--git-dir', gitDir, 'repack', '-adq'], { timeoutMs: 3_600_000 });
  await git(['--git-dir', gitDir, 'pack-refs', '--all', '--prune']);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const out = args[0];
  const num = (flag: string): number | undefined => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : Number(args[i + 1]);
  };
  if (out === undefined || out.startsWith('-')) {
    process.stderr.write('usage: big-history.js OUT.git [--commits N] [--seed S]\n');
    process.exitCode = 2;
  } else {
    const commits = num('--commits');
    const seed = num('--seed');
    await makeBigHistory(resolve(out), { ...(commits === undefined ? {} : { commits }), ...(seed === undefined ? {} : { seed }) });
  }
}
