/**
 * Structured logging: pino, one JSON object per line on stdout unless told otherwise.
 * Loggers are built by cli/ and passed down; each connection gets a child carrying `reqId`.
 * Secrets never belong in a log line: credentials in common places are redacted as a net.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';

/** The logger type every layer accepts. */
export type Logger = pino.Logger;

/** Levels accepted by config and `--log-level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where log lines go: anything with a `write(line)` method. */
export interface LogDestination {
  write(line: string): unknown;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  /** Human-readable single lines instead of JSON (for a terminal). */
  readonly pretty?: boolean;
  /** Defaults to stdout (fd 1). */
  readonly destination?: LogDestination;
}

/** Paths whose values are replaced by "[redacted]" should a caller ever log them. */
const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.authorization',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
];

/** Creates the root logger: JSON lines with a string `level`, no pid/hostname noise. */
export function createLogger(opts: LoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: null,
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const sink = opts.destination ?? pino.destination({ dest: 1, sync: true });
  const dest = opts.pretty === true ? prettyDestination(sink) : sink;
  return pino(options, dest as pino.DestinationStream);
}

/** A short random id for one connection or request (the first group of a UUID). */
export function newRequestId(): string {
  return randomUUID().slice(0, 8);
}

/** A child logger for one connection: every line carries `reqId` and the given bindings. */
export function requestLogger(parent: Logger, reqId: string, bindings: Record<string, unknown> = {}): Logger {
  return parent.child({ reqId, ...bindings });
}

const SKIP_KEYS = new Set(['level', 'time', 'msg']);

/** Turns pino's JSON lines into `time LEVEL msg key=value …` lines. */
function prettyDestination(out: LogDestination): LogDestination {
  return {
    write(line: string): void {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(line);
        return;
      }
      const time = typeof obj['time'] === 'string' ? obj['time'].slice(11, 23) : '';
      const level = String(obj['level'] ?? '').toUpperCase().padEnd(5);
      const parts = [time, level, String(obj['msg'] ?? '')];
      for (const [k, v] of Object.entries(obj)) {
        if (SKIP_KEYS.has(k)) continue;
        parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      }
      out.write(`${parts.join(' ')}\n`);
    },
  };
}
