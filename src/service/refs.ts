/**
 * Ref views the services need from a RepoState: the sorted list, HEAD, tips, and git's
 * DWIM expansion of a short name (refs.c ref_rev_parse_rules) for deepen-not.
 */
import type { ObjectId } from '../git/hash/object-id.js';
import type { RefValue, RepoState } from '../meta/meta-store.js';

/** One direct ref as the services use it (ids come from the meta store, checked on write). */
export interface RefEntry {
  readonly name: string;
  readonly oid: ObjectId;
  readonly peeled?: ObjectId;
}

function entry(name: string, v: RefValue): RefEntry {
  return v.peeled === undefined
    ? { name, oid: v.oid as ObjectId }
    : { name, oid: v.oid as ObjectId, peeled: v.peeled as ObjectId };
}

/** C-locale (byte) order of UTF-8 names; for the BMP this equals UTF-16 code unit order. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorted refs per state: a state never changes, and every request of a version shares it. */
const sortedByState = new WeakMap<RepoState, readonly RefEntry[]>();

/** Every direct ref, sorted by name as git advertises them (one list per state, shared). */
export function sortedRefs(state: RepoState): readonly RefEntry[] {
  const known = sortedByState.get(state);
  if (known !== undefined) return known;
  const out: RefEntry[] = [];
  for (const [name, v] of state.refs) out.push(entry(name, v));
  out.sort((x, y) => compareNames(x.name, y.name));
  sortedByState.set(state, out);
  return out;
}

/** Encodings kept per state and key (see perState). */
const encodedByState = new WeakMap<RepoState, Map<string, Uint8Array>>();
/** Keys kept per state: requests with arbitrary ref prefixes must not grow it without bound. */
const ENCODED_PER_STATE_MAX = 16;

/**
 * The bytes `make` encodes from `state` for `key` (e.g. an ls-refs answer for its arguments),
 * made once per state and key while the state is in use: concurrent clients of one repository
 * version share one encoding of its refs. The bytes are shared: callers never change them.
 */
export function perState(state: RepoState, key: string, make: () => Uint8Array): Uint8Array {
  let byKey = encodedByState.get(state);
  if (byKey === undefined) {
    byKey = new Map();
    encodedByState.set(state, byKey);
  }
  const known = byKey.get(key);
  if (known !== undefined) return known;
  const bytes = make();
  if (byKey.size >= ENCODED_PER_STATE_MAX) byKey.delete(byKey.keys().next().value as string);
  byKey.set(key, bytes);
  return bytes;
}

/** What HEAD resolves to, or undefined when its branch is unborn. */
export function headEntry(state: RepoState): RefEntry | undefined {
  const v = state.refs.get(state.head);
  return v === undefined ? undefined : entry('HEAD', v);
}

/** The set of ref tips (unpeeled ids), as upload-pack's OUR_REF marks. */
export function refTips(state: RepoState): Set<ObjectId> {
  const s = new Set<ObjectId>();
  for (const v of state.refs.values()) s.add(v.oid as ObjectId);
  return s;
}

/** git's rev-parse rules, in order: the name, refs/, tags, heads, remotes, a remote's HEAD. */
const DWIM_RULES: readonly ((n: string) => string)[] = [
  (n) => n,
  (n) => `refs/${n}`,
  (n) => `refs/tags/${n}`,
  (n) => `refs/heads/${n}`,
  (n) => `refs/remotes/${n}`,
  (n) => `refs/remotes/${n}/HEAD`,
];

/** Result of expanding a short ref name. */
export type ExpandedRef =
  | { readonly kind: 'found'; readonly name: string; readonly oid: ObjectId }
  | { readonly kind: 'ambiguous'; readonly names: readonly string[] }
  | { readonly kind: 'none' };

/** Expands `short` as git's expand_ref: every rule that names an existing ref counts. */
export function expandRef(state: RepoState, short: string): ExpandedRef {
  const found: { name: string; oid: ObjectId }[] = [];
  for (const rule of DWIM_RULES) {
    const full = rule(short);
    if (full === 'HEAD') {
      const head = headEntry(state);
      if (head !== undefined) found.push({ name: 'HEAD', oid: head.oid });
      continue;
    }
    const v = state.refs.get(full);
    if (v !== undefined && !found.some((f) => f.name === full)) found.push({ name: full, oid: v.oid as ObjectId });
  }
  if (found.length === 0) return { kind: 'none' };
  if (found.length > 1) return { kind: 'ambiguous', names: found.map((f) => f.name) };
  const f = found[0] as { name: string; oid: ObjectId };
  return { kind: 'found', name: f.name, oid: f.oid };
}
