/**
 * Writing a service's response: a serial queue over the frontend's ByteSink (progress
 * callbacks write without awaiting, so order is kept here), a record of whether anything
 * was sent (errors before that are thrown for the frontend to map), and side-band framing.
 */
import { encodeSideband, frameSideband, SIDEBAND_64K_MAX, SIDEBAND_MAX } from '../git/pktline/sideband.js';
import { encodePktLine } from '../git/pktline/encode.js';
import { frameLines, type OutLine } from '../git/protocol/lines.js';
import type { ByteSink } from './git-service.js';

/** Serialised writes to a ByteSink. */
export class ServiceOutput {
  /** True once any byte has been handed to the sink. */
  started = false;
  /** True once a side-band stream began: errors then go on band 3, never as an ERR line. */
  streaming = false;
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown;
  private lastWriteMs = Date.now();

  constructor(private readonly sink: ByteSink) {}

  /** Queues `bytes` after every earlier write; resolves when the sink accepted them. */
  write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return this.tail;
    this.started = true;
    this.lastWriteMs = Date.now();
    const p = this.tail.then(async () => {
      if (this.failure !== undefined) throw this.failure;
      try {
        await this.sink.write(bytes);
      } catch (err) {
        this.failure = err;
        throw err;
      }
    });
    // Keep the chain alive after a failure; the failure is reported to whoever awaits.
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Queues a write nobody awaits (progress); a failure surfaces at the next awaited write. */
  post(bytes: Uint8Array): void {
    void this.write(bytes).catch(() => undefined);
  }

  /** Frames and writes text lines and special packets. */
  lines(lines: readonly OutLine[]): Promise<void> {
    return this.write(frameLines(lines));
  }

  /** Resolves when every queued write is done; rejects if one failed. */
  async drain(): Promise<void> {
    await this.tail;
    if (this.failure !== undefined) throw this.failure;
  }

  /** True when the sink can tell when it released what it was given (see settled). */
  get canSettle(): boolean {
    return this.sink.settled !== undefined;
  }

  /** Resolves once every queued write is done and the sink holds none of their bytes. */
  async settled(): Promise<void> {
    await this.drain();
    await this.sink.settled?.();
  }

  /** Milliseconds since the last write was queued. */
  idleMs(): number {
    return Date.now() - this.lastWriteMs;
  }
}

/** How pack data and messages are multiplexed: not at all, side-band (1000) or side-band-64k. */
export type SidebandMode = 'none' | 'sideband' | 'sideband-64k';

/** Bytes gathered before a pack chunk is framed and written (fewer, fuller packets). */
const COALESCE_BYTES = 256 * 1024;

/** Side-band channel for a pack response (gitprotocol-capabilities "side-band, side-band-64k"). */
export class SidebandWriter {
  private readonly max: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly out: ServiceOutput,
    readonly mode: SidebandMode,
    /** Whether band 2 (progress) is wanted (not with no-progress or quiet). */
    readonly progressEnabled: boolean,
  ) {
    this.max = mode === 'sideband' ? SIDEBAND_MAX : SIDEBAND_64K_MAX;
    if (mode !== 'none') out.streaming = true;
  }

  /** Pack data: band 1, or raw bytes without side-band. Small chunks are gathered first (not copied). */
  async data(chunk: Uint8Array): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= COALESCE_BYTES) await this.flushData();
  }

  /** Writes gathered pack data: packet headers and views of the chunks, in order, no copy. */
  async flushData(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const parts = this.mode === 'none' ? this.pending : frameSideband(1, this.pending, this.max);
    this.pending = [];
    this.pendingBytes = 0;
    // One awaited write: a failure of an earlier one fails this one too (ServiceOutput.write).
    for (let i = 0; i < parts.length - 1; i++) this.out.post(parts[i]!);
    await this.out.write(parts[parts.length - 1]!);
  }

  /** Resolves once every pack chunk given to data() was written and released by the sink. */
  async settled(): Promise<void> {
    await this.flushData();
    await this.out.settled();
  }

  /** Progress text on band 2 (dropped without side-band or when progress is off). Not awaited. */
  progress(text: string): void {
    if (this.mode === 'none' || !this.progressEnabled || text.length === 0) return;
    this.out.post(encodeSideband(2, Buffer.from(text, 'utf8'), this.max));
  }

  /** A message for the user on band 2 whatever the progress setting (git's rp_error/rp_warning). */
  message(text: string): void {
    if (this.mode === 'none' || text.length === 0) return;
    this.out.post(encodeSideband(2, Buffer.from(text, 'utf8'), this.max));
  }

  /** An error message: band 3 with side-band; without it there is no place for one mid-stream. */
  async error(text: string): Promise<void> {
    if (this.mode === 'none') return;
    await this.out.write(encodeSideband(3, Buffer.from(`${text}\n`, 'utf8'), this.max));
  }

  /**
   * A keepalive git's clients skip: an empty packet on band 1 while a pack is produced
   * (upload-pack.c sends "0005\1") or band 2 while a push is processed (receive-pack.c "0005\2").
   */
  keepalive(band: 1 | 2): void {
    if (this.mode === 'none') return;
    this.out.post(band === 1 ? KEEPALIVE_1 : KEEPALIVE_2);
  }

  /** A text line: band 1 pkt-line inside the side-band (report-status), or a plain pkt-line. */
  async packetOnBand1(pkts: Uint8Array): Promise<void> {
    await this.out.write(this.mode === 'none' ? pkts : encodeSideband(1, pkts, this.max));
  }

}

const KEEPALIVE_1 = Buffer.from('0005\x01', 'latin1');
const KEEPALIVE_2 = Buffer.from('0005\x02', 'latin1');

/** git's default keepalive interval (uploadpack.keepAlive, receive.keepAlive): 5 seconds. */
export const KEEPALIVE_MS = 5000;

/**
 * Runs `work` while sending a keepalive on `band` whenever the output has been idle for
 * `everyMs` and `active()` says the client is listening.
 */
export async function withKeepalive<T>(
  out: ServiceOutput,
  sb: SidebandWriter | undefined,
  band: 1 | 2,
  work: () => Promise<T>,
  opts: { everyMs?: number; active?: () => boolean } = {},
): Promise<T> {
  if (sb === undefined || sb.mode === 'none') return work();
  const everyMs = opts.everyMs ?? KEEPALIVE_MS;
  const timer = setInterval(() => {
    if (out.idleMs() >= everyMs && (opts.active?.() ?? true)) sb.keepalive(band);
  }, Math.max(50, Math.floor(everyMs / 2)));
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** An ERR pkt-line (gitprotocol-pack "error-line"), which ends the conversation. */
export function errLine(message: string): Uint8Array {
  return encodePktLine(`ERR ${message}\n`);
}
