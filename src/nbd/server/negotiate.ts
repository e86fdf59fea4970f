/**
 * The server side of fixed-newstyle option haggling: answers options one at a time until the
 * client enters transmission (GO or EXPORT_NAME), aborts, or goes away. Unknown options get
 * NBD_REP_ERR_UNSUP and haggling goes on; an option with more data than we accept is drained
 * and answered NBD_REP_ERR_TOO_BIG (or, past a hard cap, the connection is dropped as a
 * denial of service, which the spec allows).
 */
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { ConflictError, ProtocolError, LimitError, publicMessage } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { BlockDevice, DeviceHandle, DeviceProvider } from '../device/block-device.js';
import * as K from '../protocol/constants.js';
import { decodeClientFlags, decodeOptionHeader, encodeExportNameReply, encodeGreeting, encodeOptionReply, SERVER_HANDSHAKE_FLAGS } from '../protocol/handshake.js';
import { decodeString } from '../protocol/cursor.js';
import {
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeErrorMessage,
  encodeInfo,
  encodeMetaContextReply,
  encodeServerReply,
} from '../protocol/option-data.js';
import type { ByteInput } from './byte-input.js';

/** Option data beyond NBD_MAX_OPTION_LENGTH up to this is drained and refused; more drops the client. */
const OPTION_DRAIN_CAP = 16 * 1024 * 1024;
/** Options per connection: a client looping forever in haggling is cut off. */
const MAX_OPTIONS = 4096;
/** The metadata context id we hand out for base:allocation. */
export const BASE_ALLOCATION_ID = 1;

/** TLS settings of the server (X.509). */
export interface NbdTlsContext {
  readonly secureContext: SecureContext;
  readonly requireClientCert: boolean;
  /** FORCEDTLS: options other than STARTTLS and ABORT are refused until TLS runs. */
  readonly required: boolean;
}

/** What haggling needs from the connection. */
export interface NegotiationIo {
  readonly input: ByteInput;
  /** The current stream (replaced by the TLS socket after STARTTLS). */
  stream: Duplex;
  readonly provider: DeviceProvider;
  readonly tls: NbdTlsContext | undefined;
  readonly log: Logger;
  /** Whether the server is shutting down (options are then refused with ERR_SHUTDOWN). */
  readonly closing: () => boolean;
}

/** The outcome of a successful handshake. */
export interface Negotiated {
  readonly handle: DeviceHandle;
  readonly exportName: string;
  readonly structured: boolean;
  /** Whether base:allocation was selected for this export. */
  readonly baseAllocation: boolean;
  readonly transmissionFlags: number;
}

/** Transmission flags for a device as this server serves it. */
export function transmissionFlags(device: BlockDevice, structured: boolean): number {
  let f = K.NBD_FLAG_HAS_FLAGS | K.NBD_FLAG_SEND_CACHE;
  if (device.readOnly) f |= K.NBD_FLAG_READ_ONLY;
  else f |= K.NBD_FLAG_SEND_FLUSH | K.NBD_FLAG_SEND_FUA | K.NBD_FLAG_SEND_TRIM | K.NBD_FLAG_SEND_WRITE_ZEROES | K.NBD_FLAG_SEND_FAST_ZERO;
  if (structured) f |= K.NBD_FLAG_SEND_DF;
  if (device.multiConn) f |= K.NBD_FLAG_CAN_MULTI_CONN;
  return f;
}

/** Block sizes advertised for a device: its own, with the maximum capped at our payload limit. */
export function advertisedBlockSizes(device: BlockDevice): { minimum: number; preferred: number; maximum: number } {
  const b = device.blockSizes;
  return { minimum: b.minimum, preferred: b.preferred, maximum: Math.min(b.maximum, K.NBD_MAX_PAYLOAD) };
}

function write(io: NegotiationIo, bytes: Uint8Array): void {
  if (!io.stream.destroyed) io.stream.write(bytes);
}

function reply(io: NegotiationIo, option: number, type: number, data?: Uint8Array): void {
  write(io, encodeOptionReply(option, type, data));
}

function fail(io: NegotiationIo, option: number, type: number, message: string): void {
  io.log.debug({ option, type: type.toString(16), reason: message }, 'nbd option refused');
  reply(io, option, type, encodeErrorMessage(message));
}

/** Runs the handshake; undefined when the client left, aborted, or must be dropped. */
export async function negotiate(io: NegotiationIo): Promise<Negotiated | undefined> {
  write(io, encodeGreeting());
  const flagBytes = await io.input.read(4);
  if (flagBytes === undefined) return undefined;
  const cf = decodeClientFlags(flagBytes, SERVER_HANDSHAKE_FLAGS);
  if (cf.kind !== 'client-flags') return undefined;
  if (!cf.fixedNewstyle) io.log.debug('client did not set NBD_FLAG_C_FIXED_NEWSTYLE; serving fixed newstyle anyway');
  let structured = false;
  let meta: { name: string; base: boolean } | undefined;
  let tlsDone = false;

  for (let count = 0; count < MAX_OPTIONS; count++) {
    const headBytes = await io.input.read(K.OPTION_HEADER_LENGTH);
    if (headBytes === undefined) return undefined;
    const head = decodeOptionHeader(headBytes);
    if (head.kind !== 'header') return undefined;
    const { option, length } = head;
    if (length > K.NBD_MAX_OPTION_LENGTH) {
      if (length > OPTION_DRAIN_CAP) throw new LimitError('LIMIT_EXCEEDED', `option ${option} announces ${length} bytes of data; dropping the client`);
      if (!(await io.input.skip(length))) return undefined;
      fail(io, option, K.NBD_REP_ERR_TOO_BIG, `option data of ${length} bytes exceeds the limit of ${K.NBD_MAX_OPTION_LENGTH}`);
      continue;
    }
    const data = length === 0 ? Buffer.alloc(0) : await io.input.read(length);
    if (data === undefined) return undefined;

    if (option === K.NBD_OPT_ABORT) {
      reply(io, option, K.NBD_REP_ACK);
      return undefined;
    }
    if (io.closing()) {
      if (option === K.NBD_OPT_EXPORT_NAME) return undefined;
      fail(io, option, K.NBD_REP_ERR_SHUTDOWN, 'the server is shutting down');
      continue;
    }
    const tlsRequired = io.tls !== undefined && io.tls.required && !tlsDone;
    if (option === K.NBD_OPT_STARTTLS) {
      if (io.tls === undefined) fail(io, option, K.NBD_REP_ERR_UNSUP, 'TLS is not configured on this server');
      else if (tlsDone) fail(io, option, K.NBD_REP_ERR_INVALID, 'TLS is already running');
      else if (length !== 0) fail(io, option, K.NBD_REP_ERR_INVALID, 'STARTTLS takes no data');
      else {
        reply(io, option, K.NBD_REP_ACK);
        await startTls(io, io.tls);
        tlsDone = true;
        // The spec: no negotiation state survives STARTTLS.
        structured = false;
        meta = undefined;
      }
      continue;
    }
    if (tlsRequired) {
      // FORCEDTLS: EXPORT_NAME cannot be refused, so the session ends.
      if (option === K.NBD_OPT_EXPORT_NAME) return undefined;
      fail(io, option, K.NBD_REP_ERR_TLS_REQD, 'this server requires TLS: send NBD_OPT_STARTTLS first');
      continue;
    }

    switch (option) {
      case K.NBD_OPT_EXPORT_NAME: {
        let name: string;
        try {
          name = decodeString(data, 'export name');
        } catch {
          return undefined;
        }
        const handle = await openForTransmission(io, name);
        if (handle === undefined || typeof handle === 'string') {
          io.log.info({ export: name, reason: handle ?? 'no such export' }, 'nbd EXPORT_NAME refused: closing as the spec requires');
          return undefined;
        }
        const flags = transmissionFlags(handle.device, false);
        write(io, encodeExportNameReply(handle.device.size, flags, cf.noZeroes));
        return { handle, exportName: name, structured: false, baseAllocation: false, transmissionFlags: flags };
      }
      case K.NBD_OPT_LIST: {
        if (length !== 0) {
          fail(io, option, K.NBD_REP_ERR_INVALID, 'LIST takes no data');
          break;
        }
        for (const e of await io.provider.list()) reply(io, option, K.NBD_REP_SERVER, encodeServerReply(e.name, e.description));
        reply(io, option, K.NBD_REP_ACK);
        break;
      }
      case K.NBD_OPT_STRUCTURED_REPLY:
        if (length !== 0) fail(io, option, K.NBD_REP_ERR_INVALID, 'STRUCTURED_REPLY takes no data');
        else {
          structured = true;
          reply(io, option, K.NBD_REP_ACK);
        }
        break;
      case K.NBD_OPT_LIST_META_CONTEXT:
      case K.NBD_OPT_SET_META_CONTEXT: {
        const set = option === K.NBD_OPT_SET_META_CONTEXT;
        if (set) meta = undefined; // replaced even when the option fails
        if (!structured) {
          fail(io, option, K.NBD_REP_ERR_INVALID, 'negotiate NBD_OPT_STRUCTURED_REPLY before meta contexts');
          break;
        }
        let req;
        try {
          req = decodeMetaContextRequest(data);
        } catch (err) {
          fail(io, option, err instanceof LimitError ? K.NBD_REP_ERR_TOO_BIG : K.NBD_REP_ERR_INVALID, publicMessage(err));
          break;
        }
        if (!(await exportExists(io, req.name))) {
          fail(io, option, K.NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(req.name)}`);
          break;
        }
        // base:allocation is matched exactly, or listed for the `base:` wildcard (LIST only)
        // and for an empty query list (LIST); unknown namespaces and leaves are ignored.
        const match = set
          ? req.queries.includes(K.BASE_ALLOCATION)
          : req.queries.length === 0 || req.queries.some((q) => q === K.BASE_ALLOCATION || q === 'base:');
        if (match) reply(io, option, K.NBD_REP_META_CONTEXT, encodeMetaContextReply(set ? BASE_ALLOCATION_ID : 0, K.BASE_ALLOCATION));
        if (set) meta = { name: req.name, base: match };
        reply(io, option, K.NBD_REP_ACK);
        break;
      }
      case K.NBD_OPT_INFO:
      case K.NBD_OPT_GO: {
        let req;
        try {
          req = decodeInfoRequest(data);
        } catch (err) {
          fail(io, option, K.NBD_REP_ERR_INVALID, publicMessage(err));
          break;
        }
        const handle = await openForTransmission(io, req.name);
        if (handle === undefined) {
          fail(io, option, K.NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(req.name)}`);
          break;
        }
        if (typeof handle === 'string') {
          fail(io, option, K.NBD_REP_ERR_POLICY, handle);
          break;
        }
        const d = handle.device;
        const flags = transmissionFlags(d, structured);
        reply(io, option, K.NBD_REP_INFO, encodeInfo({ kind: 'export', size: d.size, flags }));
        if (req.infos.includes(K.NBD_INFO_NAME)) reply(io, option, K.NBD_REP_INFO, encodeInfo({ kind: 'name', name: d.name }));
        if (req.infos.includes(K.NBD_INFO_DESCRIPTION) && d.description !== '') {
          reply(io, option, K.NBD_REP_INFO, encodeInfo({ kind: 'description', description: d.description }));
        }
        // Sent even unasked: it is a hint a client may ignore, and we enforce it only as EINVAL.
        reply(io, option, K.NBD_REP_INFO, encodeInfo({ kind: 'block-size', ...advertisedBlockSizes(d) }));
        reply(io, option, K.NBD_REP_ACK);
        if (option === K.NBD_OPT_INFO) {
          await handle.release();
          break;
        }
        const baseAllocation = meta !== undefined && meta.base && meta.name === req.name;
        return { handle, exportName: req.name, structured, baseAllocation, transmissionFlags: flags };
      }
      default:
        fail(io, option, K.NBD_REP_ERR_UNSUP, `option ${option} is not supported by this server`);
    }
  }
  throw new LimitError('LIMIT_EXCEEDED', `more than ${MAX_OPTIONS} options in one handshake`);
}

/** Opens an export; undefined if unknown, a message string if another server holds its lease. */
async function openForTransmission(io: NegotiationIo, name: string): Promise<DeviceHandle | string | undefined> {
  try {
    return await io.provider.open(name, { readOnly: false });
  } catch (err) {
    if (err instanceof ConflictError) {
      return `export ${JSON.stringify(name)} is in use by another server (lease held): ${publicMessage(err)}; ` +
        'wait for it to disconnect, or break the lease with `stowage nbd unlock`';
    }
    throw err;
  }
}

async function exportExists(io: NegotiationIo, name: string): Promise<boolean> {
  return (await io.provider.list()).some((e) => e.name === name);
}

/** Upgrades the connection to TLS in place (server side); ProtocolError if the handshake fails. */
async function startTls(io: NegotiationIo, tls: NbdTlsContext): Promise<void> {
  if (io.input.buffered !== 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'client sent data before the TLS handshake');
  io.input.detach();
  const raw = io.stream as Socket;
  const secure = new TLSSocket(raw, {
    isServer: true,
    secureContext: tls.secureContext,
    requestCert: tls.requireClientCert,
    rejectUnauthorized: tls.requireClientCert,
  });
  // One persistent error listener: a failed handshake may emit more than one error, and an
  // unhandled one would take the whole server down.
  await new Promise<void>((resolve, reject) => {
    secure.on('error', (err) => reject(new ProtocolError('PROTO_BAD_REQUEST', `TLS handshake failed: ${err.message}`, { cause: err })));
    secure.once('secure', resolve);
    secure.once('close', () => reject(new ProtocolError('PROTO_BAD_REQUEST', 'connection closed during the TLS handshake')));
  }).catch((err: unknown) => {
    secure.destroy();
    throw err;
  });
  io.stream = secure;
  io.input.attach(secure);
}
