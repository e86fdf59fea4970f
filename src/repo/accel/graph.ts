/**
 * Synchronous reads of the reachability accelerators of one object database: object headers,
 * commit links and tree entry lists without inflating anything. Everything answers undefined
 * where a pack has no accelerator or an object no record, and the caller then reads the object.
 */
import type { ObjectId } from '../../git/hash/object-id.js';
import { OBJECT_TYPES } from '../../git/object/object-type.js';
import type { PackIndex } from '../../git/pack/idx.js';
import type { CommitLinks, ObjectHeader } from '../repository.js';
import { ValidationError } from '../../core/errors.js';
import { EXT_BIT, NONE, type AccelFile } from './format.js';

function corrupt(what: string): ValidationError {
  return new ValidationError('REPO_CORRUPT', `reachability accelerator is inconsistent: ${what}`);
}

/** Where an object is: pack number (in the db's order) and idx position. */
export interface GraphLocation {
  readonly pack: number;
  readonly pos: number;
}

/** The accelerators of a list of packs (newest first, as ObjectDb.packs). */
export class AccelGraph {
  readonly indexes: readonly PackIndex[];
  readonly files: readonly (AccelFile | undefined)[];
  /** True if at least one pack has an accelerator. */
  readonly any: boolean;
  /** Per pack: the buffer holding its idx name table and where the table starts in it. */
  readonly nameBytes: readonly Buffer[];
  readonly nameBase: readonly number[];

  constructor(indexes: readonly PackIndex[], files: readonly (AccelFile | undefined)[]) {
    this.indexes = indexes;
    this.files = files;
    this.any = files.some((f) => f !== undefined);
    // The idx's name table is one contiguous run: reading ids in place avoids a view per id.
    const bytes: Buffer[] = [];
    const base: number[] = [];
    for (const idx of indexes) {
      if (idx.count === 0) {
        bytes.push(Buffer.alloc(0));
        base.push(0);
        continue;
      }
      const first = idx.oidBytesAt(0);
      bytes.push(Buffer.from(first.buffer));
      base.push(first.byteOffset);
    }
    this.nameBytes = bytes;
    this.nameBase = base;
  }

  /** Offset in nameBytes[p] of the id at idx position `pos`. */
  posOffset(p: number, pos: number): number {
    return this.nameBase[p]! + pos * 20;
  }

  /** The newest pack holding `oid`, or undefined. */
  locate(oid: ObjectId): GraphLocation | undefined {
    const idx = this.indexes;
    for (let p = 0; p < idx.length; p++) {
      const pos = idx[p]!.findIndex(oid);
      if (pos >= 0) return { pack: p, pos };
    }
    return undefined;
  }

  /** Type and size from the accelerator of the pack that holds `oid`. */
  header(oid: ObjectId): ObjectHeader | undefined {
    const loc = this.locate(oid);
    if (loc === undefined) return undefined;
    const f = this.files[loc.pack];
    if (f === undefined) return undefined;
    const t = f.typeAt(loc.pos);
    if (t < 1 || t > 4) return undefined;
    return { type: OBJECT_TYPES[t - 1]!, size: f.sizeAt(loc.pos) };
  }

  /** Links of the commit `oid` from its record, or undefined (absent, not a commit, or no record). */
  commitLinks(oid: ObjectId): CommitLinks | undefined {
    const loc = this.locate(oid);
    if (loc === undefined) return undefined;
    const f = this.files[loc.pack];
    const c = f?.commitAt(loc.pos);
    if (c === undefined) return undefined;
    const parents: ObjectId[] = [];
    for (const r of c.parents) parents.push(this.refOid(loc.pack, r));
    return { tree: this.refOid(loc.pack, c.tree), parents, committerTime: c.time };
  }

  /** The id a ref of pack `p`'s accelerator names. */
  refOid(p: number, ref: number): ObjectId {
    return ref & EXT_BIT ? this.files[p]!.extOid(ref & ~EXT_BIT) : this.indexes[p]!.oidAt(ref);
  }

  /**
   * The idx position in pack q of the object that ref of pack p's accelerator names, or -1
   * when q lacks it; memoised per accelerator file and index (AccelFile.memoFor), so it
   * outlives this graph while the file and the index stay cached.
   */
  positionIn(p: number, ref: number, q: number): number {
    if (p === q && (ref & EXT_BIT) === 0) return ref;
    const file = this.files[p]!;
    const memo = file.memoFor(this.indexes[q]!);
    const slot = ref & EXT_BIT ? file.count + (ref & ~EXT_BIT) : ref;
    let pos = memo[slot];
    if (pos === undefined) throw corrupt(`ref ${ref} is out of range`);
    if (pos === -2) {
      pos = this.indexes[q]!.findIndexRaw(this.refBytes(p, ref), this.rawOffset(p, ref));
      memo[slot] = pos;
    }
    return pos;
  }

  /** The bytes holding the raw id of a ref (do not modify); the id starts at `rawOffset(p, ref)`. */
  refBytes(p: number, ref: number): Uint8Array {
    return ref & EXT_BIT ? this.files[p]!.extBytes : this.nameBytes[p]!;
  }

  /** Offset of the id in refBytes(p, ref). */
  rawOffset(p: number, ref: number): number {
    if (ref & EXT_BIT) return this.files[p]!.extOffset(ref & ~EXT_BIT);
    if (ref >= this.indexes[p]!.count) throw corrupt(`ref ${ref} is past the pack's ${this.indexes[p]!.count} objects`);
    return this.nameBase[p]! + ref * 20;
  }

  /** Where the tree named by ref of pack p has a record: the same pack for a position, else located. */
  treeLocation(p: number, ref: number): GraphLocation | undefined {
    if ((ref & EXT_BIT) === 0) return this.files[p]?.checkTree(ref) === true ? { pack: p, pos: ref } : undefined;
    const loc = this.locate(this.refOid(p, ref));
    if (loc === undefined || this.files[loc.pack]?.checkTree(loc.pos) !== true) return undefined;
    return loc;
  }

  /**
   * Entries of the recorded tree at (p, pos) that a walk may not have covered yet, as
   * [index, ref, meta] triples in tree order; `seen(pos)` says whether a tree of pack p is
   * already in the walk's seen set (whose whole subtree is then covered).
   *
   * Follows the tree's bases down until a level is covered: a seen base (all its entries are
   * covered), a seen tree based on that level (covering all but the entries it removed), or a
   * tree recorded whole (every entry a candidate); then carries the candidates up through each
   * level's difference, dropping removed ones and adding added ones. Without anything seen this
   * is the whole entry list.
   */
  liveEntries(p: number, pos: number, seen: (pos: number) => boolean): Uint32Array {
    const f = this.files[p]!;
    const words = f.words;
    const levels: number[] = [];
    let cand: Uint32Array | undefined;
    let cur = pos;
    let above = -1;
    for (;;) {
      if (cur !== pos && seen(cur)) {
        cand = EMPTY;
        break;
      }
      const children = f.treeChildren(cur);
      // Below the tree itself only a few siblings are tried: a base may have hundreds.
      const tries = cur === pos ? children.length : Math.min(children.length, SIBLINGS_TRIED);
      for (let i = 0; i < tries; i++) {
        const child = children[i]!;
        if (child !== above && child !== pos && seen(child) && f.checkTree(child)) {
          const wc = f.treeWord(child);
          cand = words.subarray(wc + 3, wc + 3 + words[wc + 1]! * 3);
          break;
        }
      }
      if (cand !== undefined) break;
      if (!f.checkTree(cur)) throw corrupt(`tree at ${cur} has no record`);
      const w = f.treeWord(cur);
      if (words[w] === NONE) {
        const n = words[w + 2]!;
        cand = new Uint32Array(n * 3);
        for (let k = 0; k < n; k++) {
          cand[k * 3] = k;
          cand[k * 3 + 1] = words[w + 3 + k * 2]!;
          cand[k * 3 + 2] = words[w + 4 + k * 2]!;
        }
        break;
      }
      levels.push(cur);
      if (levels.length > f.count) throw corrupt('tree bases form a cycle');
      above = cur;
      cur = words[w]!;
    }
    for (let k = levels.length - 1; k >= 0; k--) {
      const w = f.treeWord(levels[k]!);
      const nr = words[w + 1]!;
      const na = words[w + 2]!;
      const rFrom = w + 3;
      const aFrom = rFrom + nr * 3;
      cand = project(cand, words, rFrom, nr, aFrom, na);
    }
    return cand;
  }

  /** The whole entry list of the recorded tree at (p, pos), as [index, ref, meta] triples. */
  entries(p: number, pos: number): Uint32Array {
    return this.liveEntries(p, pos, () => false);
  }
}

const EMPTY = new Uint32Array(0);
/** Trees based on an ancestor level that are checked for being seen (see liveEntries). */
const SIBLINGS_TRIED = 8;

/**
 * Carries candidate entries ([index, ref, meta], by index) of a base up to a tree whose
 * difference is `nr` removed triples at words[rFrom] and `na` added triples at words[aFrom]:
 * removed entries drop out, the rest move to their index in the tree, added entries join.
 */
function project(cand: Uint32Array, words: Uint32Array, rFrom: number, nr: number, aFrom: number, na: number): Uint32Array {
  const out = new Uint32Array(cand.length + na * 3);
  let o = 0;
  let r = 0;
  let a = 0;
  const n = cand.length / 3;
  for (let c = 0; c < n; c++) {
    const x = cand[c * 3]!;
    // Removed indexes ascend, as do candidates: count those below x, skip x itself.
    while (r < nr && words[rFrom + r * 3]! < x) r++;
    if (r < nr && words[rFrom + r * 3] === x) continue;
    // Among the tree's entries, kept ones fill the indexes the added ones leave free.
    const y = x - r;
    while (a < na && words[aFrom + a * 3]! <= y + a) {
      out[o++] = words[aFrom + a * 3]!;
      out[o++] = words[aFrom + a * 3 + 1]!;
      out[o++] = words[aFrom + a * 3 + 2]!;
      a++;
    }
    out[o++] = y + a;
    out[o++] = cand[c * 3 + 1]!;
    out[o++] = cand[c * 3 + 2]!;
  }
  for (; a < na; a++) {
    out[o++] = words[aFrom + a * 3]!;
    out[o++] = words[aFrom + a * 3 + 1]!;
    out[o++] = words[aFrom + a * 3 + 2]!;
  }
  return o === out.length ? out : out.subarray(0, o);
}
