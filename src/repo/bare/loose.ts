/**
 * Small on-disk formats of a git directory: HEAD and loose ref files (`ref: <name>` or an
 * object id), and loose objects (zlib of `<type> <size>\0<content>`).
 */
import { readFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { ValidationError } from '../../core/errors.js';
import { hashObject, isObjectId, type ObjectId } from '../../git/hash/object-id.js';
import { isObjectType, type GitObject } from '../../git/object/object-type.js';

/** What a HEAD or loose ref file holds. */
export type RefFile = { readonly kind: 'symref'; readonly target: string } | { readonly kind: 'oid'; readonly oid: ObjectId };

/** Parses a HEAD or loose ref file; undefined if it is neither form. */
export function readHead(text: string): RefFile | undefined {
  const t = text.trim();
  if (t.startsWith('ref:')) {
    const target = t.slice(4).trim();
    return target.startsWith('refs/') ? { kind: 'symref', target } : undefined;
  }
  return isObjectId(t) ? { kind: 'oid', oid: t } : undefined;
}

/** Longest loose object header: "<type> <size>\0" with a 10-digit size. */
const LOOSE_HEADER_MAX = 32;

/** Reads, inflates and checks a loose object; ValidationError('OBJ_CORRUPT') if it is not `oid`. */
export async function readLooseObject(path: string, oid: ObjectId): Promise<GitObject> {
  let raw: Buffer;
  try {
    raw = inflateSync(await readFile(path));
  } catch (err) {
    throw new ValidationError('OBJ_CORRUPT', `loose object ${oid} (${path}) is not valid zlib data`, { cause: err });
  }
  const nul = raw.indexOf(0);
  const sp = raw.indexOf(0x20);
  if (nul < 0 || nul > LOOSE_HEADER_MAX || sp < 0 || sp > nul) {
    throw new ValidationError('OBJ_CORRUPT', `loose object ${oid} (${path}) has no valid header`);
  }
  const type = raw.toString('latin1', 0, sp);
  const size = Number(raw.toString('latin1', sp + 1, nul));
  const data = raw.subarray(nul + 1);
  if (!isObjectType(type) || size !== data.length || hashObject(type, data) !== oid) {
    throw new ValidationError('OBJ_CORRUPT', `loose object ${oid} (${path}) is corrupt: its content does not match its name`);
  }
  return { type, data };
}
