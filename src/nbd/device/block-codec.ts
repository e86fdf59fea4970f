/**
 * The bytes of one stored block. The object store has no per-object metadata, so checksums
 * travel in the object; hashing the block index in catches an object stored (or renamed)
 * under the wrong key. Three formats, chosen per volume by its meta `format`:
 *
 * Format 1 (volumes created before per-sector checks): a 32-byte header, then the payload.
 *   0  4  magic "SNBK"   4  1  version (1)   5  3  reserved (zero)
 *   8  8  lease epoch of the writer (big-endian)
 *  16 16  first 16 bytes of sha256(block index u64be || epoch u64be || payload)
 *
 * Format 2: a 32-byte header, then one slot per 4 KiB sector: a 16-byte check, then the
 * sector's bytes (the last sector of a short block is short). Interleaving puts each check
 * next to its data, so a random 4 KiB read is one ranged read of 4112 bytes verified alone.
 *   0  4  magic "SNBK"   4  1  version (2)   5  1  log2(sector size) (12)   6  2  reserved
 *   8  8  lease epoch of the writer
 *  16 16  first 16 bytes of sha256(block index u64be || epoch u64be || payload length u32be)
 *  slot s: first 16 bytes of sha256(sector) XOR (block index u64be || s u64be), then sector.
 * The check of a sector does not depend on the epoch or the other sectors, so a write of one
 * sector re-hashes only that sector, and unchanged slots are copied from the old object as
 * they are (a corrupt one stays detectably corrupt). The header check binds the payload length
 * to the object: a truncated or emptied object fails it on a whole read; ranged reads check
 * the length they got instead.
 *
 * Format 3 (the default for new volumes): format 2's layout and header (version byte 3), with
 * a cheaper slot check:
 *  slot s:  0 4  CRC-32 (ISO-HDLC, zlib's) of the sector   4 8  block index u64be
 *          12 4  s u32be   16 ...  the sector's bytes.
 * The position is stored as it is, so a misplaced slot is always caught; the CRC catches any
 * burst of up to 32 flipped bits and other damage but for 1 in 2^32 (sha256's 128 bits of
 * format 2 cost ~4x more CPU: 1 GiB of 4 KiB sectors took 1.95-2.3 s to hash against 0.43-0.48 s for
 * the CRC on the loaded 2-core machine, and hashing was 25% of the server's CPU copying a
 * volume out). Per-sector CRCs are the common choice of block stores for the same reason.
 */
import { createHash, hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { StoreError } from '../../core/errors.js';

/** Header length in bytes (both formats). */
export const BLOCK_HEADER_LENGTH = 32;
/** Format 2 sector size. */
export const SECTOR_SIZE = 4096;
const SECTOR_SHIFT = 12;
/** Format 2 check length per sector. */
export const CHECK_LENGTH = 16;
/** Format 2 slot length (check + full sector). */
export const SLOT_LENGTH = CHECK_LENGTH + SECTOR_SIZE;
const MAGIC = Buffer.from('SNBK', 'latin1');
const MAGIC_U32 = MAGIC.readUInt32BE(0);

function corrupt(key: string, why: string): StoreError {
  return new StoreError('STORE_IO', `block ${key} is corrupt: ${why}`);
}

function writeHeader(out: Buffer, version: number, epoch: number): void {
  out.writeUInt32BE(MAGIC_U32, 0);
  out[4] = version;
  out[5] = version === 1 ? 0 : SECTOR_SHIFT;
  out.writeUInt16BE(0, 6);
  out.writeBigUInt64BE(BigInt(epoch), 8);
}

// ---- format 1 ----

function digestV1(index: number, epoch: number, payload: Uint8Array): Buffer {
  const pre = Buffer.alloc(16);
  pre.writeBigUInt64BE(BigInt(index), 0);
  pre.writeBigUInt64BE(BigInt(epoch), 8);
  return createHash('sha256').update(pre).update(payload).digest().subarray(0, 16);
}

/** Encodes a format 1 block from its payload parts (copied; the caller may change them after). */
export function encodeBlockV1(index: number, epoch: number, parts: readonly Uint8Array[]): Buffer {
  let len = 0;
  for (const p of parts) len += p.byteLength;
  const out = Buffer.allocUnsafe(BLOCK_HEADER_LENGTH + len);
  writeHeader(out, 1, epoch);
  let at = BLOCK_HEADER_LENGTH;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  digestV1(index, epoch, out.subarray(BLOCK_HEADER_LENGTH)).copy(out, 16);
  return out;
}

/** A decoded block: its payload and the writer's epoch. */
export interface DecodedBlock {
  readonly payload: Buffer;
  readonly epoch: number;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes and verifies a whole stored block of either format; StoreError('STORE_IO') on any
 * corruption (an EIO). A format 2 payload is a fresh buffer; a format 1 payload is a view.
 */
export function decodeBlock(key: string, index: number, bytes: Uint8Array): DecodedBlock {
  const buf = asBuffer(bytes);
  if (buf.byteLength < BLOCK_HEADER_LENGTH || buf.readUInt32BE(0) !== MAGIC_U32) throw corrupt(key, 'bad header');
  const epoch = Number(buf.readBigUInt64BE(8));
  if (buf[4] === 1) {
    const payload = buf.subarray(BLOCK_HEADER_LENGTH);
    if (!digestV1(index, epoch, payload).equals(buf.subarray(16, 32))) throw corrupt(key, 'checksum mismatch');
    return { payload, epoch };
  }
  const version = buf[4];
  if ((version !== 2 && version !== 3) || buf[5] !== SECTOR_SHIFT || buf.readUInt16BE(6) !== 0) throw corrupt(key, 'unknown version');
  const len = payloadLengthOf(buf.byteLength);
  if (len === undefined || !headerCheckV2(index, epoch, len).equals(buf.subarray(16, 32))) throw corrupt(key, 'bad header check');
  const payload = Buffer.allocUnsafe(len);
  const n = sectorCount(len);
  const codec = slotCodec(version);
  for (let s = 0; s < n; s++) {
    const slot = buf.subarray(slotOffset(s), slotOffset(s) + CHECK_LENGTH + sectorLength(len, s));
    if (!codec.verify(index, s, slot)) throw corrupt(key, `checksum mismatch in sector ${s}`);
    slot.copy(payload, s * SECTOR_SIZE, CHECK_LENGTH);
  }
  return { payload, epoch };
}

// ---- format 2 ----

/** Sectors in a block of `len` bytes. */
export function sectorCount(len: number): number {
  return Math.ceil(len / SECTOR_SIZE);
}

/** Length of sector `s` of a block of `len` bytes. */
export function sectorLength(len: number, s: number): number {
  return Math.min(SECTOR_SIZE, len - s * SECTOR_SIZE);
}

/** Byte offset of slot `s` in a format 2 object. */
export function slotOffset(s: number): number {
  return BLOCK_HEADER_LENGTH + s * SLOT_LENGTH;
}

/** Object length of a format 2 block with a payload of `len` bytes. */
export function encodedLengthV2(len: number): number {
  return BLOCK_HEADER_LENGTH + sectorCount(len) * CHECK_LENGTH + len;
}

/** The payload length a format 2 object of `size` bytes holds, undefined if none fits. */
export function payloadLengthOf(size: number): number | undefined {
  const body = size - BLOCK_HEADER_LENGTH;
  if (body < 0) return undefined;
  const n = Math.ceil(body / SLOT_LENGTH);
  const len = body - n * CHECK_LENGTH;
  return len >= 0 && encodedLengthV2(len) === size ? len : undefined;
}

function headerCheckV2(index: number, epoch: number, len: number): Buffer {
  const pre = Buffer.allocUnsafe(20);
  pre.writeBigUInt64BE(BigInt(index), 0);
  pre.writeBigUInt64BE(BigInt(epoch), 8);
  pre.writeUInt32BE(len, 16);
  return hash('sha256', pre, 'buffer').subarray(0, 16);
}

/** Whether a format 2 or 3 (`version`) object's header is intact for block `index` with a payload of `len` bytes. */
export function headerMatches(index: number, len: number, buf: Buffer, version: SlotVersion = 2): boolean {
  if (buf.byteLength < BLOCK_HEADER_LENGTH || buf.readUInt32BE(0) !== MAGIC_U32 || buf[4] !== version || buf[5] !== SECTOR_SHIFT || buf.readUInt16BE(6) !== 0) return false;
  return headerCheckV2(index, Number(buf.readBigUInt64BE(8)), len).equals(buf.subarray(16, 32));
}

/** Writes a format 2 or 3 (`version`) header for a payload of `len` bytes into `out`. */
export function writeHeaderV2(out: Buffer, index: number, epoch: number, len: number, version: SlotVersion = 2): void {
  writeHeader(out, version, epoch);
  headerCheckV2(index, epoch, len).copy(out, 16);
}

/** XORs the position (block index, sector) into a 16-byte check in place. */
function mixPosition(check: Buffer, at: number, index: number, s: number): void {
  // Block indexes stay below 2^53 (volume-layout.ts), so two u32 halves are exact.
  const hi = Math.floor(index / 0x100000000);
  check.writeUInt32BE((check.readUInt32BE(at) ^ hi) >>> 0, at);
  check.writeUInt32BE((check.readUInt32BE(at + 4) ^ (index >>> 0)) >>> 0, at + 4);
  check.writeUInt32BE((check.readUInt32BE(at + 12) ^ s) >>> 0, at + 12);
}

/** Computes the check of sector `s` (bytes `data`) of block `index` into out[at, at+16). */
export function writeSectorCheck(index: number, s: number, data: Uint8Array, out: Buffer, at: number): void {
  hash('sha256', data, 'buffer').copy(out, at, 0, CHECK_LENGTH);
  mixPosition(out, at, index, s);
}

const zeroDigests = new Map<number, Buffer>();

/** Computes the check of an all-zero sector of `len` bytes (hashed once per length). */
export function writeZeroSectorCheck(index: number, s: number, len: number, out: Buffer, at: number): void {
  let d = zeroDigests.get(len);
  if (d === undefined) {
    d = hash('sha256', Buffer.alloc(len), 'buffer').subarray(0, CHECK_LENGTH);
    zeroDigests.set(len, d);
  }
  d.copy(out, at);
  mixPosition(out, at, index, s);
}

/** Writes a slot that never verifies (zeros with a wrong check): a sector known to be lost. */
export function writePoisonSlot(index: number, s: number, len: number, out: Buffer, at: number): void {
  writeZeroSectorCheck(index, s, len, out, at);
  for (let i = 0; i < CHECK_LENGTH; i++) out[at + i] = (out[at + i] as number) ^ 0xff;
  out.fill(0, at + CHECK_LENGTH, at + CHECK_LENGTH + len);
}

/** Whether a slot (check, then sector bytes) verifies. */
export function verifySlot(index: number, s: number, slot: Buffer): boolean {
  const got = hash('sha256', slot.subarray(CHECK_LENGTH), 'buffer');
  mixPosition(got, 0, index, s);
  return got.compare(slot, 0, CHECK_LENGTH, 0, CHECK_LENGTH) === 0;
}

// ---- format 3 ----

/** Block versions with per-sector slots. */
export type SlotVersion = 2 | 3;

/** Computes, checks and poisons the slot checks of one slot version. */
export interface SlotCodec {
  /** Computes the check of sector `s` (bytes `data`) of block `index` into out[at, at+16). */
  write(index: number, s: number, data: Uint8Array, out: Buffer, at: number): void;
  /** The check of an all-zero sector of `len` bytes. */
  writeZero(index: number, s: number, len: number, out: Buffer, at: number): void;
  /** A slot that never verifies (zeros with a wrong check): a sector known to be lost. */
  writePoison(index: number, s: number, len: number, out: Buffer, at: number): void;
  /** Whether a slot (check, then sector bytes) verifies. */
  verify(index: number, s: number, slot: Buffer): boolean;
}

const V2_SLOTS: SlotCodec = { write: writeSectorCheck, writeZero: writeZeroSectorCheck, writePoison: writePoisonSlot, verify: verifySlot };

/** Writes the position part (block index, sector) of a format 3 check. */
function writePositionV3(index: number, s: number, out: Buffer, at: number): void {
  out.writeUInt32BE(Math.floor(index / 0x100000000), at + 4);
  out.writeUInt32BE(index >>> 0, at + 8);
  out.writeUInt32BE(s, at + 12);
}

const zeroCrcs = new Map<number, number>();

const V3_SLOTS: SlotCodec = {
  write(index, s, data, out, at) {
    out.writeUInt32BE(crc32(data), at);
    writePositionV3(index, s, out, at);
  },
  writeZero(index, s, len, out, at) {
    let c = zeroCrcs.get(len);
    if (c === undefined) {
      c = crc32(Buffer.alloc(len));
      zeroCrcs.set(len, c);
    }
    out.writeUInt32BE(c, at);
    writePositionV3(index, s, out, at);
  },
  writePoison(index, s, len, out, at) {
    V3_SLOTS.writeZero(index, s, len, out, at);
    out.writeUInt32BE(~out.readUInt32BE(at) >>> 0, at);
    out.fill(0, at + CHECK_LENGTH, at + CHECK_LENGTH + len);
  },
  verify(index, s, slot) {
    if (slot.byteLength < CHECK_LENGTH) return false;
    return (
      slot.readUInt32BE(12) === s &&
      slot.readUInt32BE(8) === index >>> 0 &&
      slot.readUInt32BE(4) === Math.floor(index / 0x100000000) &&
      slot.readUInt32BE(0) === crc32(slot.subarray(CHECK_LENGTH))
    );
  },
};

/** The slot checks of a block version with slots (2: sha256-based, 3: CRC-32 and position). */
export function slotCodec(version: SlotVersion): SlotCodec {
  return version === 3 ? V3_SLOTS : V2_SLOTS;
}
