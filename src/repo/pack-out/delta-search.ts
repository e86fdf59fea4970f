/**
 * A small delta search for objects that pack-out would otherwise send whole (git's
 * "Compressing objects", much simplified): the candidate base is the last object written
 * at the same path (by name hash and kind), or for a thin pack the client's object at that
 * path (the enumeration edge). A delta is kept when it is less than half the object, as in
 * git's try_delta, and chains this search builds stay within git's default depth.
 */
import type { ObjectId } from '../../git/hash/object-id.js';
import type { ObjectType } from '../../git/object/object-type.js';
import { createDelta } from '../../git/pack/delta.js';

/** What the enumeration knows of paths, for finding bases. */
export interface DeltaHints {
  /** Name hash of each object's path, by index in the objects given to packObjects (a shorter list: the rest have none). */
  readonly nameHashes: readonly number[];
  /** Client-side trees and blobs by `pathHash * 2 + kind` (0 tree, 1 blob). */
  readonly edgeByName: ReadonlyMap<number, ObjectId>;
}

/** git's pack.depth default: deltas built here never make chains longer. */
export const SEARCH_DEPTH_MAX = 50;
/** Objects smaller than this are not worth a delta (header and base id cost as much). */
const TARGET_MIN = 64;
/** Objects larger than this are sent as they are (createDelta's cost grows with size). */
const TARGET_MAX = 16 * 1024 * 1024;

/** A base chosen for a target. */
export interface BaseCandidate {
  readonly oid: ObjectId;
  /** True when the base is in this pack (written earlier); false for a client (edge) object. */
  readonly inPack: boolean;
}

function kindKey(hash: number, type: ObjectType): number | undefined {
  if (type === 'tree') return hash * 2;
  if (type === 'blob') return hash * 2 + 1;
  return undefined;
}

/** Remembers what was written per path and proposes bases. One per packObjects run. */
export class DeltaSearch {
  readonly #hashOf = new Map<ObjectId, number>();
  readonly #edges: ReadonlyMap<number, ObjectId> | undefined;
  readonly #last = new Map<number, ObjectId>();
  readonly #depth = new Map<ObjectId, number>();

  /** `thin`: client objects may be bases; `only`: the objects that may be searched for (default all). */
  constructor(objects: readonly ObjectId[], hints: DeltaHints, thin: boolean, only?: ReadonlySet<ObjectId>) {
    const n = Math.min(objects.length, hints.nameHashes.length);
    for (let i = 0; i < n; i++) {
      const h = hints.nameHashes[i]!;
      if (h !== 0 && (only === undefined || only.has(objects[i]!))) this.#hashOf.set(objects[i]!, h);
    }
    this.#edges = thin ? hints.edgeByName : undefined;
  }

  /** True if an object of this type and size may get a delta here. */
  wants(type: ObjectType, size: number): boolean {
    return (type === 'tree' || type === 'blob') && size >= TARGET_MIN && size <= TARGET_MAX;
  }

  /** Base candidates for `oid`, best first: the last object written at its path, then the client's. */
  candidates(oid: ObjectId, type: ObjectType): BaseCandidate[] {
    const hash = this.#hashOf.get(oid);
    if (hash === undefined) return [];
    const key = kindKey(hash, type);
    if (key === undefined) return [];
    const out: BaseCandidate[] = [];
    const last = this.#last.get(key);
    if (last !== undefined && last !== oid && (this.#depth.get(last) ?? 0) < SEARCH_DEPTH_MAX) {
      out.push({ oid: last, inPack: true });
    }
    const edge = this.#edges?.get(key);
    if (edge !== undefined && edge !== oid) out.push({ oid: edge, inPack: false });
    return out;
  }

  /** A delta from `base` to `target` if it is worth sending, else undefined. */
  tryDelta(base: Uint8Array, target: Uint8Array): Uint8Array | undefined {
    // A base much smaller or larger than the target rarely gives a useful delta (git's size check).
    if (base.length < target.length / 8 || base.length > target.length * 8) return undefined;
    const delta = createDelta(base, target);
    return delta.length < target.length / 2 ? delta : undefined;
  }

  /** Records a written object: whole (depth 0), a reused delta, or a delta built on `base`. */
  written(oid: ObjectId, type: ObjectType | undefined, base?: ObjectId): void {
    if (base !== undefined) this.#depth.set(oid, (this.#depth.get(base) ?? 1) + 1);
    if (type === undefined) return;
    const hash = this.#hashOf.get(oid);
    if (hash === undefined) return;
    const key = kindKey(hash, type);
    if (key !== undefined) this.#last.set(key, oid);
  }
}
