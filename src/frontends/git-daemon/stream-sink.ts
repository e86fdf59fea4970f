/**
 * A ByteSink over a Node Writable (socket, HTTP response) that honours backpressure: a write
 * resolves at once while the stream's buffer has room, else when it drains. Like any Node
 * stream, the sink keeps the chunk until the stream has written it: callers reuse a buffer
 * only after `settled()`.
 */
import type { Writable } from 'node:stream';
import { StowageError } from '../../core/errors.js';
import type { ByteSink } from '../../service/git-service.js';

function closedError(): StowageError {
  return new StowageError('ABORTED', 'the connection closed before the response was sent');
}

/** Resolves on 'drain'; rejects if the stream closes or fails first. */
export function waitDrain(stream: Writable): Promise<void> {
  if (stream.destroyed) return Promise.reject(closedError());
  return new Promise<void>((resolve, reject) => {
    const done = (err?: unknown): void => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      stream.off('error', onError);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(closedError());
    const onError = (err: unknown): void => done(new StowageError('ABORTED', 'the connection failed while sending', { cause: err }));
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onError);
  });
}

/** Writes to a Writable with backpressure; `started` says whether any byte was offered yet. */
export class StreamSink implements ByteSink {
  private wrote = false;
  /** Resolves when the stream is done with the last chunk written (so with all before it). */
  private last: Promise<void> = Promise.resolve();

  /** `beforeFirst` runs once, just before the first byte (e.g. to send HTTP headers). */
  constructor(
    private readonly stream: Writable,
    private readonly beforeFirst?: () => void,
  ) {}

  /** True once the first non-empty write happened: errors can no longer be sent as a status. */
  get started(): boolean {
    return this.wrote;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    if (this.stream.destroyed || this.stream.writableEnded) throw closedError();
    if (!this.wrote) {
      this.wrote = true;
      this.beforeFirst?.();
    }
    // Write callbacks run in order, also on failure (then the stream drops what it held).
    let done!: () => void;
    this.last = new Promise<void>((resolve) => (done = resolve));
    if (!this.stream.write(chunk, () => done())) await waitDrain(this.stream);
  }

  /** Resolves once the stream has written (or dropped, on failure) every chunk given to it. */
  settled(): Promise<void> {
    return this.last;
  }
}
