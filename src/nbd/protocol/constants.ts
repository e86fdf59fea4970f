/**
 * NBD wire constants, as doc/proto.md of the NBD project lists them (values, not prose).
 * Everything here is big-endian on the wire.
 */

/** 'NBDMAGIC': first 8 bytes of the server greeting. */
export const NBD_INIT_PASSWD = 0x4e42444d41474943n;
/** 'IHAVEOPT': second magic of the newstyle greeting and the magic of every option request. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Magic of every fixed-newstyle option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
/** Magic of a transmission request. */
export const NBD_REQUEST_MAGIC = 0x25609513;
/** Magic of a simple reply. */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
/** Magic of a structured reply chunk. */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (server, 16 bits). */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;

/** Client flags (32 bits); any other bit makes the server drop the connection. */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

/** Transmission flags (16 bits). */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

/** Option codes. */
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

/** Option reply types; errors have bit 31 set. */
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const REP_ERR = 0x80000000;
export const NBD_REP_ERR_UNSUP = REP_ERR + 1;
export const NBD_REP_ERR_POLICY = REP_ERR + 2;
export const NBD_REP_ERR_INVALID = REP_ERR + 3;
export const NBD_REP_ERR_PLATFORM = REP_ERR + 4;
export const NBD_REP_ERR_TLS_REQD = REP_ERR + 5;
export const NBD_REP_ERR_UNKNOWN = REP_ERR + 6;
export const NBD_REP_ERR_SHUTDOWN = REP_ERR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = REP_ERR + 8;
export const NBD_REP_ERR_TOO_BIG = REP_ERR + 9;

/** Whether an option reply type is an error (bit 31). */
export function isOptionReplyError(type: number): boolean {
  return type >= REP_ERR;
}

/** Information types of NBD_REP_INFO (and of INFO/GO requests). */
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

/** Command types. */
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

/** Command flags (16 bits). */
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

/** Structured reply flags and chunk types; error chunk types have bit 15 set. */
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

/** base:allocation status flags. */
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;

/** The only metadata context served. */
export const BASE_ALLOCATION = 'base:allocation';

/** Error values of the reply error field (fixed numbers, not the host's errno). */
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

/** Size of the request header; of a simple reply header; of a structured chunk header. */
export const REQUEST_HEADER_LENGTH = 28;
export const SIMPLE_REPLY_HEADER_LENGTH = 16;
export const STRUCTURED_HEADER_LENGTH = 20;
export const OPTION_HEADER_LENGTH = 16;
export const OPTION_REPLY_HEADER_LENGTH = 20;

/**
 * Limits on peer-controlled lengths. Strings (export names, queries, messages) MUST be at most
 * 4096 bytes by the spec; option data beyond 64 KiB is no legitimate request (the largest, a
 * SET_META_CONTEXT with a few queries, fits easily) and would let a client make us buffer
 * gigabytes before answering.
 */
export const NBD_MAX_STRING_LENGTH = 4096;
export const NBD_MAX_OPTION_LENGTH = 64 * 1024;
/** Meta-context queries per option: bounds the work and reply size of one option. */
export const NBD_MAX_META_QUERIES = 128;
/** Our advertised maximum payload: the 32 MiB the spec says no one may treat as an attack. */
export const NBD_MAX_PAYLOAD = 32 * 1024 * 1024;
