/**
 * The push request (gitprotocol-pack "Reference Update Request"): optional `shallow <oid>`
 * lines, then `<old> <new> <ref>` commands with the capabilities after a NUL on the first,
 * a flush, then (with push-options) option lines and a flush, then the pack.
 */
import { LimitError, ProtocolError } from '../../core/errors.js';
import { FETCH_LINES_MAX, PUSH_COMMANDS_MAX, PUSH_OPTIONS_MAX } from '../../core/limits.js';
import { ZERO_OID, type ObjectId } from '../hash/object-id.js';
import { pktLineText } from '../pktline/encode.js';
import { formatCapabilityList, parseCapabilityList, type Capability } from './capabilities.js';
import { FLUSH, expectOid, frameLines, quoteLine, type OutLine } from './lines.js';

/** One ref update. A zero `oldOid` creates; a zero `newOid` deletes. The name is unchecked. */
export interface RefCommand {
  readonly oldOid: ObjectId;
  readonly newOid: ObjectId;
  readonly name: string;
}

/** The command section of a push. */
export interface ReceiveRequest {
  readonly commands: readonly RefCommand[];
  readonly capabilities: readonly Capability[];
  /** Commits the client has without their parents (it is a shallow clone). */
  readonly shallows: readonly ObjectId[];
}

/** True if the command deletes its ref. */
export function isDelete(cmd: RefCommand): boolean {
  return cmd.newOid === ZERO_OID;
}

/** Longest push option accepted, in characters. */
export const PUSH_OPTION_LENGTH_MAX = 4096;

/**
 * Parses the command section (data lines up to the flush). Throws ProtocolError('PROTO_BAD_REQUEST')
 * for malformed lines and for push certificates (never advertised), LimitError('LIMIT_EXCEEDED')
 * past PUSH_COMMANDS_MAX commands or FETCH_LINES_MAX shallow lines.
 */
export function parseReceiveRequest(lines: readonly Uint8Array[]): ReceiveRequest {
  const commands: RefCommand[] = [];
  const capabilities: Capability[] = [];
  const shallows: ObjectId[] = [];
  for (const payload of lines) {
    let line = pktLineText(payload);
    if (line.startsWith('shallow ')) {
      if (commands.length > 0) throw new ProtocolError('PROTO_BAD_REQUEST', 'shallow line after push commands');
      if (shallows.length >= FETCH_LINES_MAX) throw new LimitError('LIMIT_EXCEEDED', `more than ${FETCH_LINES_MAX} shallow lines in a push`);
      shallows.push(expectOid(line.slice(8), 'shallow line'));
      continue;
    }
    const nul = line.indexOf('\0');
    if (nul >= 0) {
      capabilities.push(...parseCapabilityList(line.slice(nul + 1)));
      line = line.slice(0, nul);
    }
    if (line === 'push-cert') {
      throw new ProtocolError('PROTO_BAD_REQUEST', 'push certificates are not supported by this server (push-cert was not advertised)');
    }
    if (line.length < 83 || line[40] !== ' ' || line[81] !== ' ') {
      throw new ProtocolError('PROTO_BAD_REQUEST', `protocol error: expected old/new/ref, got ${quoteLine(line)}`);
    }
    if (commands.length >= PUSH_COMMANDS_MAX) {
      throw new LimitError('LIMIT_EXCEEDED', `more than ${PUSH_COMMANDS_MAX} ref updates in one push`);
    }
    commands.push({
      oldOid: expectOid(line.slice(0, 40), 'push command old id'),
      newOid: expectOid(line.slice(41, 81), 'push command new id'),
      name: line.slice(82),
    });
  }
  return { commands, capabilities, shallows };
}

/** Encodes a command section as a client sends it (capabilities on the first command), flush included. */
export function encodeReceiveRequest(req: ReceiveRequest): Uint8Array {
  const lines: OutLine[] = req.shallows.map((s) => `shallow ${s}`);
  const caps = formatCapabilityList(req.capabilities);
  req.commands.forEach((c, i) => {
    const text = `${c.oldOid} ${c.newOid} ${c.name}`;
    lines.push(i === 0 ? `${text}\0${caps}` : text);
  });
  lines.push(FLUSH);
  return frameLines(lines);
}

/**
 * Parses push options (data lines up to the flush). Throws LimitError('LIMIT_EXCEEDED') past
 * PUSH_OPTIONS_MAX options or PUSH_OPTION_LENGTH_MAX characters, ProtocolError for a NUL.
 */
export function parsePushOptions(lines: readonly Uint8Array[]): string[] {
  if (lines.length > PUSH_OPTIONS_MAX) {
    throw new LimitError('LIMIT_EXCEEDED', `more than ${PUSH_OPTIONS_MAX} push options`);
  }
  return lines.map((payload) => {
    const opt = pktLineText(payload);
    if (opt.length > PUSH_OPTION_LENGTH_MAX) {
      throw new LimitError('LIMIT_EXCEEDED', `push option longer than ${PUSH_OPTION_LENGTH_MAX} characters`);
    }
    if (opt.includes('\0')) throw new ProtocolError('PROTO_BAD_REQUEST', 'push option contains a NUL byte');
    return opt;
  });
}

/** Encodes push options as a client sends them, flush included. */
export function encodePushOptions(options: readonly string[]): Uint8Array {
  return frameLines([...options, FLUSH]);
}
