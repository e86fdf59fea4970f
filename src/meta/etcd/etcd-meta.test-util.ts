/**
 * Test support for the etcd meta store tests: the shared etcd cluster (test/infra/services.ts),
 * a unique key prefix per test, and removal of everything under a prefix.
 */
import { requireEtcd, uniqueName, type EtcdTestEnv } from '../../../test/infra/services.js';
import { EtcdConnection } from './etcd-connection.js';
import { deletePrefixOp } from './etcd-ops.js';
import type { EtcdOptions } from './etcd-options.js';

/** The shared etcd cluster, or undefined (CI: throws) when the run has none. */
export function etcdTarget(what: string): EtcdTestEnv | undefined {
  return requireEtcd(what);
}

/** Options on the cluster with a prefix no other test uses. */
export function testOptions(env: EtcdTestEnv, extra: Partial<EtcdOptions> = {}): EtcdOptions {
  return { endpoints: [...env.endpoints], prefix: `stowage-test/${uniqueName('etcd')}/`, ...extra };
}

/** Deletes every key under the options' prefix. */
export async function dropPrefix(options: EtcdOptions): Promise<void> {
  const conn = await EtcdConnection.open(options);
  try {
    await conn.txn('clean up a test prefix', [], [deletePrefixOp(conn.prefix)], []);
  } finally {
    conn.close();
  }
}

/** A 40-hex oid-like value for a number. */
export function oid(n: number): string {
  return n.toString(16).padStart(40, '0');
}
