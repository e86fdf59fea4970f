/**
 * SHA-1 object ids (object-format=sha1). An ObjectId is 40 lowercase hex digits; it is
 * minted only by the functions here, so holding one means it was checked.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../../core/errors.js';

export type ObjectId = string & { readonly __brand: 'ObjectId' };

/** Raw length of a SHA-1 id in bytes. */
export const OID_RAW_LENGTH = 20;
/** Length of a SHA-1 id in hex digits. */
export const OID_HEX_LENGTH = 40;
/** The all-zero id git uses for "no object" in ref updates. */
export const ZERO_OID = '0'.repeat(OID_HEX_LENGTH) as ObjectId;

const HEX_RE = /^[0-9a-f]{40}$/;

/** True if `s` is 40 lowercase hex digits. */
export function isObjectId(s: string): s is ObjectId {
  return s.length === OID_HEX_LENGTH && HEX_RE.test(s);
}

/** Checks and brands a hex id; throws ValidationError('OBJ_BAD_ID'). */
export function parseObjectId(hex: string): ObjectId {
  if (!isObjectId(hex)) {
    throw new ValidationError('OBJ_BAD_ID', `invalid object id ${JSON.stringify(hex.slice(0, 64))}`);
  }
  return hex;
}

/** Reads a 20-byte raw id at `offset`. The caller guarantees 20 bytes are there. */
export function objectIdFromBytes(bytes: Uint8Array, offset = 0): ObjectId {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, OID_RAW_LENGTH).toString('hex') as ObjectId;
}

/** The 20 raw bytes of an id. */
export function objectIdToBytes(id: ObjectId): Uint8Array {
  return Buffer.from(id, 'hex');
}

/** Names the git object of `type` with `data`: sha1("<type> <size>\0" + data). */
export function hashObject(type: string, data: Uint8Array): ObjectId {
  const h = createHash('sha1');
  h.update(`${type} ${data.length}\0`);
  h.update(data);
  return h.digest('hex') as ObjectId;
}
