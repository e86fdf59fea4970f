/**
 * One etcd client with the rules every etcd call in Stowage follows: each call has a
 * deadline (`callTimeoutMs`, retries on other members included), so a call never hangs when
 * the cluster has lost quorum; it fails with StoreError('STORE_IO') naming the endpoints.
 *
 * Retries: a call that fails with a transient error (a member down, an election, "leader
 * changed") is retried, on whichever member answers, until its deadline. A retried write
 * may have been applied by an earlier attempt: `txn` says whether it retried, and callers
 * recognise their own earlier success in the failure branch (every transaction writes a
 * token or a value it can recognise). A write that runs out of time fails with a message
 * saying its outcome is unknown.
 */
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import {
  Etcd3,
  GRPCDeadlineExceededError,
  isRecoverableError,
  type IKeyValue,
  type Lease,
  type IRangeResponse,
  type IRequestOp,
  type ICompare,
  type ITxnResponse,
  type IOptions,
} from 'etcd3';
import { StoreError, StowageError } from '../../core/errors.js';
import { endpointAddress, resolveEtcdOptions, wantsTls, type EtcdOptions, type ResolvedEtcdOptions } from './etcd-options.js';

/** Keys per page when a range is read in pages (all pages at one revision). */
const PAGE_KEYS = 2000;
/** Shortest time one attempt of a call gets before it is sent again. */
const ATTEMPT_MIN_MS = 1000;
/** Largest response accepted; pages are far smaller, journal chunks are at most a few MiB. */
const MAX_RECEIVE_BYTES = 256 * 1024 * 1024;

/** The byte just after a prefix's range: etcd's `range_end` for "every key starting with". */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all 0xff: to the end of the keyspace
}

type FaultPolicy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** A fault policy that only runs the call (cockatiel's IPolicy shape): our own loop retries. */
const PASS_THROUGH: FaultPolicy = {
  _altReturn: undefined as never,
  onSuccess: () => ({ dispose: () => undefined }),
  onFailure: () => ({ dispose: () => undefined }),
  execute: async (fn) => fn({ signal: new AbortController().signal }),
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when the error proves the request was never sent (so a failed write surely was not applied). */
function neverSent(err: unknown): boolean {
  const text = err instanceof Error ? err.message : '';
  return /No connection established|ECONNREFUSED|Connection dropped before|circuit breaker is open/i.test(text);
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.message.split('\n')[0]?.slice(0, 300) ?? err.name;
}

/** One member's status as it sees itself (see EtcdConnection.endpointStatus). */
export type EndpointStatus =
  | {
      readonly endpoint: string;
      readonly ok: true;
      readonly memberId: string;
      readonly version: string;
      readonly isLeader: boolean;
      /** Whether the member knows a leader: false means no quorum from where it stands. */
      readonly hasLeader: boolean;
      readonly raftTerm: number;
      readonly raftIndex: number;
      readonly dbSizeBytes: number;
      readonly errors: readonly string[];
    }
  | { readonly endpoint: string; readonly ok: false; readonly error: string };

/** A transaction's answer, and whether it was sent more than once. */
export type TxnResult = ITxnResponse & { readonly retried: boolean };

/** A range read: the keys and the revision they were read at. */
export interface RangeResult {
  readonly kvs: IKeyValue[];
  readonly revision: number;
}

/** An etcd client with deadlines, error mapping and paged range reads. */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly options: ResolvedEtcdOptions;
  /** Every key of this deployment starts with this. */
  readonly prefix: string;
  private closed = false;
  private readonly leases = new Set<Lease>();

  private constructor(
    client: Etcd3,
    options: ResolvedEtcdOptions,
    private readonly config: IOptions,
  ) {
    this.client = client;
    this.options = options;
    this.prefix = options.prefix;
  }

  /** Builds the client and checks that the cluster answers within `dialTimeoutMs`. */
  static async open(opts: EtcdOptions): Promise<EtcdConnection> {
    const options = resolveEtcdOptions(opts);
    const config: IOptions = {
      hosts: options.endpoints.map((e) => `http://${endpointAddress(e)}`),
      // Every unary call gets a deadline; streams (watch, lease keep-alive) have none.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + options.callTimeoutMs }),
      // Retries are ours (see the header): the library's would multiply the deadline and retry writes.
      faultHandling: { host: () => PASS_THROUGH, global: PASS_THROUGH },
      grpcOptions: {
        'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
      },
    };
    if (options.auth !== undefined) config.auth = { username: options.auth.username, password: options.auth.password };
    if (wantsTls(options)) {
      const tls = options.tls ?? {};
      const read = async (file: string | undefined, what: string): Promise<Buffer | undefined> => {
        if (file === undefined) return undefined;
        try {
          return await readFile(file);
        } catch (err) {
          throw new StoreError('STORE_IO', `etcd: cannot read the TLS ${what} file ${file}: ${describe(err)}`, { cause: err });
        }
      };
      const ca = (await read(tls.caFile, 'CA')) ?? Buffer.from(rootCertificates.join('\n'));
      const privateKey = await read(tls.keyFile, 'key');
      const certChain = await read(tls.certFile, 'certificate');
      if ((privateKey === undefined) !== (certChain === undefined)) {
        throw new StoreError('STORE_IO', 'etcd: a client certificate needs both certFile and keyFile');
      }
      config.credentials = {
        rootCertificate: ca,
        ...(privateKey === undefined ? {} : { privateKey }),
        ...(certChain === undefined ? {} : { certChain }),
      };
    }
    const conn = new EtcdConnection(new Etcd3(config), options, config);
    try {
      await conn.call('reach the cluster', false, (deadline) =>
        conn.client.kv.range({ key: Buffer.from(conn.prefix), limit: 1 }, { deadline }),
        Date.now() + options.dialTimeoutMs,
      );
    } catch (err) {
      conn.close();
      throw err;
    }
    return conn;
  }

  /** The endpoints, for messages. */
  get endpointList(): string {
    return this.options.endpoints.map(endpointAddress).join(', ');
  }

  /** The error for a call that did not complete. */
  unavailable(what: string, err: unknown, write: boolean): StoreError {
    if (this.closed) return new StoreError('STORE_IO', `etcd: cannot ${what}: the meta store is closed`, { cause: err });
    const text = describe(err);
    const timedOut = err instanceof GRPCDeadlineExceededError || /deadline|timed out/i.test(text);
    const refused = /authentication failed|permission denied|invalid auth token|user name not found|UNAUTHENTICATED/i.test(text);
    const why = refused
      ? 'etcd refused the credentials or the permission (check auth.username / the password and its role)'
      : timedOut
        ? `no answer within ${this.options.callTimeoutMs} ms: etcd is unavailable or has lost quorum`
        : 'etcd is unavailable';
    const unknown = write && !neverSent(err) ? '; the change may or may not have been applied' : '';
    return new StoreError('STORE_IO', `etcd: cannot ${what}: ${why} (endpoints tried: ${this.endpointList}; ${text})${unknown}`, {
      cause: err,
    });
  }

  /**
   * Runs one etcd call with a deadline shared by its retries (see the header); `fn` gets the
   * current attempt's deadline. `write` only changes the message when it fails. `onRetry`
   * hears of each retry.
   */
  async call<T>(what: string, write: boolean, fn: (deadline: number) => Promise<T>, deadline?: number, onRetry?: () => void): Promise<T> {
    const until = deadline ?? Date.now() + this.options.callTimeoutMs;
    // Each attempt gets part of the budget: a request stuck with a dead leader is sent again
    // (to any member) once a new leader may have been elected, instead of using it all up.
    const attemptMs = Math.max(ATTEMPT_MIN_MS, Math.floor(this.options.callTimeoutMs / 3));
    let lastErr: unknown;
    for (let attempt = 0; ; attempt += 1) {
      if (this.closed) throw this.unavailable(what, lastErr ?? new Error('closed'), write);
      try {
        return await fn(Math.min(until, Date.now() + attemptMs));
      } catch (err) {
        if (err instanceof StowageError) throw err;
        lastErr = err;
        const transient = err instanceof Error && isRecoverableError(err);
        const pause = Math.min(250, 25 * 2 ** Math.min(attempt, 4));
        if (!transient || Date.now() + pause >= until) throw this.unavailable(what, err, write);
        onRetry?.();
        await sleep(pause);
      }
    }
  }

  /** Reads every key in [key, end) at one revision, in pages; `revision` pins an earlier one. */
  async rangeAll(what: string, key: Buffer, end: Buffer, revision?: number, pageKeys = PAGE_KEYS): Promise<RangeResult> {
    const kvs: IKeyValue[] = [];
    let from = key;
    let rev = revision;
    for (;;) {
      const res: IRangeResponse = await this.call(what, false, (deadline) =>
        this.client.kv.range(
          { key: from, range_end: end, limit: pageKeys, ...(rev === undefined ? {} : { revision: rev }) },
          { deadline },
        ),
      );
      rev ??= Number(res.header.revision);
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) return { kvs, revision: rev };
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /** Reads one key (linearizable); `kv` is undefined when it does not exist. */
  async get(what: string, key: string): Promise<{ kv: IKeyValue | undefined; revision: number }> {
    const res = await this.call(what, false, (deadline) => this.client.kv.range({ key: Buffer.from(key) }, { deadline }));
    return { kv: res.kvs[0], revision: Number(res.header.revision) };
  }

  /** Runs one transaction; `retried` says an earlier attempt may have been applied (see the header). */
  async txn(what: string, compare: ICompare[], success: IRequestOp[], failure: IRequestOp[]): Promise<TxnResult> {
    let retried = false;
    const res = await this.call(
      what,
      true,
      (deadline) => this.client.kv.txn({ compare, success, failure }, { deadline }),
      undefined,
      () => {
        retried = true;
      },
    );
    return { ...res, retried };
  }

  /**
   * Each member's own view (answered locally, so it works without quorum), for `stowage
   * cluster status`: reachable or why not, version, whether it leads, Raft term and index.
   */
  async endpointStatus(): Promise<EndpointStatus[]> {
    return Promise.all(
      this.options.endpoints.map(async (endpoint): Promise<EndpointStatus> => {
        const address = endpointAddress(endpoint);
        const client = new Etcd3({ ...this.config, hosts: [`http://${address}`] });
        try {
          const s = await client.maintenance.status({ deadline: Date.now() + this.options.callTimeoutMs });
          return {
            endpoint: address,
            ok: true,
            memberId: s.header.member_id,
            version: s.version,
            isLeader: s.leader !== '0' && s.leader === s.header.member_id,
            hasLeader: s.leader !== '0',
            raftTerm: Number(s.raftTerm),
            raftIndex: Number(s.raftIndex),
            dbSizeBytes: Number(s.dbSize),
            errors: s.errors,
          };
        } catch (err) {
          return { endpoint: address, ok: false, error: describe(err) };
        } finally {
          client.close();
        }
      }),
    );
  }

  /** A lease kept alive by this client; close() stops its keep-alives (without revoking it). */
  lease(ttlSeconds: number): Lease {
    const lease = this.client.lease(ttlSeconds);
    this.leases.add(lease);
    lease.on('lost', () => this.leases.delete(lease));
    return lease;
  }

  /** Stops tracking a lease that was revoked or released. */
  forgetLease(lease: Lease): void {
    this.leases.delete(lease);
  }

  /** Stops lease keep-alives and closes the client; calls in flight fail with STORE_IO. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    // gRPC lets open streams outlive the channel: end the keep-alive streams ourselves.
    for (const lease of this.leases) lease.release();
    this.leases.clear();
    this.client.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}
