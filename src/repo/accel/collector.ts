/**
 * Collects what the accelerator needs while a pack is indexed (ingest already inflates every
 * object once): commit links and tree entry lists, the latter as a difference from the tree's
 * delta base, whose bytes the delta resolver holds at that moment. One collector per thread;
 * resolver threads export theirs to the main thread's. Ids are kept raw until the idx order is
 * known; finishAccel then turns them into positions of this pack or external ids.
 *
 * Nothing here rejects a pack: an object that does not decode gets no record (fsck judges it),
 * and readers inflate objects without records.
 */
import { decodeCommitLinks } from '../../git/object/commit.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { KIND_GITLINK, NONE } from './format.js';
import { AccelWriter } from './writer.js';
import { diffTrees, entryMeta, parseTreeStarts, type EntryStarts, type TreeDiff } from './tree-diff.js';

const TYPE_COMMIT = 1;
const TYPE_TREE = 2;
/** Entry boundaries of recent trees kept for their delta children (bytes of Int32Arrays). */
const STARTS_CACHE_BYTES = 1024 * 1024;
const ID = 20;

/** What a collector in another thread gathered: entry numbers and where their records are in `chunks`. */
export interface CollectorState {
  readonly entries: Int32Array;
  /** Location of each entry's record: chunk number * CHUNK_STRIDE + byte offset. */
  readonly locations: Float64Array;
  readonly chunks: readonly Uint8Array[];
}

/** Records are packed into chunks of this size (a bigger record gets a chunk of its own). */
const CHUNK_BYTES = 1 << 20;
/** Location = chunk * CHUNK_STRIDE + offset; offsets inside a chunk stay below it. */
const CHUNK_STRIDE = 2 ** 21;
const NO_RECORD = -1;

/**
 * Per-thread collection of commit and tree records, keyed by pack entry number. Records are
 * packed into a few big chunks (no object per record) and located by a typed array.
 */
export class AccelCollector {
  #chunks: Buffer[] = [];
  #used = 0;
  #locations = new Float64Array(1024).fill(NO_RECORD);
  /** Entries with records, in the order added (for exportState). */
  #entries = new Int32Array(1024);
  #count = 0;
  readonly #starts = new Map<number, EntryStarts>();
  #startsBytes = 0;

  /**
   * Records the object of pack entry `i` (type code 1..4). For a delta, `baseEntry` and
   * `baseData` are its base's entry number and content. For a tree with a base, returns its
   * difference from the base (entries not added are byte-identical to entries of the base),
   * which link checks may reuse.
   */
  add(i: number, type: number, data: Uint8Array, baseEntry?: number, baseData?: Uint8Array): TreeDiff | undefined {
    try {
      if (type === TYPE_COMMIT) this.#commit(i, data);
      else if (type === TYPE_TREE) return this.#tree(i, buf(data), baseEntry, baseData === undefined ? undefined : buf(baseData));
    } catch {
      // Undecodable: no record; readers inflate it (and report what is wrong).
    }
    return undefined;
  }

  /** Space for the record of entry i: the chunk and the offset to write `size` bytes at. */
  #reserve(i: number, size: number): { readonly out: Buffer; readonly at: number } {
    let chunk = this.#chunks[this.#chunks.length - 1];
    if (chunk === undefined || this.#used + size > chunk.length) {
      chunk = Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, size));
      this.#chunks.push(chunk);
      this.#used = 0;
    }
    const at = this.#used;
    this.#used += size;
    this.#locate(i, (this.#chunks.length - 1) * CHUNK_STRIDE + at);
    return { out: chunk, at };
  }

  #locate(i: number, location: number): void {
    if (i >= this.#locations.length) {
      const next = new Float64Array(Math.max(i + 1, this.#locations.length * 2)).fill(NO_RECORD);
      next.set(this.#locations);
      this.#locations = next;
    }
    if (this.#locations[i] === NO_RECORD) {
      if (this.#count === this.#entries.length) {
        const next = new Int32Array(this.#entries.length * 2);
        next.set(this.#entries);
        this.#entries = next;
      }
      this.#entries[this.#count++] = i;
    }
    this.#locations[i] = location;
  }

  /** [u8 1][f64 time][20 tree][u32 n][20 x n parents] */
  #commit(i: number, data: Uint8Array): void {
    const links = decodeCommitLinks(data);
    const { out, at } = this.#reserve(i, 1 + 8 + ID + 4 + ID * links.parents.length);
    out[at] = TYPE_COMMIT;
    out.writeDoubleLE(links.committerTime, at + 1);
    out.write(links.tree, at + 9, ID, 'hex');
    out.writeUInt32LE(links.parents.length, at + 29);
    links.parents.forEach((p, k) => out.write(p, at + 33 + k * ID, ID, 'hex'));
  }

  #tree(i: number, data: Buffer, baseEntry: number | undefined, baseData: Buffer | undefined): TreeDiff | undefined {
    let starts: EntryStarts;
    let d: TreeDiff | undefined;
    let baseStarts: EntryStarts | undefined;
    if (baseEntry !== undefined && baseData !== undefined) {
      baseStarts = this.#starts.get(baseEntry) ?? parseTreeStarts(baseData);
      d = diffTrees(baseData, baseStarts, data);
    }
    // A difference (3 words per entry) longer than the whole list (2 words per entry) is not
    // worth it: the pack's delta base was a tree of another path.
    if (d !== undefined && (d.removed.length + d.added.length) * 3 <= (d.starts.length - 1) * 2) {
      starts = d.starts;
      this.#treeRecord(i, data, starts, baseEntry!, d.added, baseData, baseStarts, d.removed);
    } else {
      starts = d !== undefined ? d.starts : parseTreeStarts(data);
      this.#treeRecord(i, data, starts, -1, undefined);
    }
    this.#keepStarts(i, starts);
    return d;
  }

  /**
   * [u8 2][i32 base entry][u32 nr][u32 na][per removed, then per added: u32 index, u32 meta, 20 id];
   * without a base (-1) nothing is removed and the index, implied, is left out.
   * `added` undefined means every entry of the tree.
   */
  #treeRecord(
    i: number,
    data: Buffer,
    starts: EntryStarts,
    baseEntry: number,
    added: readonly number[] | undefined,
    baseData?: Buffer,
    baseStarts?: EntryStarts,
    removed: readonly number[] = [],
  ): void {
    const na = added === undefined ? starts.length - 1 : added.length;
    const withIndex = baseEntry >= 0;
    const { out, at } = this.#reserve(i, 13 + (removed.length + na) * treeEntryBytes(withIndex));
    out[at] = TYPE_TREE;
    out.writeInt32LE(baseEntry, at + 1);
    out.writeUInt32LE(removed.length, at + 5);
    out.writeUInt32LE(na, at + 9);
    let p = at + 13;
    const put = (src: Buffer, st: EntryStarts, k: number): void => {
      const s = st[k]!;
      const e = st[k + 1]!;
      if (withIndex) {
        out.writeUInt32LE(k, p);
        p += 4;
      }
      out.writeUInt32LE(entryMeta(src, s, e), p);
      src.copy(out, p + 4, e - ID, e);
      p += 4 + ID;
    };
    for (const k of removed) put(baseData!, baseStarts!, k);
    if (added === undefined) for (let k = 0; k < na; k++) put(data, starts, k);
    else for (const k of added) put(data, starts, k);
  }

  #keepStarts(i: number, starts: EntryStarts): void {
    this.#starts.set(i, starts);
    this.#startsBytes += starts.byteLength;
    for (const [k, v] of this.#starts) {
      if (this.#startsBytes <= STARTS_CACHE_BYTES) break;
      this.#starts.delete(k);
      this.#startsBytes -= v.byteLength;
    }
  }

  /**
   * Everything gathered, for merge() in another thread. The chunks are trimmed copies or
   * whole buffers of their own, so they can be transferred (see transferList).
   */
  exportState(): CollectorState {
    const chunks = this.#chunks.map((c, k) => (k === this.#chunks.length - 1 && this.#used < c.length ? Buffer.from(c.subarray(0, this.#used)) : c));
    const entries = this.#entries.slice(0, this.#count);
    const locations = new Float64Array(this.#count);
    for (let k = 0; k < this.#count; k++) locations[k] = this.#locations[entries[k]!]!;
    return { entries, locations, chunks };
  }

  /** The buffers of an exported state that postMessage may move instead of copying. */
  static transferList(state: CollectorState): ArrayBuffer[] {
    const out = new Set<ArrayBuffer>();
    for (const c of state.chunks) if (c.buffer instanceof ArrayBuffer && c.byteOffset === 0 && c.byteLength === c.buffer.byteLength) out.add(c.buffer);
    return [...out];
  }

  /** Adds what another thread's collector gathered. */
  merge(state: CollectorState): void {
    const first = this.#chunks.length;
    // Later records go to a new chunk; the current one is left as it is.
    for (const c of state.chunks) this.#chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    this.#used = Infinity;
    for (let k = 0; k < state.entries.length; k++) {
      const loc = state.locations[k]!;
      const chunk = Math.floor(loc / CHUNK_STRIDE);
      this.#locate(state.entries[k]!, (first + chunk) * CHUNK_STRIDE + (loc - chunk * CHUNK_STRIDE));
    }
  }

  /** Record of entry i (for finishAccel), a view into the collector's memory. */
  record(i: number): Buffer | undefined {
    const loc = i < this.#locations.length ? this.#locations[i]! : NO_RECORD;
    if (loc === NO_RECORD) return undefined;
    const chunk = Math.floor(loc / CHUNK_STRIDE);
    const c = this.#chunks[chunk]!;
    const at = loc - chunk * CHUNK_STRIDE;
    return c.subarray(at, at + recordLength(c, at));
  }

  /** The first `length` bytes where entry i's record is (after finishAccel rewrote it in place). */
  view(i: number, length: number): Buffer | undefined {
    const loc = i < this.#locations.length ? this.#locations[i]! : NO_RECORD;
    if (loc === NO_RECORD) return undefined;
    const chunk = Math.floor(loc / CHUNK_STRIDE);
    const at = loc - chunk * CHUNK_STRIDE;
    return this.#chunks[chunk]!.subarray(at, at + length);
  }

  /** Forgets everything (after the file is written). */
  clear(): void {
    this.#chunks = [];
    this.#used = 0;
    this.#locations = new Float64Array(1024).fill(NO_RECORD);
    this.#entries = new Int32Array(1024);
    this.#count = 0;
    this.#starts.clear();
    this.#startsBytes = 0;
  }
}

/** Bytes of the record at c[at] (see the record layouts above). */
function recordLength(c: Buffer, at: number): number {
  if (c[at] === TYPE_COMMIT) return 33 + ID * c.readUInt32LE(at + 29);
  return 13 + (c.readUInt32LE(at + 5) + c.readUInt32LE(at + 9)) * treeEntryBytes(c.readInt32LE(at + 1) >= 0);
}

/** Bytes of an entry in a tree record: [u32 index] (with a base only), u32 meta, 20 id. */
function treeEntryBytes(withIndex: boolean): number {
  return (withIndex ? 8 : 4) + ID;
}

function buf(d: Uint8Array): Buffer {
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** Positions of raw ids in an idx v2 (binary search over its name table by 32-bit words, no strings). */
export class IdxLookup {
  readonly #view: DataView;
  readonly #count: number;

  constructor(idx: Uint8Array) {
    this.#view = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
    this.#count = this.#view.getUint32(8 + 255 * 4);
  }

  /** Position of the 20 bytes at raw[off], or -1. */
  find(raw: Uint8Array, off: number): number {
    const v = this.#view;
    const w0 = word(raw, off);
    const first = raw[off]!;
    let lo = first === 0 ? 0 : v.getUint32(8 + (first - 1) * 4);
    let hi = v.getUint32(8 + first * 4);
    const names = 8 + 256 * 4;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const at = names + mid * ID;
      let d = v.getUint32(at) - w0;
      for (let k = 4; d === 0 && k < ID; k += 4) d = v.getUint32(at + k) - word(raw, off + k);
      if (d === 0) return mid;
      if (d < 0) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  get count(): number {
    return this.#count;
  }
}

function word(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

/** What finishAccel needs of the indexed pack. */
export interface FinishInput {
  readonly packChecksum: ObjectId;
  readonly idx: Uint8Array;
  /** Pack entries (thin bases included). */
  readonly entries: number;
  /** Idx position of each entry. */
  readonly positionOf: Int32Array;
  /** Object type code of each entry. */
  typeOf(i: number): number;
  /** Inflated object size of each entry. */
  sizeOf(i: number): number;
  /** True when every delta base is in the pack (always, for packs ingest completes). */
  readonly selfContained: boolean;
  /** The pack's longest delta chain, when known (written as the CHAINS section). */
  readonly longestChain?: number;
  /** Idx position of the raw id at raw[off], or -1; default: a binary search of `idx`. */
  readonly positionOfId?: (raw: Uint8Array, off: number) => number;
}

/**
 * Builds the accelerator file from the records collected for a finished pack and its idx; empties the collector.
 * Memory: the records are rewritten in place into the file's words (ids become positions or
 * external ids, never longer than the ids they replace), then copied into the file, which is
 * allocated once at its final size: the collector's chunks and the file are all that is held.
 */
export function finishAccel(c: AccelCollector, input: FinishInput): Uint8Array {
  const lookup = new IdxLookup(input.idx);
  const w = new AccelWriter(lookup.count, input.packChecksum, input.selfContained);
  w.longestChain = input.longestChain;
  const find = input.positionOfId ?? ((raw: Uint8Array, off: number): number => lookup.find(raw, off));
  const ref = (raw: Uint8Array, off: number): number => {
    const p = find(raw, off);
    return p >= 0 ? p : w.extRef(raw, off);
  };
  // A tree record needs its base's record (readers rebuild entry lists from the base).
  const valid = new Int8Array(input.entries); // 0 unknown, 1 yes, -1 no
  const treeValid = (i: number): boolean => {
    const chain: number[] = [];
    let k = i;
    let ok = true;
    for (;;) {
      if (valid[k] !== 0) {
        ok = valid[k] === 1;
        break;
      }
      const r = c.record(k);
      if (r === undefined || r[0] !== TYPE_TREE) {
        ok = false;
        break;
      }
      chain.push(k);
      const base = buf(r).readInt32LE(1);
      if (base < 0) break;
      if (chain.length > input.entries) {
        ok = false;
        break;
      }
      k = base;
    }
    for (const x of chain) valid[x] = ok ? 1 : -1;
    return ok;
  };
  // First every record's size in the file, from the headers (which the rewrite below overwrites).
  const words = new Int32Array(input.entries);
  for (let i = 0; i < input.entries; i++) {
    w.setObject(input.positionOf[i]!, input.typeOf(i), input.sizeOf(i));
    const r = c.record(i);
    if (r === undefined) continue;
    const b = buf(r);
    if (r[0] === TYPE_COMMIT) words[i] = 4 + b.readUInt32LE(29);
    else if (treeValid(i)) words[i] = 3 + b.readUInt32LE(5) * 3 + b.readUInt32LE(9) * (b.readInt32LE(1) < 0 ? 2 : 3);
  }
  // Then, in pack order (external ids are numbered by first use), each record becomes its words.
  const parents: number[] = [];
  for (let i = 0; i < input.entries; i++) {
    if (words[i] === 0) continue;
    const b = buf(c.record(i)!);
    w.reserve(input.positionOf[i]!, words[i]!);
    if (b[0] === TYPE_COMMIT) {
      // [time lo, time hi, tree, n, parents...] over [u8 1][f64 time][20 tree][u32 n][20 x n]
      const n = b.readUInt32LE(29);
      parents.length = 0;
      for (let k = 0; k < n; k++) parents.push(ref(b, 33 + k * ID));
      const tree = ref(b, 9);
      const t = Math.trunc(b.readDoubleLE(1));
      b.writeUInt32LE(t % 2 ** 32 >>> 0, 0);
      b.writeUInt32LE(Math.floor(t / 2 ** 32) >>> 0, 4);
      b.writeUInt32LE(tree, 8);
      b.writeUInt32LE(n, 12);
      for (let k = 0; k < n; k++) b.writeUInt32LE(parents[k]!, 16 + k * 4);
      continue;
    }
    // [base, nr, na, removed triples, added triples or pairs] over the 13-byte header and
    // 28-byte entries (24 without a base): entry k's words end before entry k+1's bytes begin,
    // so each entry is read whole before it is overwritten.
    const baseEntry = b.readInt32LE(1);
    const nr = b.readUInt32LE(5);
    const na = b.readUInt32LE(9);
    const withIndex = baseEntry >= 0;
    let p = 13;
    let o = 12;
    for (let k = 0; k < nr + na; k++) {
      const index = withIndex ? b.readUInt32LE(p) : 0;
      if (withIndex) p += 4;
      const meta = b.readUInt32LE(p);
      const r = (meta & 3) === KIND_GITLINK ? w.extRef(b, p + 4) : ref(b, p + 4);
      if (withIndex) {
        b.writeUInt32LE(index, o);
        o += 4;
      }
      b.writeUInt32LE(r, o);
      b.writeUInt32LE(meta, o + 4);
      o += 8;
      p += 4 + ID;
    }
    b.writeUInt32LE(baseEntry < 0 ? NONE : input.positionOf[baseEntry]!, 0);
    b.writeUInt32LE(nr, 4);
    b.writeUInt32LE(na, 8);
  }
  const file = w.finish((data) => {
    let at = 0;
    for (let i = 0; i < input.entries; i++) {
      const n = words[i]! * 4;
      if (n === 0) continue;
      c.view(i, n)!.copy(data, at);
      at += n;
    }
  });
  c.clear();
  return file;
}
