/**
 * The bytes of one stored block: a 32-byte header, then the payload.
 *   0  4  magic "SNBK"
 *   4  1  version (1)
 *   5  3  reserved (zero)
 *   8  8  lease epoch of the writer (big-endian), for diagnosis and fencing audits
 *  16 16  first 16 bytes of sha256(block index u64be || epoch u64be || payload)
 * The object store has no per-object metadata, so the checksum travels in the object. Hashing
 * the block index too catches an object stored (or renamed) under the wrong key.
 */
import { createHash } from 'node:crypto';
import { StoreError } from '../../core/errors.js';

/** Header length in bytes. */
export const BLOCK_HEADER_LENGTH = 32;
const MAGIC = Buffer.from('SNBK', 'latin1');
const VERSION = 1;

function digest(index: number, epoch: number, payload: Uint8Array): Buffer {
  const pre = Buffer.alloc(16);
  pre.writeBigUInt64BE(BigInt(index), 0);
  pre.writeBigUInt64BE(BigInt(epoch), 8);
  return createHash('sha256').update(pre).update(payload).digest().subarray(0, 16);
}

/** Encodes a block: a fresh buffer (the payload is copied, so the caller may change it after). */
export function encodeBlock(index: number, epoch: number, payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(BLOCK_HEADER_LENGTH + payload.byteLength);
  MAGIC.copy(out, 0);
  out.writeUInt32BE(VERSION << 24, 4);
  out.writeBigUInt64BE(BigInt(epoch), 8);
  out.set(payload, BLOCK_HEADER_LENGTH);
  digest(index, epoch, out.subarray(BLOCK_HEADER_LENGTH)).copy(out, 16);
  return out;
}

/** A decoded block: its payload (a view into the input) and the writer's epoch. */
export interface DecodedBlock {
  readonly payload: Buffer;
  readonly epoch: number;
}

/** Decodes and verifies a stored block; StoreError('STORE_IO') on any corruption (an EIO). */
export function decodeBlock(key: string, index: number, bytes: Uint8Array): DecodedBlock {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.byteLength < BLOCK_HEADER_LENGTH || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== VERSION) {
    throw new StoreError('STORE_IO', `block ${key} is corrupt: bad header`);
  }
  const epoch = Number(buf.readBigUInt64BE(8));
  const payload = buf.subarray(BLOCK_HEADER_LENGTH);
  if (!digest(index, epoch, payload).equals(buf.subarray(16, 32))) {
    throw new StoreError('STORE_IO', `block ${key} is corrupt: checksum mismatch`);
  }
  return { payload, epoch };
}
