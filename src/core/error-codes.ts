/**
 * The catalog of error codes. Every code thrown anywhere is listed here and in
 * docs/ERRORS.md; a test keeps the two in step. Add codes here first.
 */
export interface ErrorCodeInfo {
  /** Whether the message is safe to show a remote client by default. */
  readonly expose: boolean;
  /** HTTP status a frontend answers with. */
  readonly http: number;
}

function c(http: number, expose = true): ErrorCodeInfo {
  return { http, expose };
}

export const ERROR_CODES = {
  INTERNAL: c(500, false),
  // pkt-line and protocol
  PKT_BAD_LENGTH: c(400),
  PKT_TOO_LONG: c(400),
  PKT_UNEXPECTED: c(400),
  PKT_TRUNCATED: c(400),
  PROTO_BAD_REQUEST: c(400),
  PROTO_UNKNOWN_CAPABILITY: c(400),
  PROTO_UNKNOWN_COMMAND: c(400),
  PROTO_UNKNOWN_PARAM: c(400),
  PROTO_BAD_WANT: c(400),
  PROTO_NOT_OUR_REF: c(400),
  PROTO_UNSUPPORTED_VERSION: c(400),
  PROTO_SERVICE_DISABLED: c(403),
  // objects and packs
  OBJ_BAD_ID: c(400),
  OBJ_BAD_TYPE: c(400),
  OBJ_CORRUPT: c(400),
  OBJ_MISSING: c(404),
  OBJ_HASH_MISMATCH: c(400),
  PACK_BAD_HEADER: c(400),
  PACK_BAD_CHECKSUM: c(400),
  PACK_TRUNCATED: c(400),
  PACK_BAD_ENTRY: c(400),
  PACK_BAD_DELTA: c(400),
  PACK_DELTA_BASE_MISSING: c(400),
  PACK_DELTA_CYCLE: c(400),
  IDX_CORRUPT: c(500, false),
  FSCK_FAILED: c(400),
  CONNECTIVITY_FAILED: c(400),
  // refs and repositories
  REF_BAD_NAME: c(400),
  REF_CAS_LOST: c(409),
  REF_NOT_FOUND: c(404),
  REPO_BAD_NAME: c(400),
  REPO_NOT_FOUND: c(404),
  REPO_EXISTS: c(409),
  REPO_CORRUPT: c(500, false),
  // limits
  LIMIT_EXCEEDED: c(413),
  // storage and meta
  STORE_NOT_FOUND: c(404, false),
  STORE_IO: c(503, false),
  STORE_BAD_KEY: c(400, false),
  STORE_CONDITION_UNSUPPORTED: c(500),
  META_CORRUPT: c(500, false),
  META_CONTENTION: c(503),
  // block devices
  VOLUME_BAD_NAME: c(400),
  VOLUME_NOT_FOUND: c(404),
  VOLUME_EXISTS: c(409),
  VOLUME_LEASE_HELD: c(409),
  VOLUME_LEASE_LOST: c(409),
  NBD_FAST_ZERO_UNSUPPORTED: c(400),
  // auth
  AUTH_REQUIRED: c(401),
  AUTH_DENIED: c(403),
  // config and cli
  CONFIG_INVALID: c(400),
  ARG_INVALID: c(400),
  // transport
  HTTP_BAD_REQUEST: c(400),
  HTTP_NOT_FOUND: c(404),
  HTTP_METHOD_NOT_ALLOWED: c(405),
  HTTP_UNSUPPORTED_MEDIA_TYPE: c(415),
  ABORTED: c(499),
  TIMEOUT: c(504),
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
