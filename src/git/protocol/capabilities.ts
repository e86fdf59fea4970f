/**
 * Capability lists of protocol v0/v1 (gitprotocol-capabilities): space-separated `name` or
 * `name=value` words after the NUL of the first advertised ref, the first want line or the
 * first push command. Names are lowercase letters, digits, '-' and '_'; values are printable
 * ASCII without spaces (the agent rule, which is the strictest git states).
 */
import { ProtocolError } from '../../core/errors.js';

/** One capability word. `value` is undefined for a bare name (no '='). */
export interface Capability {
  readonly name: string;
  readonly value?: string;
}

/** Most words accepted in one list: git sends about 20; this stops a peer splitting a line into 64k words. */
export const CAPABILITIES_MAX = 256;

const NAME_RE = /^[a-z0-9_-]+$/;
const VALUE_RE = /^[\x21-\x7e]*$/;

/** True if `name` is a well-formed capability name. */
export function isCapabilityName(name: string): boolean {
  return NAME_RE.test(name);
}

/** True if `value` may follow `name=` (printable ASCII, no space). */
export function isCapabilityValue(value: string): boolean {
  return VALUE_RE.test(value);
}

/**
 * Parses a space-separated capability list. Empty words (doubled or trailing spaces, as
 * some clients send) are skipped. Throws ProtocolError('PROTO_BAD_REQUEST') for a malformed word.
 */
export function parseCapabilityList(text: string): Capability[] {
  const out: Capability[] = [];
  for (const word of text.split(' ')) {
    if (word.length === 0) continue;
    if (out.length >= CAPABILITIES_MAX) {
      throw new ProtocolError('PROTO_BAD_REQUEST', `more than ${CAPABILITIES_MAX} capabilities in one list`);
    }
    out.push(parseCapability(word));
  }
  return out;
}

/** Parses one `name` or `name=value` word; throws ProtocolError('PROTO_BAD_REQUEST'). */
export function parseCapability(word: string): Capability {
  const eq = word.indexOf('=');
  const name = eq < 0 ? word : word.slice(0, eq);
  if (!isCapabilityName(name)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `malformed capability ${JSON.stringify(word.slice(0, 100))}`);
  }
  if (eq < 0) return { name };
  const value = word.slice(eq + 1);
  if (!isCapabilityValue(value)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `malformed value of capability ${name}`);
  }
  return { name, value };
}

/** Formats one capability word; throws ProtocolError('PROTO_BAD_REQUEST') if it could not be parsed back. */
export function formatCapability(cap: Capability): string {
  if (!isCapabilityName(cap.name)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `malformed capability name ${JSON.stringify(cap.name.slice(0, 100))}`);
  }
  if (cap.value === undefined) return cap.name;
  if (!isCapabilityValue(cap.value)) {
    throw new ProtocolError('PROTO_BAD_REQUEST', `malformed value of capability ${cap.name}`);
  }
  return `${cap.name}=${cap.value}`;
}

/** Formats a list as space-separated words. */
export function formatCapabilityList(caps: readonly Capability[]): string {
  return caps.map(formatCapability).join(' ');
}

/** True if the list has `name`, with or without a value. */
export function hasCapability(caps: readonly Capability[], name: string): boolean {
  return caps.some((c) => c.name === name);
}

/** The value of the first `name=value` in the list, or undefined. */
export function capabilityValue(caps: readonly Capability[], name: string): string | undefined {
  for (const c of caps) if (c.name === name && c.value !== undefined) return c.value;
  return undefined;
}

/** Makes an agent string safe to advertise: anything outside printable ASCII or a space becomes '.' (git's sanitizing). */
export function sanitizeAgent(agent: string): string {
  const s = agent.replace(/[^\x21-\x7e]/g, '.');
  return s.length === 0 ? 'unknown' : s;
}
