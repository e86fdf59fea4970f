/**
 * The data of individual options and option replies: INFO/GO requests, meta-context requests,
 * NBD_REP_SERVER, NBD_REP_INFO items and NBD_REP_META_CONTEXT. Malformed data is a
 * ProtocolError (the server answers NBD_REP_ERR_INVALID); too many queries a LimitError
 * (NBD_REP_ERR_TOO_BIG).
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import {
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_MAX_META_QUERIES,
  NBD_MAX_STRING_LENGTH,
} from './constants.js';
import { Cursor, decodeString, encodeString } from './cursor.js';
import { safeNumber } from './handshake.js';

/** NBD_OPT_INFO / NBD_OPT_GO data: an export name and the information items asked for. */
export interface InfoRequest {
  readonly name: string;
  readonly infos: readonly number[];
}

function checkedString(text: string, what: string): Buffer {
  const b = Buffer.from(encodeString(text));
  if (b.byteLength > NBD_MAX_STRING_LENGTH) throw new LimitError('LIMIT_EXCEEDED', `${what} is longer than ${NBD_MAX_STRING_LENGTH} bytes`);
  return b;
}

/** Encodes INFO/GO data. */
export function encodeInfoRequest(req: InfoRequest): Uint8Array {
  const name = checkedString(req.name, 'export name');
  const b = Buffer.alloc(4 + name.byteLength + 2 + 2 * req.infos.length);
  b.writeUInt32BE(name.byteLength, 0);
  name.copy(b, 4);
  let p = 4 + name.byteLength;
  b.writeUInt16BE(req.infos.length, p);
  p += 2;
  for (const i of req.infos) {
    b.writeUInt16BE(i, p);
    p += 2;
  }
  return b;
}

/** Decodes INFO/GO data; every byte must be accounted for. */
export function decodeInfoRequest(data: Uint8Array): InfoRequest {
  const c = new Cursor(data, 'INFO/GO option');
  const name = c.string32('export name');
  const n = c.u16();
  const infos: number[] = [];
  for (let i = 0; i < n; i++) infos.push(c.u16());
  c.end();
  return { name, infos };
}

/** NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data. */
export interface MetaContextRequest {
  readonly name: string;
  readonly queries: readonly string[];
}

/** Encodes meta-context option data. */
export function encodeMetaContextRequest(req: MetaContextRequest): Uint8Array {
  const parts: Buffer[] = [];
  const name = checkedString(req.name, 'export name');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(name.byteLength, 0);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(req.queries.length, 0);
  parts.push(head, name, count);
  for (const q of req.queries) {
    const qb = checkedString(q, 'meta context query');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(qb.byteLength, 0);
    parts.push(len, qb);
  }
  return Buffer.concat(parts);
}

/** Decodes meta-context option data; LimitError past NBD_MAX_META_QUERIES queries. */
export function decodeMetaContextRequest(data: Uint8Array): MetaContextRequest {
  const c = new Cursor(data, 'meta context option');
  const name = c.string32('export name');
  const n = c.u32();
  if (n > NBD_MAX_META_QUERIES) throw new LimitError('LIMIT_EXCEEDED', `${n} meta context queries; at most ${NBD_MAX_META_QUERIES} are accepted`);
  const queries: string[] = [];
  for (let i = 0; i < n; i++) queries.push(c.string32('meta context query'));
  c.end();
  return { name, queries };
}

/** NBD_REP_SERVER data: a name, then an optional human-readable description. */
export function encodeServerReply(name: string, description = ''): Uint8Array {
  const n = checkedString(name, 'export name');
  const d = checkedString(description, 'export description');
  const b = Buffer.alloc(4 + n.byteLength + d.byteLength);
  b.writeUInt32BE(n.byteLength, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.byteLength);
  return b;
}

/** Decodes NBD_REP_SERVER data. */
export function decodeServerReply(data: Uint8Array): { readonly name: string; readonly description: string } {
  const c = new Cursor(data, 'NBD_REP_SERVER');
  const name = c.string32('export name');
  return { name, description: decodeString(c.rest(), 'export description') };
}

/** One NBD_REP_INFO item. */
export type InfoItem =
  | { readonly kind: 'export'; readonly size: number; readonly flags: number }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'description'; readonly description: string }
  | { readonly kind: 'block-size'; readonly minimum: number; readonly preferred: number; readonly maximum: number }
  | { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array };

/** Encodes the data of an NBD_REP_INFO reply. */
export function encodeInfo(item: InfoItem): Uint8Array {
  switch (item.kind) {
    case 'export': {
      const b = Buffer.alloc(12);
      b.writeUInt16BE(NBD_INFO_EXPORT, 0);
      b.writeBigUInt64BE(BigInt(item.size), 2);
      b.writeUInt16BE(item.flags, 10);
      return b;
    }
    case 'name':
    case 'description': {
      const s = checkedString(item.kind === 'name' ? item.name : item.description, `export ${item.kind}`);
      const b = Buffer.alloc(2 + s.byteLength);
      b.writeUInt16BE(item.kind === 'name' ? NBD_INFO_NAME : NBD_INFO_DESCRIPTION, 0);
      s.copy(b, 2);
      return b;
    }
    case 'block-size': {
      const b = Buffer.alloc(14);
      b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
      b.writeUInt32BE(item.minimum, 2);
      b.writeUInt32BE(item.preferred, 6);
      b.writeUInt32BE(item.maximum, 10);
      return b;
    }
    case 'unknown': {
      const b = Buffer.alloc(2 + item.data.byteLength);
      b.writeUInt16BE(item.type, 0);
      b.set(item.data, 2);
      return b;
    }
  }
}

/** Decodes the data of an NBD_REP_INFO reply; fixed-size items must have their exact length. */
export function decodeInfo(data: Uint8Array): InfoItem {
  const c = new Cursor(data, 'NBD_REP_INFO');
  const type = c.u16();
  switch (type) {
    case NBD_INFO_EXPORT: {
      const size = safeNumber(c.u64(), 'export size');
      const flags = c.u16();
      c.end();
      return { kind: 'export', size, flags };
    }
    case NBD_INFO_NAME:
      return { kind: 'name', name: decodeString(c.rest(), 'export name') };
    case NBD_INFO_DESCRIPTION:
      return { kind: 'description', description: decodeString(c.rest(), 'export description') };
    case NBD_INFO_BLOCK_SIZE: {
      const minimum = c.u32();
      const preferred = c.u32();
      const maximum = c.u32();
      c.end();
      return { kind: 'block-size', minimum, preferred, maximum };
    }
    default:
      return { kind: 'unknown', type, data: c.rest() };
  }
}

/** NBD_REP_META_CONTEXT data: a context id and its name. */
export function encodeMetaContextReply(id: number, name: string): Uint8Array {
  const n = checkedString(name, 'meta context name');
  const b = Buffer.alloc(4 + n.byteLength);
  b.writeUInt32BE(id >>> 0, 0);
  n.copy(b, 4);
  return b;
}

/** Decodes NBD_REP_META_CONTEXT data. */
export function decodeMetaContextReply(data: Uint8Array): { readonly id: number; readonly name: string } {
  const c = new Cursor(data, 'NBD_REP_META_CONTEXT');
  const id = c.u32();
  const name = decodeString(c.rest(), 'meta context name');
  if (name.length === 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'NBD_REP_META_CONTEXT without a name');
  return { id, name };
}

/** Error-reply data: the optional human-readable message. */
export function encodeErrorMessage(message: string): Uint8Array {
  const b = Buffer.from(encodeString(message));
  return b.byteLength > NBD_MAX_STRING_LENGTH ? b.subarray(0, NBD_MAX_STRING_LENGTH) : b;
}
