/**
 * Where the etcd meta store keeps things, and the JSON of each value. `<p>` is the
 * configured prefix (default `stowage/`).
 *
 * ```
 * <p>catalog/<name>                     RepoRecord JSON               one key per repository name
 * <p>repos/<id>/version                 "<integer>"                   bumped by every transaction
 * <p>repos/<id>/head                    the ref HEAD points at
 * <p>repos/<id>/refs/<refname>          RefValue JSON {"oid","peeled"?}
 * <p>repos/<id>/packs/<packname>        PackRecord JSON + addedIn (version) + seq (order within it)
 * <p>repos/<id>/last-txn                token of the last transaction (a retried writer finds its own)
 * <p>repos/<id>/journal                 pointer to a committed change too big for one etcd txn
 * <p>repos/<id>/~journal/<txn>/<n>      that change's operations, in chunks ('~' sorts last)
 * <p>nodes/<node-id>                    NodeInfo JSON, under a lease (membership.ts)
 * ```
 *
 * Split keys, not one state document: a push then writes only the refs it moves, the
 * transaction can compare exactly the refs it expects, and a repository with 100,000 refs
 * (several MiB) stays readable although one etcd value or request is limited to 1.5 MiB.
 * A repository's state is everything in [`repos/<id>/`, `repos/<id>/~`), read in one range
 * request at one revision (more pages at that same revision if it is huge).
 *
 * Decoders check every field and throw StoreError('META_CORRUPT'): garbage in etcd never
 * reaches the layers above.
 */
import { StoreError } from '../../core/errors.js';
import type { PackRecord, RefValue, RepoRecord } from '../meta-store.js';
import { PACK_SOURCES, checkSettings, cleanSettings, isCount, isObject, isText } from '../record-checks.js';

export { checkSettings };

/** The format number in every JSON document written; readers refuse others. */
export const ETCD_META_FORMAT = 1;

/** Repository ids: 32 hex from the default generator, or any safe key component. */
export const REPO_ID_RE = /^[A-Za-z0-9_-]{1,128}$/;


/** The keys of one deployment (one prefix). */
export class EtcdLayout {
  constructor(readonly prefix: string) {}

  get catalogPrefix(): string {
    return `${this.prefix}catalog/`;
  }
  catalogKey(name: string): string {
    return `${this.prefix}catalog/${name}`;
  }
  get reposPrefix(): string {
    return `${this.prefix}repos/`;
  }
  repoPrefix(id: string): string {
    return `${this.prefix}repos/${id}/`;
  }
  /** End of a repository's state range: its journal chunks ('~…') are read separately. */
  repoStateEnd(id: string): string {
    return `${this.prefix}repos/${id}/~`;
  }
  versionKey(id: string): string {
    return `${this.repoPrefix(id)}version`;
  }
  headKey(id: string): string {
    return `${this.repoPrefix(id)}head`;
  }
  refKey(id: string, ref: string): string {
    return `${this.repoPrefix(id)}refs/${ref}`;
  }
  packKey(id: string, pack: string): string {
    return `${this.repoPrefix(id)}packs/${pack}`;
  }
  lastTxnKey(id: string): string {
    return `${this.repoPrefix(id)}last-txn`;
  }
  journalKey(id: string): string {
    return `${this.repoPrefix(id)}journal`;
  }
  journalChunksPrefix(id: string): string {
    return `${this.repoPrefix(id)}~journal/`;
  }
  journalChunkPrefix(id: string, txn: string): string {
    return `${this.repoPrefix(id)}~journal/${txn}/`;
  }
  journalChunkKey(id: string, txn: string, n: number): string {
    return `${this.journalChunkPrefix(id, txn)}${String(n).padStart(6, '0')}`;
  }
  get nodesPrefix(): string {
    return `${this.prefix}nodes/`;
  }
  nodeKey(id: string): string {
    return `${this.prefix}nodes/${id}`;
  }
}

type Json = Record<string, unknown>;

/** The error for a value in etcd that is not what we write. */
export function corrupt(what: string, detail: string): StoreError {
  return new StoreError('META_CORRUPT', `etcd meta store: ${what} is corrupt (${detail}); restore it from a backup`);
}

function parseJson(bytes: Uint8Array | string, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new StoreError('META_CORRUPT', `etcd meta store: ${what} is not JSON; restore it from a backup`, { cause: err });
  }
  if (!isObject(value)) throw corrupt(what, 'not an object');
  return value;
}



/** A catalog entry's value. */
export function encodeRecord(record: RepoRecord): string {
  const { id, name, createdMs, settings } = record;
  return JSON.stringify({ format: ETCD_META_FORMAT, id, name, createdMs, settings });
}

/** Decodes a catalog entry; `name` is the one its key names. */
export function decodeRecord(bytes: Uint8Array, name: string): RepoRecord {
  const what = `catalog entry ${name}`;
  const doc = parseJson(bytes, what);
  if (doc['format'] !== ETCD_META_FORMAT) throw corrupt(what, `unknown format ${JSON.stringify(doc['format'])}`);
  const { id, createdMs } = doc;
  if (!isText(id) || !REPO_ID_RE.test(id) || doc['name'] !== name || typeof createdMs !== 'number') {
    throw corrupt(what, 'bad id, name or createdMs');
  }
  const settings = cleanSettings(doc['settings']);
  if (typeof settings === 'string') throw corrupt(what, settings);
  return Object.freeze({ id, name, createdMs, settings });
}

/** A ref's value: fixed field order, so equal values are equal bytes (etcd compares bytes). */
export function encodeRef(value: RefValue): string {
  return value.peeled === undefined
    ? JSON.stringify({ oid: value.oid })
    : JSON.stringify({ oid: value.oid, peeled: value.peeled });
}

/** Decodes a ref's value. */
export function decodeRef(text: string, what: string): RefValue {
  const doc = parseJson(text, what);
  const { oid, peeled } = doc;
  if (!isText(oid) || (peeled !== undefined && !isText(peeled))) throw corrupt(what, 'bad oid or peeled');
  return Object.freeze(peeled === undefined ? { oid } : { oid, peeled });
}

/** A visible pack with where it sits in the list: newest `addedIn` first, then `seq` ascending. */
export interface StoredPack {
  readonly record: PackRecord;
  /** The repository version whose transaction added it. */
  readonly addedIn: number;
  /** Its position among the packs that transaction added. */
  readonly seq: number;
}

/** A pack's value. */
export function encodePack(pack: StoredPack): string {
  const { name, size, objects, createdMs, source } = pack.record;
  return JSON.stringify({ name, size, objects, createdMs, source, addedIn: pack.addedIn, seq: pack.seq });
}

/** Decodes a pack (from its key or from a journal operation). */
export function decodePackJson(doc: unknown, what: string): StoredPack {
  if (!isObject(doc)) throw corrupt(what, 'pack is not an object');
  const { name, size, objects, createdMs, source, addedIn, seq } = doc;
  if (!isText(name) || !isCount(size) || !isCount(objects) || typeof createdMs !== 'number' || !isCount(addedIn) || !isCount(seq)) {
    throw corrupt(what, 'bad pack fields');
  }
  if (typeof source !== 'string' || !PACK_SOURCES.has(source)) throw corrupt(what, `bad pack source ${String(source)}`);
  const record: PackRecord = Object.freeze({ name, size, objects, createdMs, source: source as PackRecord['source'] });
  return { record, addedIn, seq };
}

/** Packs newest first: the order the store-backed meta store keeps. */
export function comparePacks(a: StoredPack, b: StoredPack): number {
  return b.addedIn - a.addedIn || a.seq - b.seq;
}

/** Decodes a version value. */
export function decodeVersion(text: string, what: string): number {
  if (!/^[1-9]\d{0,15}$/.test(text)) throw corrupt(what, 'not a version number');
  return Number(text);
}

/** One operation of a journalled change: its final effect on one key. */
export type JournalOp =
  | { readonly kind: 'ref'; readonly name: string; readonly value: RefValue | null }
  | { readonly kind: 'pack'; readonly name: string; readonly pack: StoredPack | null };

/** The pointer that makes a journalled change visible. */
export interface JournalPointer {
  readonly txn: string;
  readonly chunks: number;
  readonly version: number;
}

export function encodePointer(p: JournalPointer): string {
  return JSON.stringify({ format: ETCD_META_FORMAT, txn: p.txn, chunks: p.chunks, version: p.version });
}

export function decodePointer(text: string, what: string): JournalPointer {
  const doc = parseJson(text, what);
  const { txn, chunks, version } = doc;
  if (doc['format'] !== ETCD_META_FORMAT || !isText(txn) || !/^[a-z0-9-]{1,64}$/.test(txn) || !isCount(chunks) || !isCount(version)) {
    throw corrupt(what, 'bad journal pointer');
  }
  return { txn, chunks, version };
}

/** One chunk of journal operations, compactly: [kind, name, value-or-null]. */
export function encodeChunk(ops: readonly JournalOp[]): string {
  const items = ops.map((op) =>
    op.kind === 'ref'
      ? ['r', op.name, op.value === null ? null : encodeRef(op.value)]
      : ['p', op.name, op.pack === null ? null : encodePack(op.pack)],
  );
  return JSON.stringify({ format: ETCD_META_FORMAT, ops: items });
}

export function decodeChunk(text: string, what: string): JournalOp[] {
  const doc = parseJson(text, what);
  if (doc['format'] !== ETCD_META_FORMAT || !Array.isArray(doc['ops'])) throw corrupt(what, 'bad journal chunk');
  const ops: JournalOp[] = [];
  for (const item of doc['ops'] as unknown[]) {
    if (!Array.isArray(item) || item.length !== 3) throw corrupt(what, 'bad journal operation');
    const [kind, name, value] = item as unknown[];
    if (!isText(name) || (value !== null && typeof value !== 'string')) throw corrupt(what, 'bad journal operation');
    if (kind === 'r') ops.push({ kind: 'ref', name, value: value === null ? null : decodeRef(value, what) });
    else if (kind === 'p') ops.push({ kind: 'pack', name, pack: value === null ? null : decodePackJson(parseJson(value, what), what) });
    else throw corrupt(what, 'bad journal operation kind');
  }
  return ops;
}
