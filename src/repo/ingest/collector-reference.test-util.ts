/**
 * Test support (not a test): the accelerator collector as it was before records were packed
 * into chunks and ids looked up through the pack's id index (a Map of one Buffer per record,
 * a binary search of the idx per id). Tests replay a pack through it and require the same
 * file from the collector ingest uses now.
 */
import { decodeCommitLinks } from '../../git/object/commit.js';
import type { ObjectId } from '../../git/hash/object-id.js';
import { KIND_GITLINK } from '../accel/format.js';
import { AccelWriter } from '../accel/writer.js';
import { diffTrees, entryMeta, parseTreeStarts, type EntryStarts, type TreeDiff } from '../accel/tree-diff.js';

const TYPE_COMMIT = 1;
const TYPE_TREE = 2;
/** Entry boundaries of recent trees kept for their delta children (bytes of Int32Arrays). */
const STARTS_CACHE_BYTES = 8 * 1024 * 1024;
const ID = 20;

/** What a collector in another thread gathered: entry numbers and their records. */
interface CollectorState {
  readonly entries: Int32Array;
  readonly records: readonly Uint8Array[];
}

/** Per-thread collection of commit and tree records, keyed by pack entry number. */
export class ReferenceCollector {
  readonly #records = new Map<number, Uint8Array>();
  readonly #starts = new Map<number, EntryStarts>();
  #startsBytes = 0;

  /**
   * Records the object of pack entry `i` (type code 1..4). For a delta, `baseEntry` and
   * `baseData` are its base's entry number and content.
   */
  add(i: number, type: number, data: Uint8Array, baseEntry?: number, baseData?: Uint8Array): void {
    try {
      if (type === TYPE_COMMIT) this.#records.set(i, commitRecord(data));
      else if (type === TYPE_TREE) this.#tree(i, buf(data), baseEntry, baseData === undefined ? undefined : buf(baseData));
    } catch {
      // Undecodable: no record; readers inflate it (and report what is wrong).
    }
  }

  #tree(i: number, data: Buffer, baseEntry: number | undefined, baseData: Buffer | undefined): void {
    let starts: EntryStarts;
    let record: Uint8Array;
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
      record = treeRecord(data, starts, baseEntry!, d.added, baseData, baseStarts, d.removed);
    } else if (d !== undefined) {
      starts = d.starts;
      const all: number[] = [];
      for (let k = 0; k + 1 < starts.length; k++) all.push(k);
      record = treeRecord(data, starts, -1, all);
    } else {
      starts = parseTreeStarts(data);
      const all: number[] = [];
      for (let k = 0; k + 1 < starts.length; k++) all.push(k);
      record = treeRecord(data, starts, -1, all);
    }
    this.#records.set(i, record);
    this.#keepStarts(i, starts);
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

  /** Everything gathered, for merge() in another thread. */
  exportState(): CollectorState {
    return { entries: Int32Array.from(this.#records.keys()), records: [...this.#records.values()] };
  }

  /** Adds what another thread's collector gathered. */
  merge(state: CollectorState): void {
    state.entries.forEach((e, k) => this.#records.set(e, state.records[k]!));
  }

  /** Record of entry i (for finishAccel). */
  record(i: number): Uint8Array | undefined {
    return this.#records.get(i);
  }

  /** Forgets everything (after the file is written). */
  clear(): void {
    this.#records.clear();
    this.#starts.clear();
    this.#startsBytes = 0;
  }
}

function buf(d: Uint8Array): Buffer {
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** [u8 1][f64 time][20 tree][u32 n][20 x n parents] */
function commitRecord(data: Uint8Array): Uint8Array {
  const links = decodeCommitLinks(data);
  const out = Buffer.allocUnsafe(1 + 8 + ID + 4 + ID * links.parents.length);
  out[0] = TYPE_COMMIT;
  out.writeDoubleLE(links.committerTime, 1);
  out.write(links.tree, 9, ID, 'hex');
  out.writeUInt32LE(links.parents.length, 29);
  links.parents.forEach((p, k) => out.write(p, 33 + k * ID, ID, 'hex'));
  return out;
}

/** [u8 2][i32 base entry][u32 nr][u32 na][per removed, then per added: u32 index, u32 meta, 20 id] */
function treeRecord(
  data: Buffer,
  starts: EntryStarts,
  baseEntry: number,
  added: readonly number[],
  baseData?: Buffer,
  baseStarts?: EntryStarts,
  removed: readonly number[] = [],
): Uint8Array {
  const out = Buffer.allocUnsafe(13 + (removed.length + added.length) * (8 + ID));
  out[0] = TYPE_TREE;
  out.writeInt32LE(baseEntry, 1);
  out.writeUInt32LE(removed.length, 5);
  out.writeUInt32LE(added.length, 9);
  let p = 13;
  const put = (src: Buffer, st: EntryStarts, k: number): void => {
    const s = st[k]!;
    const e = st[k + 1]!;
    out.writeUInt32LE(k, p);
    out.writeUInt32LE(entryMeta(src, s, e), p + 4);
    src.copy(out, p + 8, e - ID, e);
    p += 8 + ID;
  };
  for (const k of removed) put(baseData!, baseStarts!, k);
  for (const k of added) put(data, starts, k);
  return out;
}

/** Positions of raw ids in an idx v2 (binary search over its name table by 32-bit words, no strings). */
class IdxLookup {
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
interface FinishInput {
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
}

/** Builds the accelerator file from the records collected for a finished pack and its idx. */
export function finishReferenceAccel(c: ReferenceCollector, input: FinishInput): Uint8Array {
  const lookup = new IdxLookup(input.idx);
  const w = new AccelWriter(lookup.count, input.packChecksum, input.selfContained);
  w.longestChain = input.longestChain;
  const ref = (raw: Uint8Array, off: number): number => {
    const p = lookup.find(raw, off);
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
  for (let i = 0; i < input.entries; i++) {
    const pos = input.positionOf[i]!;
    w.setObject(pos, input.typeOf(i), input.sizeOf(i));
    const r = c.record(i);
    if (r === undefined) continue;
    const b = buf(r);
    if (r[0] === TYPE_COMMIT) {
      const n = b.readUInt32LE(29);
      const parents: number[] = [];
      for (let k = 0; k < n; k++) parents.push(ref(b, 33 + k * ID));
      w.addCommit(pos, b.readDoubleLE(1), ref(b, 9), parents);
    } else if (treeValid(i)) {
      const baseEntry = b.readInt32LE(1);
      const nr = b.readUInt32LE(5);
      const na = b.readUInt32LE(9);
      const removed = new Uint32Array(nr * 3);
      let p = 13;
      for (let k = 0; k < nr; k++) {
        const meta = b.readUInt32LE(p + 4);
        removed[k * 3] = b.readUInt32LE(p);
        removed[k * 3 + 1] = (meta & 3) === KIND_GITLINK ? w.extRef(b, p + 8) : ref(b, p + 8);
        removed[k * 3 + 2] = meta;
        p += 8 + ID;
      }
      const stride = baseEntry < 0 ? 2 : 3;
      const added = new Uint32Array(na * stride);
      for (let k = 0; k < na; k++) {
        const meta = b.readUInt32LE(p + 4);
        const o = k * stride;
        if (stride === 3) added[o] = b.readUInt32LE(p);
        added[o + stride - 2] = (meta & 3) === KIND_GITLINK ? w.extRef(b, p + 8) : ref(b, p + 8);
        added[o + stride - 1] = meta;
        p += 8 + ID;
      }
      w.addTree(pos, baseEntry < 0 ? undefined : input.positionOf[baseEntry]!, removed, added);
    }
  }
  return w.finish();
}
