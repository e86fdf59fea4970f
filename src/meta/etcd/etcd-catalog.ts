/**
 * The catalog in etcd: one key per repository name (`<p>catalog/<name>` -> RepoRecord JSON),
 * each change one etcd transaction comparing what it read. A fresh repository's catalog key,
 * version and HEAD are created by one transaction, so a visible name always has a state.
 */
import { randomBytes } from 'node:crypto';
import type { IKeyValue, ITxnResponse } from 'etcd3';
import { ConflictError, NotFoundError, StoreError, ValidationError } from '../../core/errors.js';
import type { CreateRepoInput, RepoRecord, RepoSettings } from '../meta-store.js';
import { prefixEnd, type EtcdConnection } from './etcd-connection.js';
import { checkSettings, decodeRecord, encodeRecord, REPO_ID_RE, type EtcdLayout } from './etcd-layout.js';
import { absent, deleteOp, modIs, putOp, rangeOp } from './etcd-ops.js';

/** Lost races tolerated per catalog change (someone changed the same entry meanwhile). */
const CATALOG_ATTEMPTS = 20;

/** A change this process committed to the catalog: names set and names removed. */
export interface CatalogChange {
  readonly set?: RepoRecord;
  readonly remove?: string;
  readonly revision: number;
}

/** What the catalog needs from the meta store. */
export interface CatalogContext {
  readonly conn: EtcdConnection;
  readonly layout: EtcdLayout;
  readonly clock: () => number;
  readonly idGenerator: () => string;
  /** Called after each committed change (to update caches). */
  readonly committed: (change: CatalogChange) => void;
}

/** 16 random bytes in hex: unique across nodes without coordination. */
export function defaultRepoId(): string {
  return randomBytes(16).toString('hex');
}

export function repoNotFound(what: string): NotFoundError {
  return new NotFoundError('REPO_NOT_FOUND', `repository ${what} does not exist`);
}

function repoExists(name: string): ConflictError {
  return new ConflictError('REPO_EXISTS', `repository ${name} already exists`);
}

function contention(): StoreError {
  return new StoreError('META_CONTENTION', 'etcd meta store: too many concurrent changes to one catalog entry; try again');
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new ValidationError('REPO_BAD_NAME', 'a repository name must not be empty');
  }
}

/** The first key a failure branch's range read found, if any. */
function found(res: ITxnResponse, index: number): IKeyValue | undefined {
  return res.responses[index]?.response_range?.kvs[0];
}

/** Catalog operations (see the header). */
export class EtcdCatalog {
  constructor(private readonly ctx: CatalogContext) {}

  async create(input: CreateRepoInput): Promise<RepoRecord> {
    const settings = checkSettings(input.settings ?? {});
    checkName(input.name);
    if (typeof input.head !== 'string' || input.head.length === 0) {
      throw new ValidationError('ARG_INVALID', 'head must be a non-empty string');
    }
    const { conn, layout } = this.ctx;
    const key = layout.catalogKey(input.name);
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const id = this.ctx.idGenerator();
      if (!REPO_ID_RE.test(id)) throw new ValidationError('ARG_INVALID', `idGenerator made an unsafe id ${id}`);
      const record: RepoRecord = Object.freeze({ id, name: input.name, createdMs: this.ctx.clock(), settings });
      const res = await conn.txn(
        `create repository ${input.name}`,
        [absent(key), absent(layout.versionKey(id))],
        [putOp(key, encodeRecord(record)), putOp(layout.versionKey(id), '1'), putOp(layout.headKey(id), input.head)],
        [rangeOp(key)],
      );
      if (res.succeeded) {
        this.ctx.committed({ set: record, revision: Number(res.header.revision) });
        return record;
      }
      const existing = found(res, 0);
      if (existing !== undefined && res.retried && decodeRecord(existing.value, input.name).id === id) {
        // An earlier send of this very transaction was applied.
        this.ctx.committed({ set: record, revision: Number(existing.mod_revision) });
        return record;
      }
      if (existing !== undefined) throw repoExists(input.name);
      // The id is taken (vanishingly unlikely with random ids): draw another.
    }
    throw new StoreError('META_CONTENTION', 'etcd meta store: could not find an unused repository id');
  }

  async get(name: string): Promise<RepoRecord | undefined> {
    if (typeof name !== 'string' || name.length === 0) return undefined;
    const { kv } = await this.ctx.conn.get(`look up repository ${name}`, this.ctx.layout.catalogKey(name));
    return kv === undefined ? undefined : decodeRecord(kv.value, name);
  }

  /** Every entry, read at one revision. */
  async readAll(): Promise<{ repos: Map<string, RepoRecord>; revision: number }> {
    const { layout, conn } = this.ctx;
    const prefix = Buffer.from(layout.catalogPrefix);
    const { kvs, revision } = await conn.rangeAll('list repositories', prefix, prefixEnd(prefix));
    const repos = new Map<string, RepoRecord>();
    for (const kv of kvs) {
      const name = kv.key.toString('utf8').slice(layout.catalogPrefix.length);
      repos.set(name, decodeRecord(kv.value, name));
    }
    return { repos, revision };
  }

  async rename(from: string, to: string): Promise<RepoRecord> {
    checkName(to);
    if (from === to) {
      const record = await this.get(from);
      if (record === undefined) throw repoNotFound(from);
      return record;
    }
    const { conn, layout } = this.ctx;
    const fromKey = layout.catalogKey(from);
    const toKey = layout.catalogKey(to);
    for (let attempt = 0; attempt < CATALOG_ATTEMPTS; attempt += 1) {
      const current = await this.read(from);
      const renamed: RepoRecord = Object.freeze({ ...current.record, name: to });
      const res = await conn.txn(
        `rename repository ${from} to ${to}`,
        [modIs(fromKey, current.modRevision), absent(toKey)],
        [deleteOp(fromKey), putOp(toKey, encodeRecord(renamed))],
        [rangeOp(fromKey), rangeOp(toKey)],
      );
      if (res.succeeded) {
        this.ctx.committed({ set: renamed, remove: from, revision: Number(res.header.revision) });
        return renamed;
      }
      const target = found(res, 1);
      if (res.retried && found(res, 0) === undefined && target !== undefined && decodeRecord(target.value, to).id === renamed.id) {
        this.ctx.committed({ set: renamed, remove: from, revision: Number(target.mod_revision) });
        return renamed; // an earlier send of this very transaction was applied
      }
      if (found(res, 0) === undefined) throw repoNotFound(from);
      if (target !== undefined) throw repoExists(to);
    }
    throw contention();
  }

  async updateSettings(name: string, settings: RepoSettings): Promise<RepoRecord> {
    const clean = checkSettings(settings);
    return this.replace(name, `update the settings of repository ${name}`, (record) => Object.freeze({ ...record, settings: clean }));
  }

  async delete(name: string): Promise<RepoRecord> {
    return this.replace(name, `delete repository ${name}`, () => undefined);
  }

  /** Replaces (or with undefined, deletes) one entry if nobody changed it since it was read. */
  private async replace(name: string, what: string, change: (record: RepoRecord) => RepoRecord | undefined): Promise<RepoRecord> {
    const key = this.ctx.layout.catalogKey(name);
    for (let attempt = 0; attempt < CATALOG_ATTEMPTS; attempt += 1) {
      const current = await this.read(name);
      const next = change(current.record);
      const op = next === undefined ? deleteOp(key) : putOp(key, encodeRecord(next));
      const res = await this.ctx.conn.txn(what, [modIs(key, current.modRevision)], [op], [rangeOp(key)]);
      if (res.succeeded) {
        const revision = Number(res.header.revision);
        this.ctx.committed(next === undefined ? { remove: name, revision } : { set: next, revision });
        return next ?? current.record;
      }
      const now = found(res, 0);
      if (res.retried && (next === undefined ? now === undefined : now?.value.toString('utf8') === encodeRecord(next))) {
        // An earlier send of this very transaction was applied (or an identical change was).
        const revision = now === undefined ? Number(res.header.revision) : Number(now.mod_revision);
        this.ctx.committed(next === undefined ? { remove: name, revision } : { set: next, revision });
        return next ?? current.record;
      }
      if (now === undefined) throw repoNotFound(name);
    }
    throw contention();
  }

  private async read(name: string): Promise<{ record: RepoRecord; modRevision: number }> {
    if (typeof name !== 'string' || name.length === 0) throw repoNotFound(String(name));
    const { kv } = await this.ctx.conn.get(`look up repository ${name}`, this.ctx.layout.catalogKey(name));
    if (kv === undefined) throw repoNotFound(name);
    return { record: decodeRecord(kv.value, name), modRevision: Number(kv.mod_revision) };
  }
}
