/**
 * One repository's state as held in memory: the keys under `repos/<id>/` as of one etcd
 * revision, kept current by watch events (whole revisions at a time) and by this process's
 * own commits. A pending journal (a committed change too big for one etcd transaction) is
 * kept with its operations and laid over the keys when a snapshot is taken.
 */
import type { IKeyValue } from 'etcd3';
import type { RefValue, RepoState } from '../meta-store.js';
import {
  comparePacks,
  corrupt,
  decodeChunk,
  decodePackJson,
  decodePointer,
  decodeRef,
  decodeVersion,
  encodeRef,
  type EtcdLayout,
  type JournalOp,
  type JournalPointer,
  type StoredPack,
} from './etcd-layout.js';

/** A pending journalled change: its pointer, the pointer key's mod revision, its operations. */
export interface PendingJournal {
  readonly pointer: JournalPointer;
  readonly modRevision: number;
  readonly ops: readonly JournalOp[];
}

/** Whether a watch event left the cache usable. */
export type ApplyResult = 'applied' | 'drop';

/** A repository's keys in memory (see the header). Snapshots are immutable; the cache is not. */
export class RepoCache {
  /** The cache equals etcd's keys of this repository as of this revision. */
  revision: number;
  /** The watch epoch whose events keep it current, or -1 if none does. */
  epoch: number;
  version: number;
  head: string;
  private refs: Map<string, RefValue>;
  /** Refs whose stored bytes are not our canonical encoding (written by someone else). */
  private readonly rawRefs = new Map<string, string>();
  private readonly packs: Map<string, StoredPack>;
  journal: PendingJournal | undefined;
  private memo: RepoState | undefined;
  /** Whether `refs` is shared with `memo` (copy before changing it). */
  private shared = false;

  private constructor(revision: number, version: number, head: string, refs: Map<string, RefValue>, packs: Map<string, StoredPack>) {
    this.revision = revision;
    this.epoch = -1;
    this.version = version;
    this.head = head;
    this.refs = refs;
    this.packs = packs;
  }

  /**
   * Builds a cache from one range read of a repository's state keys at `revision`, plus
   * its pending journal's chunks read at that same revision. Undefined: no such repository.
   */
  static fromRange(layout: EtcdLayout, id: string, kvs: readonly IKeyValue[], revision: number, chunks: readonly IKeyValue[]): RepoCache | undefined {
    const prefix = layout.repoPrefix(id);
    const cache = new RepoCache(revision, 0, '', new Map(), new Map());
    let pointer: { pointer: JournalPointer; modRevision: number } | undefined;
    let seenVersion = false;
    for (const kv of kvs) {
      const suffix = kv.key.toString('utf8').slice(prefix.length);
      if (suffix === 'journal') {
        pointer = { pointer: decodePointer(kv.value.toString('utf8'), `journal of ${id}`), modRevision: Number(kv.mod_revision) };
        continue;
      }
      if (suffix === 'version') seenVersion = true;
      cache.put(id, suffix, kv);
    }
    if (!seenVersion) return undefined;
    if (cache.head === '') throw corrupt(`repository ${id}`, 'no head key');
    if (pointer !== undefined) cache.journal = { ...pointer, ops: chunkOps(layout, id, pointer.pointer, chunks) };
    return cache;
  }

  /** Applies one watch event (key suffix under `repos/<id>/`); 'drop' when the cache must be re-read. */
  apply(id: string, suffix: string, type: 'Put' | 'Delete', kv: IKeyValue, revision: number): ApplyResult {
    if (suffix.startsWith('~')) return 'applied'; // journal chunks: read with their pointer
    if (suffix === 'journal') {
      // A big change landed: re-read it with its chunks (unless this is the one already held).
      if (type === 'Put') return this.journal?.modRevision === revision ? 'applied' : 'drop';
      this.journal = undefined; // folded: the keys now hold its operations
    } else if (type === 'Put') {
      this.put(id, suffix, kv);
    } else if (suffix.startsWith('refs/')) {
      this.mutableRefs().delete(suffix.slice(5));
      this.rawRefs.delete(suffix.slice(5));
    } else if (suffix.startsWith('packs/')) {
      this.packs.delete(suffix.slice(6));
    } else {
      return 'drop'; // version or head deleted: not something we do
    }
    this.revision = revision;
    this.memo = undefined;
    return 'applied';
  }

  /** The value etcd holds for a ref (undefined: absent); only meaningful without a journal. */
  storedRef(name: string): { value: RefValue; raw: string } | undefined {
    const value = this.refs.get(name);
    if (value === undefined) return undefined;
    return { value, raw: this.rawRefs.get(name) ?? encodeRef(value) };
  }

  /** A visible pack by name (journal included). */
  hasPack(name: string): boolean {
    if (this.journal !== undefined) return this.snapshot().packs.some((p) => p.name === name);
    return this.packs.has(name);
  }

  /** The repository's state as of `revision`, journal laid over; cached until the next change. */
  snapshot(): RepoState {
    if (this.memo !== undefined) return this.memo;
    let refs: Map<string, RefValue> = this.refs;
    let packs: Map<string, StoredPack> = this.packs;
    if (this.journal === undefined) {
      this.shared = true;
    } else {
      refs = new Map(refs);
      packs = new Map(packs);
      overlay(refs, packs, this.journal.ops);
    }
    const list = [...packs.values()].sort(comparePacks).map((p) => p.record);
    this.memo = Object.freeze({ version: this.version, head: this.head, refs, packs: Object.freeze(list) });
    return this.memo;
  }

  /**
   * An independent copy holding the effective state (journal folded in), for building the
   * next state. Cheap without a journal: the refs map is shared copy-on-write.
   */
  fork(): RepoCache {
    if (this.journal !== undefined) {
      const refs = new Map(this.refs);
      const packs = new Map(this.packs);
      overlay(refs, packs, this.journal.ops);
      return new RepoCache(this.revision, this.version, this.head, refs, packs);
    }
    const copy = new RepoCache(this.revision, this.version, this.head, this.refs, new Map(this.packs));
    this.shared = true;
    copy.shared = true;
    for (const [name, raw] of this.rawRefs) copy.rawRefs.set(name, raw);
    return copy;
  }

  /** Applies a transaction's operations and moves to `version` at `revision` (own commits). */
  commit(ops: readonly JournalOp[], head: string, version: number, revision: number): void {
    const refs = this.mutableRefs();
    for (const op of ops) if (op.kind === 'ref') this.rawRefs.delete(op.name);
    overlay(refs, this.packs, ops);
    this.head = head;
    this.version = version;
    this.revision = revision;
    this.memo = undefined;
  }

  /** Packs by name with their order (no journal). */
  packEntries(): ReadonlyMap<string, StoredPack> {
    return this.packs;
  }

  private mutableRefs(): Map<string, RefValue> {
    if (this.shared) {
      this.refs = new Map(this.refs);
      this.shared = false;
    }
    return this.refs;
  }

  private put(id: string, suffix: string, kv: IKeyValue): void {
    const text = kv.value.toString('utf8');
    if (suffix === 'version') {
      this.version = decodeVersion(text, `version of ${id}`);
    } else if (suffix === 'head') {
      if (text === '') throw corrupt(`head of ${id}`, 'empty');
      this.head = text;
    } else if (suffix.startsWith('refs/') && suffix.length > 5) {
      const name = suffix.slice(5);
      const value = decodeRef(text, `ref ${name} of ${id}`);
      this.mutableRefs().set(name, value);
      if (encodeRef(value) === text) this.rawRefs.delete(name);
      else this.rawRefs.set(name, text);
    } else if (suffix.startsWith('packs/') && suffix.length > 6) {
      const name = suffix.slice(6);
      const pack = decodePackJson(JSON.parse(text) as unknown, `pack ${name} of ${id}`);
      if (pack.record.name !== name) throw corrupt(`pack ${name} of ${id}`, 'names another pack');
      this.packs.set(name, pack);
    }
    // Other keys are not ours to interpret; newer versions may add some.
  }
}

/** Lays journal operations over refs and packs (final values per key). */
export function overlay(refs: Map<string, RefValue>, packs: Map<string, StoredPack>, ops: readonly JournalOp[]): void {
  for (const op of ops) {
    if (op.kind === 'ref') {
      if (op.value === null) refs.delete(op.name);
      else refs.set(op.name, op.value);
    } else if (op.pack === null) {
      packs.delete(op.name);
    } else {
      packs.set(op.name, op.pack);
    }
  }
}

/** The operations of a pointer's chunks; every chunk must be there. */
function chunkOps(layout: EtcdLayout, id: string, pointer: JournalPointer, kvs: readonly IKeyValue[]): JournalOp[] {
  const byKey = new Map(kvs.map((kv) => [kv.key.toString('utf8'), kv.value.toString('utf8')]));
  const ops: JournalOp[] = [];
  for (let n = 0; n < pointer.chunks; n += 1) {
    const key = layout.journalChunkKey(id, pointer.txn, n);
    const text = byKey.get(key);
    if (text === undefined) throw corrupt(`journal ${pointer.txn} of ${id}`, `chunk ${n} is missing`);
    ops.push(...decodeChunk(text, key));
  }
  return ops;
}
