/**
 * JSON encodings of the store-backed meta store's two documents: a repository state version
 * and a catalog version. Decoders check every field and throw StoreError('META_CORRUPT') on
 * anything else, so garbage in the store never reaches the layers above.
 *
 * Lists are JSON arrays (refs as `[name, oid]` or `[name, oid, peeled]` tuples, catalog
 * entries as records), never objects keyed by a user-chosen name, so no name can collide
 * with a JavaScript object property such as `__proto__`.
 */
import { StoreError } from '../../core/errors.js';
import type { PackRecord, RefValue, RepoRecord, RepoState } from '../meta-store.js';
import { PACK_SOURCES, checkSettings, cleanSettings, isCount, isObject, isText } from '../record-checks.js';

export { checkSettings };

/** The format number written into every document; readers refuse others. */
export const META_FORMAT = 1;

/** A catalog snapshot: names to records, with its version (0: nothing written yet). */
export interface Catalog {
  readonly version: number;
  readonly repos: ReadonlyMap<string, RepoRecord>;
}


type Json = Record<string, unknown>;

function corrupt(what: string, detail: string): StoreError {
  return new StoreError('META_CORRUPT', `meta store: ${what} is corrupt (${detail}); restore it from a backup`);
}

function parse(bytes: Uint8Array, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new StoreError('META_CORRUPT', `meta store: ${what} is not JSON; restore it from a backup`, { cause: err });
  }
  if (!isObject(value)) throw corrupt(what, 'not an object');
  if (value.format !== META_FORMAT) throw corrupt(what, `unknown format ${JSON.stringify(value.format)}`);
  return value;
}



/** Encodes one repository state version. */
export function encodeState(state: RepoState, writtenMs: number): Uint8Array {
  const refs: (readonly [string, string] | readonly [string, string, string])[] = [];
  for (const [name, value] of state.refs) {
    refs.push(value.peeled === undefined ? [name, value.oid] : [name, value.oid, value.peeled]);
  }
  const doc = { format: META_FORMAT, version: state.version, writtenMs, head: state.head, refs, packs: state.packs };
  return Buffer.from(JSON.stringify(doc));
}

function decodePack(value: unknown): PackRecord | string {
  if (!isObject(value)) return 'pack is not an object';
  const { name, size, objects, createdMs, source } = value;
  if (!isText(name) || !isCount(size) || !isCount(objects) || typeof createdMs !== 'number') return 'bad pack fields';
  if (typeof source !== 'string' || !PACK_SOURCES.has(source)) return `bad pack source ${String(source)}`;
  return Object.freeze({ name, size, objects, createdMs, source: source as PackRecord['source'] });
}

/** Decodes one repository state version; `version` is the one its key names. */
export function decodeState(bytes: Uint8Array, version: number, what: string): RepoState {
  const doc = parse(bytes, what);
  if (doc.version !== version) throw corrupt(what, `holds version ${String(doc.version)}`);
  if (!isText(doc.head)) throw corrupt(what, 'head is not a ref name');
  if (!Array.isArray(doc.refs) || !Array.isArray(doc.packs)) throw corrupt(what, 'refs or packs is not a list');
  const refs = new Map<string, RefValue>();
  for (const item of doc.refs as unknown[]) {
    if (!Array.isArray(item) || (item.length !== 2 && item.length !== 3)) throw corrupt(what, 'bad ref entry');
    const [name, oid, peeled] = item as unknown[];
    if (!isText(name) || !isText(oid) || (peeled !== undefined && !isText(peeled))) throw corrupt(what, 'bad ref entry');
    if (refs.has(name)) throw corrupt(what, `ref ${name} listed twice`);
    refs.set(name, peeled === undefined ? Object.freeze({ oid }) : Object.freeze({ oid, peeled }));
  }
  const packs: PackRecord[] = [];
  for (const item of doc.packs as unknown[]) {
    const pack = decodePack(item);
    if (typeof pack === 'string') throw corrupt(what, pack);
    packs.push(pack);
  }
  return Object.freeze({ version, head: doc.head, refs, packs: Object.freeze(packs) });
}

/** Encodes one catalog version. */
export function encodeCatalog(catalog: Catalog, writtenMs: number): Uint8Array {
  const repos = [...catalog.repos.values()];
  return Buffer.from(JSON.stringify({ format: META_FORMAT, version: catalog.version, writtenMs, repos }));
}

/** Decodes one catalog version; `version` is the one its key names. */
export function decodeCatalog(bytes: Uint8Array, version: number, what: string): Catalog {
  const doc = parse(bytes, what);
  if (doc.version !== version) throw corrupt(what, `holds version ${String(doc.version)}`);
  if (!Array.isArray(doc.repos)) throw corrupt(what, 'repos is not a list');
  const repos = new Map<string, RepoRecord>();
  for (const item of doc.repos as unknown[]) {
    if (!isObject(item)) throw corrupt(what, 'repo entry is not an object');
    const { id, name, createdMs } = item;
    if (!isText(id) || !isText(name) || typeof createdMs !== 'number') throw corrupt(what, 'bad repo entry');
    const settings = cleanSettings(item.settings);
    if (typeof settings === 'string') throw corrupt(what, settings);
    if (repos.has(name)) throw corrupt(what, `repository ${name} listed twice`);
    repos.set(name, Object.freeze({ id, name, createdMs, settings }));
  }
  return { version, repos };
}
