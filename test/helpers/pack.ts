/**
 * Hand-made Git objects and packs for hostile-input tests: written independently of src/git so
 * they can be wrong on purpose (bad checksum, truncated, unsorted trees, forged ids).
 * Format: Documentation/gitformat-pack.adoc (version 2 packs, SHA-1).
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';

/** The four object types a pack entry can hold without a delta. */
export type RawObjectType = 'commit' | 'tree' | 'blob' | 'tag';

/** One object before packing. */
export interface RawObject {
  readonly type: RawObjectType;
  readonly body: Uint8Array;
}

const TYPE_CODE: Record<RawObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };
const REF_DELTA = 7;

/** The id git gives an object: sha1 of `<type> <size>\0<body>`. */
export function objectId(obj: RawObject): string {
  return createHash('sha1').update(`${obj.type} ${obj.body.length}\0`).update(obj.body).digest('hex');
}

/** One tree entry; `mode` as git writes it (e.g. '100644', '40000'). */
export interface RawTreeEntry {
  readonly mode: string;
  readonly name: string;
  readonly id: string;
}

/** A tree body with entries in the order given (callers sort, or deliberately don't). */
export function treeBody(entries: readonly RawTreeEntry[]): Uint8Array {
  return Buffer.concat(entries.flatMap((e) => [Buffer.from(`${e.mode} ${e.name}\0`), Buffer.from(e.id, 'hex')]));
}

/** A commit body; `tree: undefined` leaves the tree header out (invalid on purpose). */
export function commitBody(opts: { tree: string | undefined; parents?: readonly string[]; message: string; when?: number }): Uint8Array {
  const when = opts.when ?? 1_700_000_000;
  const lines: string[] = [];
  if (opts.tree !== undefined) lines.push(`tree ${opts.tree}`);
  for (const p of opts.parents ?? []) lines.push(`parent ${p}`);
  lines.push(`author Hostile Tester <hostile@stowage.invalid> ${when} +0000`);
  lines.push(`committer Hostile Tester <hostile@stowage.invalid> ${when} +0000`);
  return Buffer.from(`${lines.join('\n')}\n\n${opts.message}\n`);
}

/** A blob from text. */
export function blob(text: string): RawObject {
  return { type: 'blob', body: Buffer.from(text) };
}

/** The empty tree, and its well-known id. */
export const EMPTY_TREE: RawObject = { type: 'tree', body: new Uint8Array(0) };
export const EMPTY_TREE_ID = objectId(EMPTY_TREE);

function entryHeader(typeCode: number, size: number): Buffer {
  const bytes: number[] = [];
  let byte = (typeCode << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/** An entry to write: a whole object, or a ref-delta against a named base. */
export type PackEntryInput =
  | { readonly kind: 'object'; readonly object: RawObject }
  | { readonly kind: 'ref-delta'; readonly baseId: string; readonly delta: Uint8Array };

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return Buffer.from(out);
}

/** A delta that turns a base of `baseSize` bytes into `result` by inserting it literally. */
export function insertDelta(baseSize: number, result: Uint8Array): Uint8Array {
  const parts: Buffer[] = [varint(baseSize), varint(result.length)];
  for (let at = 0; at < result.length; at += 127) {
    const piece = result.subarray(at, Math.min(at + 127, result.length));
    parts.push(Buffer.from([piece.length]), Buffer.from(piece));
  }
  return Buffer.concat(parts);
}

/** A complete version-2 pack of the entries, with a correct trailing SHA-1. */
export function encodePack(entries: readonly PackEntryInput[]): Buffer {
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(entries.length, 8);
  const parts: Buffer[] = [header];
  for (const entry of entries) {
    if (entry.kind === 'object') {
      parts.push(entryHeader(TYPE_CODE[entry.object.type], entry.object.body.length), deflateSync(entry.object.body));
    } else {
      parts.push(entryHeader(REF_DELTA, entry.delta.length), Buffer.from(entry.baseId, 'hex'), deflateSync(entry.delta));
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

/** A pack of whole objects. */
export function packOf(objects: readonly RawObject[]): Buffer {
  return encodePack(objects.map((object) => ({ kind: 'object', object })));
}
