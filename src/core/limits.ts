/**
 * Limits on every input that crosses the network. Each constant names what it blocks.
 * Runtime-configurable limits live in `Limits` and are passed down from cli/; the
 * constants are their defaults or hard protocol ceilings.
 */

/** pkt-line length is four hex digits including themselves: 65520 is git's LARGE_PACKET_MAX. */
export const PKT_LINE_MAX = 65520;
/** Longest payload of a data pkt-line (PKT_LINE_MAX minus the 4-byte length). */
export const PKT_PAYLOAD_MAX = PKT_LINE_MAX - 4;
/** Ref names longer than this are refused: git has no hard limit, but 4 KiB stops memory games. */
export const REF_NAME_MAX = 4096;
/** Repository names (with slashes) are at most this many bytes. */
export const REPO_NAME_MAX = 256;
/** A single path component inside a repository name. */
export const REPO_NAME_COMPONENT_MAX = 100;
/** Commands (ref updates) in one push. */
export const PUSH_COMMANDS_MAX = 100_000;
/** wants/haves/shallows lines in one fetch request; stops quadratic negotiation abuse. */
export const FETCH_LINES_MAX = 1_000_000;
/** Delta chain depth: git's pack depth ceiling is 4095. */
export const DELTA_CHAIN_MAX = 4095;
/** Largest object a pack entry may declare (inflated); stops allocation bombs. */
export const OBJECT_SIZE_MAX = 2 * 1024 * 1024 * 1024 - 1;
/** git daemon request line: a pkt-line, so PKT_PAYLOAD_MAX; extra params are capped in count. */
export const DAEMON_PARAMS_MAX = 32;
/** Push options in one push (git has no limit; we do). */
export const PUSH_OPTIONS_MAX = 100;
/** HTTP request body (after gzip) for upload-pack negotiation. */
export const HTTP_NEGOTIATION_BODY_MAX = 64 * 1024 * 1024;

/** Limits that an operator may change (config `limits.*`). */
export interface Limits {
  /** Largest pack accepted in one push, in bytes. */
  readonly packSizeMax: number;
  /** Most objects accepted in one push. */
  readonly packObjectsMax: number;
  /** Largest inflated object accepted in a push. */
  readonly objectSizeMax: number;
  /** Time a connection may stay idle between reads, in ms. */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  packSizeMax: 4 * 1024 * 1024 * 1024,
  packObjectsMax: 50_000_000,
  objectSizeMax: 512 * 1024 * 1024,
  idleTimeoutMs: 5 * 60_000,
};
