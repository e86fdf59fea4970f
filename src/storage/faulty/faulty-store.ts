/**
 * A fault-injecting ObjectStore wrapper for tests of the layers above: on a set share of calls
 * it fails (before the call reaches the inner store, or after a write has landed there, as a
 * lost acknowledgement does) or delays. Faults come from a seeded generator, so a failing run
 * can be replayed. Faults are StoreError('STORE_IO'), what a real backend throws.
 */
import { StoreError } from '../../core/errors.js';
import type {
  GetOptions,
  ListOptions,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  PutResult,
  SignalOptions,
} from '../object-store.js';
import { mulberry32 as generator } from '../../core/prng.js';

/** The operations faults can hit. */
export type FaultOp = 'get' | 'head' | 'put' | 'delete' | 'list' | 'sync';

export interface FaultOptions {
  /** Share of calls (0..1) that fail. */
  readonly errorRate?: number;
  /** Share of failing puts whose write lands before the error is thrown (lost acknowledgement). */
  readonly lostAckRate?: number;
  /** Share of calls (0..1) delayed by up to `maxDelayMs`. */
  readonly delayRate?: number;
  readonly maxDelayMs?: number;
  /** Operations faults may hit (default: all). */
  readonly ops?: readonly FaultOp[];
  /** Seed of the generator (default 1). */
  readonly seed?: number;
}

/** How many faults were injected, by kind. */
export interface FaultCounts {
  errors: number;
  lostAcks: number;
  delays: number;
  calls: number;
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Wraps a store; `enabled` can be switched off to check the result with faults gone. */
export class FaultyStore implements ObjectStore {
  readonly description: string;
  readonly blockSize: number;
  readonly counts: FaultCounts = { errors: 0, lostAcks: 0, delays: 0, calls: 0 };
  enabled = true;
  readonly #inner: ObjectStore;
  readonly #opts: Required<Omit<FaultOptions, 'seed'>>;
  readonly #random: () => number;

  constructor(inner: ObjectStore, opts: FaultOptions = {}) {
    this.#inner = inner;
    this.description = `faulty(${inner.description})`;
    this.blockSize = inner.blockSize;
    this.#opts = {
      errorRate: opts.errorRate ?? 0,
      lostAckRate: opts.lostAckRate ?? 0,
      delayRate: opts.delayRate ?? 0,
      maxDelayMs: opts.maxDelayMs ?? 20,
      ops: opts.ops ?? ['get', 'head', 'put', 'delete', 'list', 'sync'],
    };
    this.#random = generator(opts.seed ?? 1);
  }

  /** Delays and decides whether this call fails; 'after' means: let a write land, then fail. */
  async #fault(op: FaultOp, key: string): Promise<'none' | 'before' | 'after'> {
    this.counts.calls += 1;
    if (!this.enabled || !this.#opts.ops.includes(op)) return 'none';
    if (this.#random() < this.#opts.delayRate) {
      this.counts.delays += 1;
      await sleep(Math.floor(this.#random() * this.#opts.maxDelayMs));
    }
    if (this.#random() >= this.#opts.errorRate) return 'none';
    if (op === 'put' && this.#random() < this.#opts.lostAckRate) {
      this.counts.lostAcks += 1;
      return 'after';
    }
    this.counts.errors += 1;
    return 'before';
  }

  #error(op: FaultOp, key: string): StoreError {
    return new StoreError('STORE_IO', `injected fault: ${op} ${key} failed`);
  }

  async tryGet(key: string, opts?: GetOptions): Promise<Uint8Array | undefined> {
    if ((await this.#fault('get', key)) !== 'none') throw this.#error('get', key);
    return this.#inner.tryGet(key, opts);
  }

  async get(key: string, opts?: GetOptions): Promise<Uint8Array> {
    if ((await this.#fault('get', key)) !== 'none') throw this.#error('get', key);
    return this.#inner.get(key, opts);
  }

  async *getStream(key: string, opts?: GetOptions): AsyncIterable<Uint8Array> {
    if ((await this.#fault('get', key)) !== 'none') throw this.#error('get', key);
    yield* this.#inner.getStream(key, opts);
  }

  async head(key: string, opts?: SignalOptions): Promise<ObjectInfo | undefined> {
    if ((await this.#fault('head', key)) !== 'none') throw this.#error('head', key);
    return this.#inner.head(key, opts);
  }

  async put(key: string, body: Uint8Array | AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<PutResult> {
    const fault = await this.#fault('put', key);
    if (fault === 'before') {
      // Consume a streamed body as a real store would have before failing.
      if (!(body instanceof Uint8Array)) for await (const _ of body) void _;
      throw this.#error('put', key);
    }
    const result = await this.#inner.put(key, body, opts);
    if (fault === 'after') throw this.#error('put', key);
    return result;
  }

  async delete(key: string, opts?: SignalOptions): Promise<void> {
    if ((await this.#fault('delete', key)) !== 'none') throw this.#error('delete', key);
    return this.#inner.delete(key, opts);
  }

  async *list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo> {
    if ((await this.#fault('list', prefix)) !== 'none') throw this.#error('list', prefix);
    yield* this.#inner.list(prefix, opts);
  }

  async sync(opts?: SignalOptions): Promise<void> {
    if ((await this.#fault('sync', '')) !== 'none') throw this.#error('sync', '');
    return this.#inner.sync(opts);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
