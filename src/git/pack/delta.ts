/**
 * Git binary deltas (gitformat-pack, "Deltified representation"): two size varints
 * (base, result), then copy instructions (MSB set: offset/size bytes selected by the
 * low 7 bits) and insert instructions (1..127 literal bytes). Opcode 0 is reserved.
 */
import { ProtocolError } from '../../core/errors.js';
import { OBJECT_SIZE_MAX } from '../../core/limits.js';

/** Largest size a copy instruction encodes in its 3 size bytes. */
const COPY_SIZE_MAX = 0xffffff;
/** Size 0 in a copy instruction means 0x10000 (the spec's exception). */
const COPY_SIZE_ZERO = 0x10000;
/** Most result bytes one delta byte can produce (a 4-byte copy of 2^24-1); bounds allocations. */
const RESULT_PER_DELTA_BYTE = 0x400000;
/** Runs up to this length are copied byte by byte: cheaper than making a view. */
const SMALL_COPY = 32;
/** Insert instructions carry at most 127 literal bytes. */
const INSERT_MAX = 0x7f;
/** Window of the block hash used by createDelta. */
const BLOCK = 16;
/** Candidates checked per hash bucket while encoding; bounds the work on repetitive input. */
const CHAIN_MAX = 64;
/** Copies shorter than this cost more than the literal bytes. */
const COPY_MIN = 4;

function badDelta(what: string): ProtocolError {
  return new ProtocolError('PACK_BAD_DELTA', `invalid delta: ${what}`);
}

/** Reads a delta size varint at `pos`; returns [value, next position]. */
function readSize(delta: Uint8Array, pos: number): [number, number] {
  let value = 0;
  let scale = 1;
  let p = pos;
  for (;;) {
    if (p >= delta.length) throw badDelta('truncated size header');
    const c = delta[p++]!;
    value += (c & 0x7f) * scale;
    if (value > OBJECT_SIZE_MAX) throw badDelta(`size exceeds ${OBJECT_SIZE_MAX} bytes`);
    if ((c & 0x80) === 0) return [value, p];
    scale *= 128;
  }
}

/** The base and result sizes a delta declares. */
export function deltaSizes(delta: Uint8Array): { baseSize: number; resultSize: number } {
  const [baseSize, p] = readSize(delta, 0);
  const [resultSize] = readSize(delta, p);
  return { baseSize, resultSize };
}

/**
 * Applies `delta` to `base`; throws ProtocolError('PACK_BAD_DELTA') for any inconsistency.
 * With `into` (when the result fits) the result is written there and a view of it returned,
 * so callers that recycle buffers allocate nothing; `into` must not overlap base or delta.
 */
export function applyDelta(base: Uint8Array, delta: Uint8Array, into?: Uint8Array): Uint8Array {
  let [baseSize, p] = readSize(delta, 0);
  if (baseSize !== base.length) throw badDelta(`base is ${base.length} bytes, delta expects ${baseSize}`);
  let resultSize: number;
  [resultSize, p] = readSize(delta, p);
  const end = delta.length;
  // A delta cannot produce more than this many bytes; refuse before allocating a hostile size.
  if (resultSize > (end - p) * RESULT_PER_DELTA_BYTE) throw badDelta(`result size ${resultSize} is impossible`);
  const out = into !== undefined && into.length >= resultSize ? into : Buffer.allocUnsafe(resultSize);
  // Plain Uint8Array views: their subarray() is much cheaper than Buffer's.
  const src = new Uint8Array(base.buffer, base.byteOffset, base.length);
  const ins = new Uint8Array(delta.buffer, delta.byteOffset, delta.length);
  const baseLen = base.length;
  let o = 0;
  while (p < end) {
    const c = delta[p++]!;
    if (c & 0x80) {
      let off = 0;
      let size = 0;
      if (c & 0x7f) {
        // Optional bytes: check once that the longest possible form fits, else per byte.
        if (c & 0x01) off = delta[p++]!;
        if (c & 0x02) off |= delta[p++]! << 8;
        if (c & 0x04) off |= delta[p++]! << 16;
        if (c & 0x08) off += delta[p++]! * 0x1000000;
        if (c & 0x10) size = delta[p++]!;
        if (c & 0x20) size |= delta[p++]! << 8;
        if (c & 0x40) size |= delta[p++]! << 16;
        if (p > end) throw badDelta('truncated copy instruction');
        off >>>= 0;
      }
      if (size === 0) size = COPY_SIZE_ZERO;
      if (off + size > baseLen) throw badDelta(`copy of ${size} bytes at ${off} exceeds the ${baseLen}-byte base`);
      if (o + size > resultSize) throw badDelta('copy overflows the result size');
      if (size <= SMALL_COPY) {
        for (let i = 0; i < size; i++) out[o + i] = src[off + i]!;
      } else {
        out.set(src.subarray(off, off + size), o);
      }
      o += size;
    } else if (c !== 0) {
      if (p + c > end) throw badDelta('truncated insert instruction');
      if (o + c > resultSize) throw badDelta('insert overflows the result size');
      if (c <= SMALL_COPY) {
        for (let i = 0; i < c; i++) out[o + i] = ins[p + i]!;
      } else {
        out.set(ins.subarray(p, p + c), o);
      }
      o += c;
      p += c;
    } else {
      throw badDelta('reserved opcode 0');
    }
  }
  if (o !== resultSize) throw badDelta(`result is ${o} bytes, delta declares ${resultSize}`);
  return out === into ? out.subarray(0, resultSize) : out;
}

/** A growable byte sink for the encoder. */
class Sink {
  buf: Buffer;
  len = 0;
  constructor(initial: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initial));
  }
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  size(v: number): void {
    let rest = v;
    while (rest >= 0x80) {
      this.byte((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    this.byte(rest);
  }
  insert(src: Uint8Array, start: number, endExclusive: number): void {
    let s = start;
    while (s < endExclusive) {
      const n = Math.min(INSERT_MAX, endExclusive - s);
      this.reserve(n + 1);
      this.buf[this.len++] = n;
      this.buf.set(src.subarray(s, s + n), this.len);
      this.len += n;
      s += n;
    }
  }
  copy(offset: number, size: number): void {
    let off = offset;
    let left = size;
    while (left > 0) {
      const n = Math.min(COPY_SIZE_MAX, left);
      this.reserve(8);
      const at = this.len++;
      let op = 0x80;
      for (let i = 0; i < 4; i++) {
        const b = Math.floor(off / 2 ** (8 * i)) & 0xff;
        if (b !== 0) {
          op |= 1 << i;
          this.buf[this.len++] = b;
        }
      }
      for (let i = 0; i < 3; i++) {
        const b = (n >>> (8 * i)) & 0xff;
        if (b !== 0) {
          op |= 0x10 << i;
          this.buf[this.len++] = b;
        }
      }
      this.buf[at] = op;
      off += n;
      left -= n;
    }
  }
}

const HASH_MUL = 0x01000193;

/** Hash of the BLOCK bytes at `pos` (polynomial, mod 2^32), matching the rolling update. */
function blockHash(data: Uint8Array, pos: number): number {
  let h = 0;
  for (let i = 0; i < BLOCK; i++) h = (Math.imul(h, HASH_MUL) + data[pos + i]!) | 0;
  return h;
}

/**
 * Encodes `target` as a delta against `base`. Indexes the base in BLOCK-byte blocks,
 * rolls a hash over the target, and extends each verified match both ways.
 */
export function createDelta(base: Uint8Array, target: Uint8Array): Uint8Array {
  const out = new Sink(64 + (target.length >>> 3));
  out.size(base.length);
  out.size(target.length);
  const tLen = target.length;
  const bLen = base.length;
  const blocks = Math.floor(bLen / BLOCK);
  if (blocks === 0 || tLen < BLOCK) {
    out.insert(target, 0, tLen);
    return out.buf.subarray(0, out.len);
  }
  let bits = 4;
  while (1 << bits < blocks && bits < 24) bits++;
  const mask = (1 << bits) - 1;
  const head = new Int32Array(1 << bits).fill(-1);
  const next = new Int32Array(blocks);
  // Later blocks first in each chain, so the earliest block ends up first: stable choices.
  for (let b = blocks - 1; b >= 0; b--) {
    const h = blockHash(base, b * BLOCK) & mask;
    next[b] = head[h]!;
    head[h] = b;
  }
  // HASH_MUL^BLOCK-1, to remove the byte leaving the window.
  let outFactor = 1;
  for (let i = 0; i < BLOCK - 1; i++) outFactor = Math.imul(outFactor, HASH_MUL);

  let literalStart = 0;
  let p = 0;
  let h = blockHash(target, 0);
  while (p + BLOCK <= tLen) {
    let bestLen = 0;
    let bestOff = 0;
    let bestBack = 0;
    let cand = head[h & mask]!;
    for (let n = 0; cand >= 0 && n < CHAIN_MAX; n++, cand = next[cand]!) {
      const bo = cand * BLOCK;
      let len = 0;
      const maxLen = Math.min(bLen - bo, tLen - p);
      while (len < maxLen && base[bo + len] === target[p + len]) len++;
      if (len < BLOCK) continue;
      let back = 0;
      while (back < p - literalStart && back < bo && base[bo - back - 1] === target[p - back - 1]) back++;
      if (len + back > bestLen + bestBack) {
        bestLen = len;
        bestOff = bo;
        bestBack = back;
        if (len === maxLen) break;
      }
    }
    if (bestLen + bestBack >= COPY_MIN && bestLen > 0) {
      out.insert(target, literalStart, p - bestBack);
      out.copy(bestOff - bestBack, bestLen + bestBack);
      p += bestLen;
      literalStart = p;
      if (p + BLOCK <= tLen) h = blockHash(target, p);
      continue;
    }
    if (p + BLOCK >= tLen) {
      p++;
      break;
    }
    h = (Math.imul(h - Math.imul(target[p]!, outFactor), HASH_MUL) + target[p + BLOCK]!) | 0;
    p++;
  }
  out.insert(target, literalStart, tLen);
  return out.buf.subarray(0, out.len);
}
