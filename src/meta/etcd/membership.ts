/**
 * Cluster membership in etcd: each node keeps `<p>nodes/<id>` -> NodeInfo JSON under a lease
 * (TTL ~10 s) that its etcd client keeps alive; when the process dies the keep-alives stop
 * and etcd deletes the key after the TTL. If the lease is lost while the process lives (etcd
 * unreachable for longer than the TTL), the node joins again with a fresh lease as soon as
 * etcd answers.
 */
import type { Lease } from 'etcd3';
import { ValidationError } from '../../core/errors.js';
import { EtcdConnection, prefixEnd } from './etcd-connection.js';
import { corrupt, EtcdLayout } from './etcd-layout.js';
import type { EtcdOptions } from './etcd-options.js';

/** Default lease TTL: a dead node disappears from the list this long after its last keep-alive. */
export const MEMBERSHIP_TTL_SECONDS = 10;
/** Pause between attempts to join again after a lost lease. */
const REJOIN_DELAY_MS = 1000;
const NODE_ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

/** A node as it announces itself. */
export interface NodeInfo {
  /** Stable per node (e.g. a host name); safe as a key component. */
  readonly id: string;
  /** Where other nodes and operators reach it, e.g. `http://10.0.0.5:8080`. */
  readonly addresses: readonly string[];
  /** The Stowage version it runs. */
  readonly version: string;
  /** When the process started (ms since the epoch). */
  readonly startedMs: number;
}

/** A joined node; `leave()` deletes its key at once. */
export interface Membership {
  leave(): Promise<void>;
}

/** Options of EtcdMembership. */
export interface EtcdMembershipOptions {
  /** Lease TTL in seconds (default 10; at least 1). */
  readonly ttlSeconds?: number;
}

function checkInfo(info: NodeInfo): NodeInfo {
  if (typeof info.id !== 'string' || !NODE_ID_RE.test(info.id)) {
    throw new ValidationError('ARG_INVALID', `node id ${JSON.stringify(info.id)} must be 1-128 characters of [A-Za-z0-9._-]`);
  }
  if (!Array.isArray(info.addresses) || !info.addresses.every((a) => typeof a === 'string' && a.length > 0)) {
    throw new ValidationError('ARG_INVALID', 'node addresses must be non-empty strings');
  }
  if (typeof info.version !== 'string' || !Number.isFinite(info.startedMs)) {
    throw new ValidationError('ARG_INVALID', 'node version must be a string and startedMs a number');
  }
  return { id: info.id, addresses: [...info.addresses], version: info.version, startedMs: info.startedMs };
}

function decodeNode(text: string, what: string): NodeInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw corrupt(what, 'not JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw corrupt(what, 'not an object');
  const { id, addresses, version, startedMs } = doc as Record<string, unknown>;
  if (typeof id !== 'string' || !Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string') || typeof version !== 'string' || typeof startedMs !== 'number') {
    throw corrupt(what, 'bad node fields');
  }
  return { id, addresses: addresses as string[], version, startedMs };
}

/** Membership of Stowage nodes in etcd (see the header). */
export class EtcdMembership {
  private readonly layout: EtcdLayout;
  private readonly ttl: number;
  private readonly joined = new Set<Joined>();

  constructor(
    private readonly conn: EtcdConnection,
    options: EtcdMembershipOptions = {},
    private readonly ownsConnection = false,
  ) {
    this.layout = new EtcdLayout(conn.prefix);
    this.ttl = Math.max(1, Math.round(options.ttlSeconds ?? MEMBERSHIP_TTL_SECONDS));
  }

  /** Connects with its own client (closed by close()). */
  static async open(options: EtcdOptions, membership: EtcdMembershipOptions = {}): Promise<EtcdMembership> {
    return new EtcdMembership(await EtcdConnection.open(options), membership, true);
  }

  /** Announces this node until `leave()` (or close(), or the process dies and the TTL passes). */
  async join(info: NodeInfo): Promise<Membership> {
    const node = new Joined(this.conn, this.layout.nodeKey(info.id), JSON.stringify(checkInfo(info)), this.ttl);
    await node.start();
    this.joined.add(node);
    return {
      leave: async () => {
        this.joined.delete(node);
        await node.leave();
      },
    };
  }

  /** Nodes whose lease is alive, sorted by id. */
  async listNodes(): Promise<NodeInfo[]> {
    const prefix = Buffer.from(this.layout.nodesPrefix);
    const { kvs } = await this.conn.rangeAll('list cluster nodes', prefix, prefixEnd(prefix));
    return kvs
      .map((kv) => decodeNode(kv.value.toString('utf8'), kv.key.toString('utf8')))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Leaves every joined node (their keys go at once) and closes the client if owned. */
  async close(): Promise<void> {
    await Promise.all([...this.joined].map((node) => node.leave()));
    this.joined.clear();
    if (this.ownsConnection) this.conn.close();
  }
}

/** One joined node: its lease, and re-joining after a loss. */
class Joined {
  private lease: Lease | undefined;
  private left = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly key: string,
    private readonly value: string,
    private readonly ttl: number,
  ) {}

  /** Grants a lease and writes the key under it; throws StoreError('STORE_IO') if etcd does not answer. */
  async start(): Promise<void> {
    const lease = this.conn.lease(this.ttl);
    let joined = false;
    lease.on('lost', () => {
      if (joined && this.lease === lease) this.rejoinLater();
    });
    this.lease = lease;
    try {
      // Writing the same value again is harmless: retried like a read.
      await this.conn.call(`join the cluster as ${this.key}`, true, (deadline) =>
        lease.put(this.key).value(this.value).options({ deadline }).exec(),
      );
      joined = true;
    } catch (err) {
      if (this.lease === lease) this.lease = undefined;
      lease.release();
      this.conn.forgetLease(lease);
      throw err;
    }
  }

  /** Revokes the lease (deleting the key); if etcd is unreachable, the key expires with the TTL. */
  async leave(): Promise<void> {
    this.left = true;
    clearTimeout(this.timer);
    const lease = this.lease;
    this.lease = undefined;
    if (lease === undefined) return;
    await lease.revoke({ deadline: Date.now() + this.conn.options.callTimeoutMs }).catch(() => lease.release());
    this.conn.forgetLease(lease);
  }

  private rejoinLater(): void {
    if (this.lease !== undefined) {
      this.lease.release();
      this.conn.forgetLease(this.lease);
    }
    this.lease = undefined;
    if (this.left || this.conn.isClosed) return;
    this.timer = setTimeout(() => {
      if (this.left || this.conn.isClosed) return;
      this.start().catch(() => this.rejoinLater());
    }, REJOIN_DELAY_MS);
  }
}
