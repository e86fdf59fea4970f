/**
 * Per-id severity overrides, as git's `fsck.<msg-id>` / `receive.fsck.<msg-id>` settings:
 * ids match case-insensitively, values are error, warn or ignore, fatal ids stay errors.
 */
import { ValidationError } from '../../core/errors.js';
import { FSCK_DEFAULT_SEVERITY, FSCK_FATAL_IDS, fsckMsgIdFromName, type FsckMsgId, type FsckSeverity } from './msg-ids.js';

/** Severity overrides keyed by canonical (camelCase) message id. */
export type FsckConfig = Readonly<Record<string, 'error' | 'warn' | 'ignore'>>;

const CONFIG_PREFIXES = ['receive.fsck.', 'fetch.fsck.', 'transfer.fsck.', 'fsck.'];

/**
 * Validates overrides such as `{ hasDotdot: 'error', 'fsck.badTimezone': 'warn' }`; a leading
 * `fsck.`/`receive.fsck.`/`fetch.fsck.`/`transfer.fsck.` is accepted. Throws
 * ValidationError('CONFIG_INVALID') for unknown ids or values and for demoting a fatal id.
 */
export function parseFsckConfig(entries: Record<string, string>): FsckConfig {
  const out: Record<string, 'error' | 'warn' | 'ignore'> = {};
  for (const [rawKey, rawValue] of Object.entries(entries)) {
    let key = rawKey;
    const lower = key.toLowerCase();
    for (const p of CONFIG_PREFIXES) {
      if (lower.startsWith(p)) {
        key = key.slice(p.length);
        break;
      }
    }
    const id = fsckMsgIdFromName(key);
    if (id === undefined) {
      throw new ValidationError('CONFIG_INVALID', `unknown fsck message id ${JSON.stringify(rawKey)} (see git's fsck-msgids list)`);
    }
    const value = rawValue.trim().toLowerCase();
    if (value !== 'error' && value !== 'warn' && value !== 'ignore') {
      throw new ValidationError('CONFIG_INVALID', `fsck setting ${id} must be error, warn or ignore, got ${JSON.stringify(rawValue)}`);
    }
    if (value !== 'error' && FSCK_FATAL_IDS.has(id)) {
      throw new ValidationError('CONFIG_INVALID', `fsck message ${id} is fatal and cannot be set to ${value}`);
    }
    out[id] = value;
  }
  return Object.freeze(out);
}

/** The effective severity of `id` under `config` (overrides looked up case-insensitively). */
export function fsckSeverity(id: FsckMsgId, config: FsckConfig | undefined): FsckSeverity {
  if (config !== undefined) {
    const direct = config[id];
    if (direct !== undefined) return direct;
    for (const [k, v] of Object.entries(config)) {
      if (fsckMsgIdFromName(k) === id) return v;
    }
  }
  return FSCK_DEFAULT_SEVERITY[id];
}
