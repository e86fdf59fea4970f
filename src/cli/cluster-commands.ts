/**
 * `stowage cluster status`: the live nodes of a cluster (every `stowage serve` sharing one etcd
 * meta store announces itself under a lease), with their addresses, versions and uptimes.
 */
import { Command } from 'commander';
import { hostname } from 'node:os';
import { ValidationError } from '../core/errors.js';
import type { Membership, NodeInfo } from '../meta/etcd/membership.js';
import type { StowageConfig } from '../core/config.js';
import { metaSpec } from './backends.js';
import type { CliIo } from './io.js';
import { addStoreOptions, configFromFlags, type ConfigFlags } from './options.js';

/** This process's node id: the configured one, or host name and process id. */
export function nodeIdOf(config: StowageConfig): string {
  return config.cluster.nodeId ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}`;
}

/** Joins the cluster when refs live in etcd; undefined otherwise (a single node has no peers). */
export async function joinCluster(config: StowageConfig, env: NodeJS.ProcessEnv, info: Omit<NodeInfo, 'id'>): Promise<Membership | undefined> {
  const spec = metaSpec(config, env);
  if (spec.kind !== 'etcd') return undefined;
  // Loaded only when refs live in etcd: its client is big, and most servers never need it.
  const { EtcdMembership } = await import('../meta/etcd/membership.js');
  const membership = await EtcdMembership.open(spec.options);
  try {
    const joined = await membership.join({ id: nodeIdOf(config), ...info });
    return {
      leave: async () => {
        try {
          await joined.leave();
        } finally {
          await membership.close();
        }
      },
    };
  } catch (err) {
    await membership.close();
    throw err;
  }
}

function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return `${Math.floor(s / 3600)}h`;
}

/** Builds the `cluster` command. */
export function clusterCommand(io: CliIo): Command {
  const cluster = new Command('cluster').description('nodes sharing one etcd meta store');
  addStoreOptions(cluster.command('status').description('list live nodes with their addresses and versions'))
    .option('--json', 'print JSON')
    .action(async (opts: ConfigFlags & { json?: boolean }) => {
      const config = await configFromFlags(opts, io);
      const spec = metaSpec(config, io.env as NodeJS.ProcessEnv);
      if (spec.kind !== 'etcd') {
        throw new ValidationError('ARG_INVALID', 'cluster status needs the etcd meta store: give --meta etcd://HOST:PORT/PREFIX (env STOWAGE_META)');
      }
      const [{ EtcdConnection }, { EtcdMembership }] = await Promise.all([import('../meta/etcd/etcd-connection.js'), import('../meta/etcd/membership.js')]);
      const conn = await EtcdConnection.open(spec.options);
      try {
        const [nodes, members] = await Promise.all([new EtcdMembership(conn).listNodes(), conn.endpointStatus()]);
        if (opts.json === true) {
          io.stdout.write(`${JSON.stringify({ nodes, etcd: members })}\n`);
          return;
        }
        const now = Date.now();
        io.stdout.write(`${nodes.length} node${nodes.length === 1 ? '' : 's'}\n`);
        for (const n of nodes) io.stdout.write(`  ${n.id}\t${n.version}\tup ${formatUptime(now - n.startedMs)}\t${n.addresses.join(' ')}\n`);
        io.stdout.write(`etcd members\n`);
        for (const m of members) {
          io.stdout.write(
            m.ok
              ? `  ${m.endpoint}\tetcd ${m.version}${m.isLeader ? '\tleader' : ''}${m.hasLeader ? '' : '\tNO QUORUM'}\n`
              : `  ${m.endpoint}\tunreachable\n`,
          );
        }
      } finally {
        conn.close();
      }
    });
  return cluster;
}
