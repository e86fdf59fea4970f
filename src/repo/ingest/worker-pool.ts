/**
 * Parallel delta resolution, as git index-pack's threads: the ofs-delta trees under whole
 * objects are independent, so batches of roots go to worker threads that read the spool
 * file, apply and hash, check objects, and write ids and types into the shared entry table.
 * The calling thread takes batches too (it would otherwise wait), so `threads` resolvers cost
 * one worker fewer (a worker isolate holds tens of MiB). Ref-deltas (and their subtrees)
 * stay with the main thread, which needs ids to find them.
 */
import { Worker } from 'node:worker_threads';
import {
  ConflictError,
  LimitError,
  NotFoundError,
  ProtocolError,
  StoreError,
  StowageError,
  ValidationError,
} from '../../core/errors.js';
import { ERROR_CODES, type ErrorCode } from '../../core/error-codes.js';
import type { AccelCollector } from '../accel/collector.js';
import type { EntryTable } from './entry-table.js';
import type { ResolveReply, ResolveTask, ResolveWorkerData } from './resolve-worker.js';
import type { PackVerifier } from './verify.js';

/** Batches are sized so each thread gets many (load balance) but each is worth a message. */
const BATCHES_PER_THREAD = 16;
const BATCH_DELTAS_MIN = 256;

/**
 * Young generation of a resolver thread. Nearly everything it allocates dies young (inflated
 * deltas, applied objects), so a small nursery costs little CPU, while V8's default (sized for
 * a whole process) stays resident in every thread.
 */
const WORKER_YOUNG_MB = 4;

/** What the pool needs. */
export interface PoolJob {
  readonly table: EntryTable;
  /** ofs children CSR (see ResolveWorkerData). */
  readonly childStart: Int32Array;
  readonly childList: Int32Array;
  /** Whole objects with ofs children, in pack order. */
  readonly roots: readonly number[];
  readonly spoolPath: string;
  readonly verifier: PackVerifier | undefined;
  /** Collects accelerator records; the threads send theirs back with each batch. */
  readonly accel: AccelCollector | undefined;
  readonly threads: number;
  /** Base cache budget shared by the threads. */
  readonly cacheLimit: number;
  readonly signal?: AbortSignal | undefined;
  onProgress?(resolved: number): void;
  /**
   * Resolves a batch of roots on the calling thread (checks and records going straight to the
   * caller's verifier and collector); returns the deltas it resolved. When given, the calling
   * thread is one of `threads` and one worker fewer is started: it would otherwise only wait.
   * It must stop with the signal's reason when that is aborted.
   */
  readonly local?: (roots: Int32Array, signal: AbortSignal) => Promise<number>;
}

/** Builds the ofs children CSR from the table's baseIndex column (children in pack order). */
export function ofsChildrenCsr(t: EntryTable): { childStart: Int32Array; childList: Int32Array } {
  const n = t.count;
  const childStart = new Int32Array(new SharedArrayBuffer((n + 1) * 4));
  for (let i = 0; i < n; i++) {
    const b = t.baseIndex[i]!;
    if (b >= 0) childStart[b + 1]!++;
  }
  for (let i = 0; i < n; i++) childStart[i + 1]! += childStart[i]!;
  const childList = new Int32Array(new SharedArrayBuffer(Math.max(1, childStart[n]!) * 4));
  const fill = childStart.slice(0, n);
  for (let i = 0; i < n; i++) {
    const b = t.baseIndex[i]!;
    if (b >= 0) childList[fill[b]!++] = i;
  }
  return { childStart, childList };
}

/** Splits roots into batches of roughly equal delta counts (subtree sizes from the CSR). */
function batches(job: PoolJob): Int32Array[] {
  const { table, childStart, childList } = job;
  // A child always follows its base in the pack, so sizes add up in reverse order.
  const subtree = new Int32Array(table.count);
  for (let i = table.count - 1; i >= 0; i--) {
    let s = 0;
    for (let k = childStart[i]!; k < childStart[i + 1]!; k++) s += 1 + subtree[childList[k]!]!;
    subtree[i] = s;
  }
  let total = 0;
  for (const r of job.roots) total += subtree[r]!;
  const target = Math.max(BATCH_DELTAS_MIN, Math.ceil(total / (job.threads * BATCHES_PER_THREAD)));
  const out: Int32Array[] = [];
  let current: number[] = [];
  let size = 0;
  for (const r of job.roots) {
    current.push(r);
    size += subtree[r]!;
    if (size >= target) {
      out.push(Int32Array.from(current));
      current = [];
      size = 0;
    }
  }
  if (current.length > 0) out.push(Int32Array.from(current));
  return out;
}

function rebuild(reply: Extract<ResolveReply, { kind: 'error' }>): Error {
  const code = reply.code !== undefined && reply.code in ERROR_CODES ? (reply.code as ErrorCode) : undefined;
  if (code === undefined) return new Error(`delta resolver thread failed: ${reply.message}`);
  const classes: Record<string, new (c: ErrorCode, m: string) => StowageError> = {
    ProtocolError, ValidationError, LimitError, NotFoundError, ConflictError, StoreError,
  };
  const Cls = classes[reply.name] ?? StowageError;
  return new Cls(code, reply.message);
}

/** Resolves the ofs trees of `job.roots` on worker threads (and the calling thread); returns how many deltas they resolved. */
export async function resolveInWorkers(job: PoolJob): Promise<number> {
  const queue = batches(job);
  const data: ResolveWorkerData = {
    columns: job.table.shared(),
    childStart: job.childStart,
    childList: job.childList,
    spoolPath: job.spoolPath,
    fsck: job.verifier?.config,
    accel: job.accel !== undefined,
    cacheLimit: Math.max(1, Math.floor(job.cacheLimit / job.threads)),
  };
  const url = new URL('./resolve-worker.js', import.meta.url);
  const workers: Worker[] = [];
  let resolved = 0;
  const stopLocal = new AbortController();
  let localDone: Promise<void> = Promise.resolve();
  try {
    await new Promise<void>((resolve, reject) => {
      let active = 0;
      let failed = false;
      const fail = (err: unknown): void => {
        if (failed) return;
        failed = true;
        stopLocal.abort(err);
        reject(err);
      };
      const next = (w: Worker): void => {
        if (failed) return;
        if (job.signal?.aborted === true) {
          fail(job.signal.reason);
          return;
        }
        const roots = queue.shift();
        if (roots === undefined) {
          if (--active === 0) resolve();
          return;
        }
        const task: ResolveTask = { roots };
        w.postMessage(task);
      };
      const local = job.local;
      const threads = Math.min(job.threads - (local === undefined ? 0 : 1), queue.length);
      for (let k = 0; k < threads; k++) {
        const w = new Worker(url, { workerData: { kind: 'stowage-resolve', data }, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
        workers.push(w);
        active++;
        w.on('message', (reply: ResolveReply) => {
          if (reply.kind === 'error') {
            fail(rebuild(reply));
            return;
          }
          resolved += reply.resolved;
          try {
            if (reply.state !== undefined) job.verifier?.merge(reply.state);
            if (reply.accel !== undefined) job.accel?.merge(reply.accel);
          } catch (err) {
            fail(err);
            return;
          }
          job.onProgress?.(resolved);
          next(w);
        });
        w.on('error', fail);
        w.on('exit', (code) => {
          if (code !== 0) fail(new Error(`delta resolver thread exited with code ${code}`));
        });
        next(w);
      }
      // Then this thread, on the batches the workers did not take first.
      if (local !== undefined && queue.length > 0) {
        active++;
        const localSignal = job.signal === undefined ? stopLocal.signal : AbortSignal.any([job.signal, stopLocal.signal]);
        localDone = (async () => {
          try {
            for (;;) {
              if (failed) return;
              job.signal?.throwIfAborted();
              const roots = queue.shift();
              if (roots === undefined) break;
              // Not `resolved += await …`: that reads `resolved` before the await and loses the workers' counts.
              const n = await local(roots, localSignal);
              resolved += n;
              job.onProgress?.(resolved);
            }
            if (--active === 0) resolve();
          } catch (err) {
            fail(err);
          }
        })();
      }
      if (active === 0) resolve();
    });
  } finally {
    // The calling thread's batch stops at its next check; it must not outlive this call.
    await Promise.all([...workers.map((w) => w.terminate()), localDone]);
  }
  return resolved;
}
