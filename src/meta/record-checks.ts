/**
 * The shape checks every MetaStore applies to what callers give it (transactions, settings) and
 * to what it reads back, so all implementations refuse the same malformed input alike.
 */
import { ValidationError } from '../core/errors.js';
import type { RepoSettings, Transaction } from './meta-store.js';

/** Why a pack may exist (PackRecord.source). */
export const PACK_SOURCES: ReadonlySet<string> = new Set(['receive', 'import', 'compact', 'gc']);

export function checkText(value: unknown, what: string): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ValidationError('ARG_INVALID', `${what} must be a non-empty string`);
  }
}

/** Validates a transaction's shape; throws ValidationError as the store-backed meta store does. */
export function checkTransaction(txn: Transaction): void {
  const seen = new Set<string>();
  for (const change of txn.refs ?? []) {
    checkText(change.name, 'a ref name');
    if (seen.has(change.name)) {
      throw new ValidationError('REF_BAD_NAME', `ref ${change.name} appears twice in one transaction`);
    }
    seen.add(change.name);
    const kind: unknown = change.expected?.kind;
    if (kind !== 'any' && kind !== 'must-exist' && kind !== 'must-not-exist' && kind !== 'must-match') {
      throw new ValidationError('ARG_INVALID', `ref ${change.name} has an unknown expectation ${String(kind)}`);
    }
    if (change.expected.kind === 'must-match') checkText(change.expected.oid, `the expected value of ${change.name}`);
    if (change.value !== null) {
      checkText(change.value.oid, `the new value of ${change.name}`);
      if (change.value.peeled !== undefined) checkText(change.value.peeled, `the peeled value of ${change.name}`);
    }
  }
  if (txn.setHead !== undefined) checkText(txn.setHead, 'HEAD');
  for (const pack of txn.addPacks ?? []) {
    checkText(pack.name, 'a pack name');
    const counts = [pack.size, pack.objects];
    if (!counts.every((n) => Number.isSafeInteger(n) && n >= 0) || !Number.isFinite(pack.createdMs)) {
      throw new ValidationError('ARG_INVALID', `pack ${pack.name} has an invalid size, object count or time`);
    }
    if (!PACK_SOURCES.has(pack.source)) {
      throw new ValidationError('ARG_INVALID', `pack ${pack.name} has an unknown source ${String(pack.source)}`);
    }
  }
  for (const name of txn.removePacks ?? []) checkText(name, 'a pack name to remove');
}

const FSCK_LEVELS: ReadonlySet<string> = new Set(['error', 'warn', 'ignore']);

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A whole number from 0 up to the safe-integer limit. */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A non-empty string. */
export function isText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/** Settings from a caller or from storage: a clean copy, or why not. */
export function cleanSettings(value: unknown): RepoSettings | string {
  if (!isObject(value)) return 'settings is not an object';
  const out: { fsck?: Record<string, 'error' | 'warn' | 'ignore'>; description?: string } = {};
  const fsck = value['fsck'];
  if (fsck !== undefined) {
    if (!isObject(fsck)) return 'settings.fsck is not an object';
    const entries: [string, 'error' | 'warn' | 'ignore'][] = [];
    for (const [id, level] of Object.entries(fsck)) {
      if (typeof level !== 'string' || !FSCK_LEVELS.has(level)) return `settings.fsck.${id} is not error|warn|ignore`;
      entries.push([id, level as 'error' | 'warn' | 'ignore']);
    }
    out.fsck = Object.fromEntries(entries);
  }
  const description = value['description'];
  if (description !== undefined) {
    if (typeof description !== 'string') return 'settings.description is not a string';
    out.description = description;
  }
  return out;
}

/** Validates settings given by a caller; throws ValidationError('ARG_INVALID'). */
export function checkSettings(settings: RepoSettings): RepoSettings {
  const clean = cleanSettings(settings);
  if (typeof clean === 'string') throw new ValidationError('ARG_INVALID', `invalid repository ${clean}`);
  return clean;
}
