/**
 * Test support (not a test): builds repositories with real history quickly through
 * `git fast-import` (files that change a little per commit, so packs hold delta chains).
 */
import { gitRun } from './ingest-fixtures.test-util.js';

/** Options of makeHistory. */
export interface HistoryOptions {
  readonly commits: number;
  /** Files touched per commit (default 3). */
  readonly files?: number;
  /** Lines per file (default 200). */
  readonly lines?: number;
  readonly branch?: string;
  /** Also add a lightweight tag and an annotated tag at these commit numbers. */
  readonly tagsAt?: readonly number[];
  /** Seed for the content (different seeds give unrelated histories). */
  readonly seed?: number;
}

/** Initialises `dir` (bare if asked) and fast-imports a history into it. */
export async function makeHistory(dir: string, opts: HistoryOptions, bare = false): Promise<void> {
  await gitRun(dir, ['init', '-q', ...(bare ? ['--bare'] : []), '-b', opts.branch ?? 'main', '.']);
  await gitRun(dir, ['fast-import', '--quiet'], fastImportStream(opts));
}

/** A fast-import stream for makeHistory. */
export function fastImportStream(opts: HistoryOptions): string {
  const files = opts.files ?? 3;
  const lines = opts.lines ?? 200;
  const branch = opts.branch ?? 'main';
  const seed = opts.seed ?? 1;
  const content: string[][] = [];
  for (let f = 0; f < files * 2; f++) {
    content.push(Array.from({ length: lines }, (_, l) => `seed ${seed} file ${f} line ${l} ${'x'.repeat((l * 7 + f) % 40)}`));
  }
  let out = '';
  let mark = 0;
  for (let c = 1; c <= opts.commits; c++) {
    for (let k = 0; k < files; k++) {
      const f = (c + k) % content.length;
      const lineNo = (c * 31 + k * 17) % lines;
      content[f]![lineNo] = `seed ${seed} commit ${c} changed ${k}`;
    }
    const blobs: [string, number][] = [];
    for (let f = 0; f < content.length; f++) {
      const data = content[f]!.join('\n') + '\n';
      mark++;
      out += `blob\nmark :${mark}\ndata ${Buffer.byteLength(data)}\n${data}\n`;
      blobs.push([f % 2 === 0 ? `src/file${f}.txt` : `docs/d${f % 3}/file${f}.md`, mark]);
    }
    const msg = `commit ${c}\n`;
    mark++;
    const commitMark = mark;
    out += `commit refs/heads/${branch}\nmark :${commitMark}\n`;
    out += `author A U Thor <author@example.com> ${1700000000 + c * 60} +0000\n`;
    out += `committer C O Mitter <committer@example.com> ${1700000000 + c * 60} +0000\n`;
    out += `data ${Buffer.byteLength(msg)}\n${msg}`;
    if (c > 1) out += `from :${commitMark - content.length - 1}\n`;
    out += 'deleteall\n';
    for (const [path, m] of blobs) out += `M 100644 :${m} ${path}\n`;
    out += '\n';
    if (opts.tagsAt?.includes(c) === true) {
      out += `reset refs/tags/light-${c}\nfrom :${commitMark}\n\n`;
      const tmsg = `release ${c}\n`;
      out += `tag v${c}\nfrom :${commitMark}\ntagger T Agger <tagger@example.com> ${1700000000 + c * 60} +0000\n`;
      out += `data ${Buffer.byteLength(tmsg)}\n${tmsg}\n`;
    }
  }
  return out;
}
