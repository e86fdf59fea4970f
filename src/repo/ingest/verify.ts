/**
 * What `git index-pack --strict` checks beyond the pack format: every object passes git's
 * fsck checks (errors reject, warnings are reported), .gitmodules/.gitattributes blobs get
 * their second pass, every object a new commit, tree or tag names exists (in the pack or
 * the repository) with the type it is named as, and every new ref tip exists.
 */
import { ValidationError } from '../../core/errors.js';
import { ZERO_OID, type ObjectId } from '../../git/hash/object-id.js';
import type { FsckConfig } from '../../git/fsck/config.js';
import { fsckObject, fsckSpecialBlob, fsckSpecialBlobProblem, type FsckMessage, type SpecialBlob } from '../../git/fsck/fsck.js';
import { decodeCommitLinks } from '../../git/object/commit.js';
import type { GitObject, ObjectType } from '../../git/object/object-type.js';
import { decodeTag } from '../../git/object/tag.js';
import { treeEntryType } from '../../git/object/tree.js';
import type { ObjectHeader } from '../repository.js';
import { typeCode, typeName } from './entry-table.js';
import { RawOidMap } from './raw-oid-map.js';

/**
 * Special blobs above this size are not loaded for their second pass (git's
 * core.bigFileThreshold default); fsck then reports gitmodulesLarge/gitattributesLarge.
 */
const SPECIAL_BLOB_LOAD_MAX = 512 * 1024 * 1024;

/** Objects outside the pack: the repository's. */
export interface ObjectSource {
  hasObject(oid: ObjectId): Promise<boolean>;
  tryReadObject(oid: ObjectId): Promise<GitObject | undefined>;
  tryReadHeader(oid: ObjectId): Promise<ObjectHeader | undefined>;
}

/** What the verifier needs of the indexed pack at the end. */
export interface PackLookup {
  /** Type of an object in the pack, or undefined. */
  typeOf(oid: ObjectId): ObjectType | undefined;
  /** Size of an object in the pack (only asked for objects typeOf knows). */
  sizeOf(oid: ObjectId): number;
  /** Content of an object in the pack (only asked for objects typeOf knows). */
  read(oid: ObjectId): Promise<Uint8Array>;
  /** Type code (1..4) of the object whose raw id is at buf[off..off+20), or 0 if not in the pack. */
  typeCodeRaw(buf: Uint8Array, off: number): number;
}

function fsckFailure(type: ObjectType, m: FsckMessage): ValidationError {
  return new ValidationError('FSCK_FAILED', `error in ${type} ${m.oid}: ${m.id}: ${m.message}`);
}

/** What a verifier in a resolver thread collected, to merge into the main thread's. */
export interface VerifierState {
  readonly warnings: readonly FsckMessage[];
  readonly special: readonly (readonly [ObjectId, SpecialBlob['kind']])[];
  readonly tagTargets: readonly (readonly [ObjectId, ObjectId])[];
  /** RawOidMap slots of the links. */
  readonly linkKeys: Uint8Array;
  readonly linkVals: Uint8Array;
}

/** Which entries of a tree differ from its delta base (see PackVerifier.check). */
export interface TreeChange {
  /** Entry boundaries: entry k is bytes starts[k] .. starts[k+1]. */
  readonly starts: ArrayLike<number>;
  /** Entries not byte-identical to an entry of the base. */
  readonly added: readonly number[];
}

/** Collects findings while objects stream by, then checks what needed the whole pack. */
export class PackVerifier {
  readonly warnings: FsckMessage[] = [];
  /** Annotated tags of the pack -> the object each names (for peeling). */
  readonly tagTargets = new Map<ObjectId, ObjectId>();
  readonly #special = new Map<ObjectId, SpecialBlob['kind']>();
  /** Every object named by a pushed object -> the type code it is named as. */
  #links = new RawOidMap();

  readonly #warned = new Set<string>();

  constructor(readonly config: FsckConfig) {}

  /** Whether check() looks at objects of this type code: blobs are judged only through the trees naming them. */
  static checks(type: number): boolean {
    return type !== BLOB_CODE;
  }

  /** Makes room for links to `n` distinct objects (a pack's count), so merging never rehashes. */
  reserveLinks(n: number): void {
    this.#links.reserve(n);
  }

  /** Everything collected so far, for merge() in another thread. */
  exportState(): VerifierState {
    const raw = this.#links.raw();
    return {
      warnings: this.warnings,
      special: [...this.#special],
      tagTargets: [...this.tagTargets],
      linkKeys: raw.keys,
      linkVals: raw.vals,
    };
  }

  /**
   * Adds what another verifier collected. The same object may have been checked twice (a
   * duplicate in the pack): its warnings are kept once.
   */
  merge(state: VerifierState): void {
    for (const m of state.warnings) {
      const key = `${m.oid} ${m.id} ${m.message}`;
      if (this.#warned.has(key)) continue;
      this.#warned.add(key);
      this.warnings.push(m);
    }
    for (const [oid, kind] of state.special) this.#special.set(oid, kind);
    for (const [oid, target] of state.tagTargets) this.tagTargets.set(oid, target);
    const { linkKeys, linkVals } = state;
    for (let slot = 0; slot < linkVals.length; slot++) {
      const code = linkVals[slot]!;
      if (code === 0) continue;
      const prev = this.#links.setIfAbsent(linkKeys, slot * ID_LENGTH, code);
      if (prev !== 0 && prev !== code) {
        const oid = Buffer.from(linkKeys.buffer, linkKeys.byteOffset + slot * ID_LENGTH, ID_LENGTH).toString('hex') as ObjectId;
        throw mixedTypes(oid, prev, code, 'another pushed object' as ObjectId);
      }
    }
  }

  /**
   * Checks one object of the pack; throws ValidationError('FSCK_FAILED') on an fsck error.
   * `sameAs` may say which entries of a tree are new against a tree of this pack that is
   * checked too (its delta base): the others are byte-identical to that tree's, whose links
   * stand for them, so only the new entries are linked.
   */
  check(oid: ObjectId, type: ObjectType, data: Uint8Array, sameAs?: TreeChange): void {
    const res = fsckObject(oid, type, data, this.config);
    for (const m of res.messages) {
      if (m.severity === 'error') throw fsckFailure(type, m);
      this.#warned.add(`${m.oid} ${m.id} ${m.message}`);
      this.warnings.push(m);
    }
    for (const s of res.specialBlobs) this.#special.set(s.oid, s.kind);
    switch (type) {
      case 'commit': {
        const links = decodeCommitLinks(data);
        this.#link(links.tree, 2, oid);
        for (const p of links.parents) this.#link(p, 1, oid);
        break;
      }
      case 'tree':
        if (sameAs === undefined) this.#linkTree(oid, data);
        else this.#linkEntries(oid, data, sameAs);
        break;
      case 'tag': {
        const tag = decodeTag(data);
        this.#link(tag.object, typeCode(tag.type), oid);
        this.tagTargets.set(oid, tag.object);
        break;
      }
      case 'blob':
        break;
    }
  }

  /**
   * After the whole pack is indexed: the special-blob second pass, then links, then tips.
   * Throws ValidationError('FSCK_FAILED') or ValidationError('CONNECTIVITY_FAILED').
   */
  async finish(pack: PackLookup, repo: ObjectSource, newTips: readonly ObjectId[], signal?: AbortSignal): Promise<void> {
    for (const [oid, kind] of this.#special) {
      signal?.throwIfAborted();
      let messages: FsckMessage[];
      const inPack = pack.typeOf(oid);
      if (inPack !== undefined) {
        if (inPack !== 'blob') messages = fsckSpecialBlobProblem(oid, kind, 'not-blob', this.config);
        else {
          const data = pack.sizeOf(oid) > SPECIAL_BLOB_LOAD_MAX ? undefined : await pack.read(oid);
          messages = fsckSpecialBlob(oid, kind, data, this.config);
        }
      } else {
        const head = await repo.tryReadHeader(oid);
        if (head === undefined) messages = fsckSpecialBlobProblem(oid, kind, 'missing', this.config);
        else if (head.type !== 'blob') messages = fsckSpecialBlobProblem(oid, kind, 'not-blob', this.config);
        else {
          const data = head.size > SPECIAL_BLOB_LOAD_MAX ? undefined : (await repo.tryReadObject(oid))?.data;
          messages = data === undefined && head.size <= SPECIAL_BLOB_LOAD_MAX
            ? fsckSpecialBlobProblem(oid, kind, 'missing', this.config)
            : fsckSpecialBlob(oid, kind, data, this.config);
        }
      }
      for (const m of messages) {
        if (m.severity === 'error') throw fsckFailure('blob', m);
        this.warnings.push(m);
      }
    }
    // Links to objects of the pack are checked on raw ids; only the others become strings.
    const { keys, vals } = this.#links.raw();
    for (let slot = 0; slot < vals.length; slot++) {
      const code = vals[slot]!;
      if (code === 0) continue;
      if ((slot & 0xffff) === 0) signal?.throwIfAborted();
      let actual = pack.typeCodeRaw(keys, slot * ID_LENGTH);
      if (actual !== 0 && actual === code) continue;
      const oid = Buffer.from(keys.buffer, keys.byteOffset + slot * ID_LENGTH, ID_LENGTH).toString('hex') as ObjectId;
      if (actual === 0) {
        const head = await repo.tryReadHeader(oid);
        if (head === undefined) {
          throw new ValidationError('CONNECTIVITY_FAILED', `missing ${typeName(code)} ${oid}: a pushed object names it, but it is neither in the pack nor in the repository`);
        }
        actual = typeCode(head.type);
      }
      if (actual !== code) {
        throw new ValidationError('FSCK_FAILED', `object ${oid}: expected type ${typeName(code)}, found ${typeName(actual)}`);
      }
    }
    for (const tip of newTips) {
      if (tip === ZERO_OID || pack.typeOf(tip) !== undefined) continue;
      if (!(await repo.hasObject(tip))) {
        throw new ValidationError('CONNECTIVITY_FAILED', `missing object ${tip}: a ref would point at it, but it is neither in the pack nor in the repository`);
      }
    }
    // Checked: the link table (tens of MiB for a big push) is not needed while the pack is stored.
    this.#links = new RawOidMap();
    this.#special.clear();
  }

  #link(target: ObjectId, code: number, from: ObjectId): void {
    const prev = this.#links.setIfAbsentHex(target, code);
    if (prev !== 0 && prev !== code) throw mixedTypes(target, prev, code, from);
  }

  /** Links the entries `change.added` of a tree whose entry boundaries are `change.starts`. */
  #linkEntries(oid: ObjectId, data: Uint8Array, change: TreeChange): void {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const { starts, added } = change;
    for (const k of added) {
      const s = starts[k]!;
      const end = starts[k + 1]!;
      let mode = 0;
      for (let p = s; buf[p] !== 0x20 && p < end; p++) mode = mode * 8 + (buf[p]! - 0x30);
      const t = treeEntryType(mode);
      if (t === 'gitlink') continue;
      const code = typeCode(t);
      const at = end - ID_LENGTH;
      const prev = this.#links.setIfAbsent(buf, at, code);
      if (prev !== 0 && prev !== code) throw mixedTypes(buf.toString('hex', at, end) as ObjectId, prev, code, oid);
    }
  }

  /**
   * Links every entry of a tree without building strings: `<octal mode> <name>\0<20-byte id>`.
   * fsck has parsed the tree already, but its verdict may be configured away, so bounds are
   * still checked here.
   */
  #linkTree(oid: ObjectId, data: Uint8Array): void {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const len = buf.length;
    let p = 0;
    while (p < len) {
      let mode = 0;
      let c = buf[p]!;
      while (c !== 0x20) {
        if (c < 0x30 || c > 0x37 || ++p >= len) throw unparsable(oid);
        mode = mode * 8 + (c - 0x30);
        c = buf[p]!;
      }
      const nul = buf.indexOf(0, p + 1);
      if (nul < 0 || nul + 1 + ID_LENGTH > len) throw unparsable(oid);
      p = nul + 1 + ID_LENGTH;
      const t = treeEntryType(mode);
      // Gitlinks name commits of other repositories: never required here.
      if (t === 'gitlink') continue;
      const code = typeCode(t);
      const prev = this.#links.setIfAbsent(buf, nul + 1, code);
      if (prev !== 0 && prev !== code) throw mixedTypes(buf.toString('hex', nul + 1, p) as ObjectId, prev, code, oid);
    }
  }
}

const ID_LENGTH = 20;
const BLOB_CODE = 3;

function unparsable(oid: ObjectId): ValidationError {
  return new ValidationError('FSCK_FAILED', `error in tree ${oid}: badTree: cannot be parsed`);
}

function mixedTypes(target: ObjectId, prev: number, code: number, from: ObjectId): ValidationError {
  return new ValidationError('FSCK_FAILED', `object ${target} is named both as ${typeName(prev)} and as ${typeName(code)} (by ${from})`);
}
