/**
 * NBD volume records in etcd: the writer lease epochs and the create-once claim of each
 * volume's name, for object stores without atomic create-only writes (Swift, Swift's s3api).
 * Implements nbd/device/lease-records.ts `VolumeRecords` structurally (meta/ may not import
 * nbd/). Keys are the volume-layout keys under the deployment prefix:
 *
 * ```
 * <p>nbd/<name>/meta                    the volume's meta JSON as created (the name claim)
 * <p>nbd/<name>/lease/<12-digit epoch>  LeaseRecord JSON (lease.ts)
 * ```
 *
 * Create-once is one transaction comparing the key's create revision with 0, so exactly one
 * of any number of concurrent creators on any nodes wins. Reads are linearizable (etcd's
 * default range), so a fence check sees every epoch created before it started.
 */
import { CompareResult, CompareTarget } from 'etcd3';
import { ValidationError } from '../../core/errors.js';
import { prefixEnd, type EtcdConnection } from './etcd-connection.js';

/** Largest record accepted: lease records and volume meta are a few hundred bytes. */
const RECORD_MAX_BYTES = 64 * 1024;

/** NBD volume records kept in etcd (see the header). */
export class EtcdNbdRecords {
  readonly inObjectStore = false;

  constructor(private readonly conn: EtcdConnection) {}

  get description(): string {
    return `etcd (${this.conn.endpointList}, prefix ${this.conn.prefix})`;
  }

  /** Creates `key` only if it has never been created (or was deleted since); true if this call did. */
  async create(key: string, value: Uint8Array): Promise<boolean> {
    const full = this.fullKey(key);
    const bytes = this.checkValue(key, value);
    const res = await this.conn.txn(
      `create nbd record ${key}`,
      [{ key: full, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 }],
      [{ request_put: { key: full, value: bytes } }],
      [{ request_range: { key: full } }],
    );
    if (res.succeeded) return true;
    // A retried attempt finds the key made by its own earlier, applied attempt: the value is
    // ours (lease records name their node and time, so no other creator writes equal bytes).
    const existing = res.responses[0]?.response_range?.kvs[0]?.value;
    return res.retried && existing !== undefined && bytes.equals(existing);
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    const full = this.fullKey(key);
    const bytes = this.checkValue(key, value);
    // Writing the same value again is harmless, so a retry is too.
    await this.conn.call(`write nbd record ${key}`, true, (deadline) => this.conn.client.kv.put({ key: full, value: bytes }, { deadline }));
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { kv } = await this.conn.get(`read nbd record ${key}`, this.conn.prefix + this.checkKey(key));
    return kv === undefined ? undefined : new Uint8Array(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength);
  }

  async exists(key: string): Promise<boolean> {
    const full = this.fullKey(key);
    const res = await this.conn.call(`read nbd record ${key}`, false, (deadline) => this.conn.client.kv.range({ key: full, count_only: true }, { deadline }));
    return Number(res.count) > 0;
  }

  /** The keys under `prefix` (without the deployment prefix), in ascending order. */
  async list(prefix: string): Promise<string[]> {
    const from = this.fullKey(prefix);
    const { kvs } = await this.conn.rangeAll(`list nbd records under ${prefix}`, from, prefixEnd(from));
    return kvs.map((kv) => kv.key.toString('utf8').slice(this.conn.prefix.length));
  }

  async delete(key: string): Promise<void> {
    const full = this.fullKey(key);
    await this.conn.call(`delete nbd record ${key}`, true, (deadline) => this.conn.client.kv.deleteRange({ key: full }, { deadline }));
  }

  private checkKey(key: string): string {
    if (!key.startsWith('nbd/') || key.length > 512) {
      throw new ValidationError('ARG_INVALID', `nbd record key ${JSON.stringify(key.slice(0, 80))} must start with nbd/ and be at most 512 characters`);
    }
    return key;
  }

  private fullKey(key: string): Buffer {
    return Buffer.from(this.conn.prefix + this.checkKey(key), 'utf8');
  }

  private checkValue(key: string, value: Uint8Array): Buffer {
    if (value.byteLength > RECORD_MAX_BYTES) {
      throw new ValidationError('ARG_INVALID', `nbd record ${key} is ${value.byteLength} bytes; records are at most ${RECORD_MAX_BYTES}`);
    }
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
}
