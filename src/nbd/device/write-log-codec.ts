/**
 * The bytes of a volume's write log (write-log.ts). Keys, under `nbd/<name>/log/`:
 *   <epoch 12 digits>-<seq 12 digits>   a segment written by the holder of that lease epoch
 *   <epoch 12 digits>-seal              the segments of older epochs that holder accepted
 * Key order is write order: epochs grow, sequence numbers grow within an epoch, and a seal
 * ('s' sorts after digits) follows its epoch's segments.
 *
 * A segment is whole encoded blocks (block-codec.ts, exactly the bytes a block object would
 * hold, so a record read back verifies with the block codec), then a trailer of one 24-byte
 * entry per record, then a 20-byte footer:
 *   entry:  0 8  block index u64be   8 8  offset u64be   16 4  length u32be
 *          20 1  kind (1 block, 2 tombstone: the block was deleted, 3 newer: the block
 *                object was put directly after this point and holds newer data)   21 3  zero
 *   footer: 0 4  entry count u32be   4 4  trailer length u32be (count * 24)
 *           8 4  CRC-32 of the entries and the first 8 footer bytes   12 8  magic "STWLOG01"
 * A put is atomic, so a half-written segment cannot exist; the CRC catches damage, and a
 * segment whose trailer does not verify fails the volume's open (its blocks are unknown).
 */
import { crc32 } from 'node:zlib';
import { StoreError } from '../../core/errors.js';

/** Bytes per trailer entry. */
export const LOG_ENTRY_LENGTH = 24;
/** Bytes of the footer. */
export const LOG_FOOTER_LENGTH = 20;
const MAGIC = Buffer.from('STWLOG01', 'latin1');
const KIND_BLOCK = 1;
const KIND_TOMB = 2;
const KIND_NEWER = 3;
const TWO32 = 2 ** 32;

/**
 * One record of a segment: a block's encoded bytes at offset/length, a tombstone, or a marker
 * `newer` (the block object is newer than any earlier record of the block); the last two have
 * offset and length 0.
 */
export interface LogRecord {
  readonly index: number;
  readonly offset: number;
  readonly length: number;
  readonly tomb: boolean;
  readonly newer?: true;
}

/** What a log key names. */
export type LogKey = { readonly kind: 'segment'; readonly epoch: number; readonly seq: number } | { readonly kind: 'seal'; readonly epoch: number };

/** `nbd/<name>/log/` (the name is checked by the caller, volume-layout.ts). */
export function logPrefix(name: string): string {
  return `nbd/${name}/log/`;
}

function digits12(n: number): string {
  return String(n).padStart(12, '0');
}

/** The key tail of segment `seq` of lease epoch `epoch`. */
export function segmentName(epoch: number, seq: number): string {
  return `${digits12(epoch)}-${digits12(seq)}`;
}

/** The key tail of the seal written by the holder of `epoch`. */
export function sealName(epoch: number): string {
  return `${digits12(epoch)}-seal`;
}

/** What a key tail under logPrefix names; undefined for anything else. */
export function parseLogName(tail: string): LogKey | undefined {
  const m = /^(\d{12})-(\d{12}|seal)$/.exec(tail);
  if (m === null) return undefined;
  const epoch = Number(m[1]);
  return m[2] === 'seal' ? { kind: 'seal', epoch } : { kind: 'segment', epoch, seq: Number(m[2]) };
}

/** Length of the trailer and footer of `count` records. */
export function trailerLength(count: number): number {
  return count * LOG_ENTRY_LENGTH + LOG_FOOTER_LENGTH;
}

/** Writes the trailer and footer of `records` into `out` at `at` (trailerLength(n) bytes). */
export function writeTrailer(records: readonly LogRecord[], out: Buffer, at: number): void {
  let p = at;
  for (const r of records) {
    out.writeUInt32BE(Math.floor(r.index / TWO32), p);
    out.writeUInt32BE(r.index % TWO32, p + 4);
    out.writeUInt32BE(Math.floor(r.offset / TWO32), p + 8);
    out.writeUInt32BE(r.offset % TWO32, p + 12);
    const kind = r.newer === true ? KIND_NEWER : r.tomb ? KIND_TOMB : KIND_BLOCK;
    out.writeUInt32BE(kind === KIND_BLOCK ? r.length : 0, p + 16);
    out.writeUInt32BE(kind * 0x1000000, p + 20);
    p += LOG_ENTRY_LENGTH;
  }
  out.writeUInt32BE(records.length, p);
  out.writeUInt32BE(records.length * LOG_ENTRY_LENGTH, p + 4);
  out.writeUInt32BE(crc32(out.subarray(at, p + 8)), p + 8);
  MAGIC.copy(out, p + 12);
}

function damaged(key: string, why: string): StoreError {
  return new StoreError(
    'STORE_IO',
    `write log segment ${key} is damaged (${why}); the blocks it holds cannot be read. Restore the object from a backup, or delete it to fall back to the older data of those blocks`,
  );
}

/**
 * The length of the trailer and footer of a segment of `size` bytes, from a tail of it (at
 * least its last LOG_FOOTER_LENGTH bytes). Throws StoreError when the footer is damaged.
 */
export function readFooter(key: string, tail: Uint8Array, size: number): number {
  const buf = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  if (size < LOG_FOOTER_LENGTH || buf.byteLength < LOG_FOOTER_LENGTH) throw damaged(key, `${size} bytes is too short for a footer`);
  const f = buf.byteLength - LOG_FOOTER_LENGTH;
  if (!buf.subarray(f + 12, f + 20).equals(MAGIC)) throw damaged(key, 'bad footer magic');
  const count = buf.readUInt32BE(f);
  const length = buf.readUInt32BE(f + 4);
  if (length !== count * LOG_ENTRY_LENGTH || length + LOG_FOOTER_LENGTH > size) throw damaged(key, 'bad trailer length');
  return length + LOG_FOOTER_LENGTH;
}

/**
 * The records of a segment of `size` bytes, from a tail holding at least its trailer and
 * footer. Throws StoreError on any damage: bad magic, lengths, CRC, kinds, or a record that
 * reaches outside the data area.
 */
export function parseTrailer(key: string, tail: Uint8Array, size: number): LogRecord[] {
  const need = readFooter(key, tail, size);
  if (tail.byteLength < need) throw damaged(key, 'the tail read is shorter than the trailer');
  const buf = Buffer.from(tail.buffer, tail.byteOffset + tail.byteLength - need, need);
  const f = need - LOG_FOOTER_LENGTH;
  if (crc32(buf.subarray(0, f + 8)) !== buf.readUInt32BE(f + 8)) throw damaged(key, 'trailer checksum mismatch');
  const dataEnd = size - need;
  const out: LogRecord[] = [];
  for (let p = 0; p < f; p += LOG_ENTRY_LENGTH) {
    const index = buf.readUInt32BE(p) * TWO32 + buf.readUInt32BE(p + 4);
    const offset = buf.readUInt32BE(p + 8) * TWO32 + buf.readUInt32BE(p + 12);
    const length = buf.readUInt32BE(p + 16);
    const kindWord = buf.readUInt32BE(p + 20);
    const kind = kindWord >>> 24;
    const ok =
      (kindWord & 0xffffff) === 0 &&
      Number.isSafeInteger(index) &&
      (kind === KIND_TOMB || kind === KIND_NEWER ? offset === 0 && length === 0 : kind === KIND_BLOCK && length > 0 && offset + length <= dataEnd);
    if (!ok) throw damaged(key, `bad trailer entry ${p / LOG_ENTRY_LENGTH}`);
    out.push(kind === KIND_NEWER ? { index, offset, length, tomb: false, newer: true } : { index, offset, length, tomb: kind === KIND_TOMB });
  }
  return out;
}

/** The bytes of a seal: the key tails of the segments of older epochs it accepts. */
export function encodeSeal(accepted: readonly string[]): Uint8Array {
  return Buffer.from(`${JSON.stringify({ accepted })}\n`, 'utf8');
}

/** The accepted segment names of a seal; StoreError when it is not one. */
export function parseSeal(key: string, bytes: Uint8Array): string[] {
  try {
    const o = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as { accepted?: unknown };
    if (Array.isArray(o.accepted) && o.accepted.every((a) => typeof a === 'string' && parseLogName(a)?.kind === 'segment')) return o.accepted as string[];
  } catch {
    // fall through
  }
  throw new StoreError('STORE_IO', `write log seal ${key} is damaged; the volume cannot tell which older segments are valid. Restore it from a backup`);
}
