/**
 * Worker thread of parallel delta resolution: resolves the ofs-delta trees of the roots it
 * is sent (reading the spool file itself, writing ids and types into the shared entry
 * table), checks each object as the main thread would, and posts what it collected.
 * Loaded by worker-pool.ts; does nothing when imported on the main thread.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { StowageError } from '../../core/errors.js';
import type { FsckConfig } from '../../git/fsck/config.js';
import { AccelCollector, type CollectorState } from '../accel/collector.js';
import { EntryTable, typeName, type SharedColumns } from './entry-table.js';
import { SpoolPackReader, type PackBytes } from './pack-reader.js';
import { DeltaResolver } from './resolve.js';
import { PackVerifier, type VerifierState } from './verify.js';

/**
 * Spool blocks a resolver thread keeps (4 MiB): its roots come in ascending offsets, so a few
 * blocks serve them; more would only hold memory in every thread.
 */
const WORKER_BLOCKS = 16;

/** What a resolver thread is started with. */
export interface ResolveWorkerData {
  readonly columns: SharedColumns;
  /** CSR of ofs children: children of i are childList[childStart[i] .. childStart[i+1]). */
  readonly childStart: Int32Array;
  readonly childList: Int32Array;
  readonly spoolPath: string;
  /** fsck severities, or undefined to check nothing (export). */
  readonly fsck: FsckConfig | undefined;
  /** Collect accelerator records (sent back with each reply). */
  readonly accel: boolean;
  readonly cacheLimit: number;
}

/** A batch of roots to resolve. */
export interface ResolveTask {
  readonly roots: Int32Array;
}

/** The answer to one task. */
export type ResolveReply =
  | { readonly kind: 'done'; readonly resolved: number; readonly state: VerifierState | undefined; readonly accel: CollectorState | undefined }
  | { readonly kind: 'error'; readonly name: string; readonly code: string | undefined; readonly message: string };

function fileBytes(path: string): { bytes: PackBytes; close: () => void } {
  const fd = openSync(path, 'r');
  const size = fstatSync(fd).size;
  const bytes: PackBytes = {
    size,
    readSync(position: number, length: number): Uint8Array {
      const buf = Buffer.allocUnsafe(length);
      bytes.readInto!(position, length, buf);
      return buf;
    },
    readInto(position: number, length: number, into: Uint8Array): void {
      let done = 0;
      while (done < length) {
        const n = readSync(fd, into, done, length - done, position + done);
        if (n === 0) throw new Error(`spool file ended at ${position + done}`);
        done += n;
      }
    },
  };
  return { bytes, close: () => closeSync(fd) };
}

function movable(b: Uint8Array): boolean {
  return b.buffer instanceof ArrayBuffer && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
}

function run(data: ResolveWorkerData): void {
  const port = parentPort!;
  const table = EntryTable.fromShared(data.columns);
  const file = fileBytes(data.spoolPath);
  const reader = new SpoolPackReader(file.bytes, table, undefined, undefined, WORKER_BLOCKS);
  const { childStart, childList } = data;
  port.on('message', (task: ResolveTask) => {
    void (async () => {
      const verifier = data.fsck === undefined ? undefined : new PackVerifier(data.fsck);
      const accel = data.accel ? new AccelCollector() : undefined;
      const resolver = new DeltaResolver({
        table,
        reader,
        takeChildren: (i) => {
          const from = childStart[i]!;
          const to = childStart[i + 1]!;
          return from === to ? undefined : childList.subarray(from, to);
        },
        onResolved: (i, bytes, base, baseData) => {
          const type = table.type[i]!;
          const change = accel?.add(i, type, bytes, base, baseData);
          if (verifier !== undefined && PackVerifier.checks(type)) verifier.check(table.oidHex(i), typeName(type), bytes, change);
        },
        cacheLimit: data.cacheLimit,
      });
      try {
        for (const root of task.roots) await resolver.resolveFrom(root);
        const state = verifier?.exportState();
        const collected = accel?.exportState();
        const reply: ResolveReply = { kind: 'done', resolved: resolver.resolved, state, accel: collected };
        // Move the big buffers instead of copying them: this thread drops them now.
        const transfer = collected === undefined ? [] : AccelCollector.transferList(collected);
        if (state !== undefined) for (const b of [state.linkKeys, state.linkVals]) if (movable(b)) transfer.push(b.buffer as ArrayBuffer);
        port.postMessage(reply, transfer);
      } catch (err) {
        const reply: ResolveReply = {
          kind: 'error',
          name: err instanceof Error ? err.name : 'Error',
          code: err instanceof StowageError ? err.code : undefined,
          message: err instanceof Error ? err.message : String(err),
        };
        port.postMessage(reply);
      }
    })();
  });
  port.on('close', () => file.close());
}

if (!isMainThread && parentPort !== null && (workerData as { kind?: unknown } | null)?.kind === 'stowage-resolve') {
  run((workerData as { data: ResolveWorkerData }).data);
}
