/**
 * An etcd cluster on 127.0.0.1 from the Debian package: N members (default 3) bootstrapped
 * statically with --initial-cluster, free client and peer ports, data dirs in a fresh temp dir.
 * Members can be SIGKILLed and restarted on their data dir to test quorum loss.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCommand, freePorts, probe, spawnDaemon, waitUntil, type Daemon } from './daemon.js';
import type { EtcdTestEnv } from './services.js';

/** How startEtcdCluster sets the cluster up. */
export interface EtcdClusterOptions {
  /** Number of members (default 3). */
  readonly members?: number;
  /** Parent of the fresh directory (default os.tmpdir()); only the fresh one is removed. */
  readonly dir?: string;
  /** Give up after this long (default 60 s). */
  readonly startTimeoutMs?: number;
}

/** A running etcd cluster. */
export interface EtcdCluster {
  readonly env: EtcdTestEnv;
  /** Data dirs and one log file per member. */
  readonly dir: string;
  /** SIGKILLs member i (0-based) and waits until it is gone. */
  kill(i: number): Promise<void>;
  /**
   * Restarts member i on its data dir and waits until it reports healthy, or, while too few
   * members run for a quorum, until it answers at all.
   */
  start(i: number): Promise<void>;
  /** Kills every member and removes dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Commands startEtcdCluster and its tests need that are not on PATH. */
export function missingEtcdCommands(): string[] {
  return ['etcd', 'etcdctl'].filter((c) => findCommand(c) === undefined);
}

/** Whether an etcd cluster can start here: undefined if so, else why not. */
export function etcdUnavailableReason(): string | undefined {
  const missing = missingEtcdCommands();
  return missing.length > 0 ? `${missing.join(', ')} not found on PATH` : undefined;
}

interface Member {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  daemon: Daemon | undefined;
}

/** Reads a member's /health: true when it is part of a cluster with a leader. */
async function healthy(member: Member): Promise<true | string> {
  const res = await probe(`${member.clientUrl}/health`, {}, 1500);
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { health?: unknown };
    if (res.ok && body.health === 'true') return true;
  } catch {
    // fall through with the raw text
  }
  return `${member.name} /health answered ${res.status} ${text.trim()}`;
}

async function answers(member: Member): Promise<true | string> {
  const res = await probe(`${member.clientUrl}/version`, {}, 1500);
  await res.arrayBuffer();
  return res.ok ? true : `${member.name} /version answered ${res.status}`;
}

/** Starts the cluster and waits until every member reports healthy. */
export async function startEtcdCluster(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  const count = opts.members ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`members must be 1..9, got ${count}`);
  const missing = missingEtcdCommands();
  if (missing.length > 0) throw new Error(`cannot start an etcd cluster: ${missing.join(', ')} not found on PATH (Debian: apt-get install etcd-server etcd-client)`);
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  // A port taken between freePorts() and etcd's bind costs one more try.
  for (let attempt = 0; attempt < 3 && Date.now() < deadline; attempt++) {
    const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'stowage-etcd-'));
    try {
      return await startIn(dir, count, deadline);
    } catch (err) {
      lastError = err;
      await rm(dir, { recursive: true, force: true });
      if (!/address already in use/i.test(err instanceof Error ? err.message : String(err))) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startIn(dir: string, count: number, deadline: number): Promise<EtcdCluster> {
  const ports = await freePorts(2 * count);
  const members: Member[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: join(dir, `m${i}`),
      logFile: join(dir, `m${i}.log`),
      daemon: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const token = `stowage-test-${randomBytes(6).toString('hex')}`;

  const launch = async (m: Member): Promise<Daemon> => {
    await mkdir(m.dataDir, { recursive: true, mode: 0o700 });
    // On restart the data dir holds the membership; the --initial-* flags are then ignored.
    const daemon = await spawnDaemon({
      name: `etcd ${m.name}`,
      command: 'etcd',
      args: [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl,
        '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', token,
        '--initial-cluster-state', 'new',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
      ],
      logFile: m.logFile,
      cwd: dir,
    });
    m.daemon = daemon;
    return daemon;
  };
  const running = (): Daemon[] => members.flatMap((m) => (m.daemon !== undefined && m.daemon.exit() === undefined ? [m.daemon] : []));
  const member = (i: number): Member => {
    const m = members[i];
    if (m === undefined) throw new Error(`no etcd member ${i} (the cluster has ${members.length})`);
    return m;
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await Promise.all(members.map((m) => m.daemon?.kill('SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await Promise.all(members.map(launch));
    await waitUntil(async () => {
      const results = await Promise.all(members.map((m) => healthy(m).catch((err: unknown) => `${m.name}: ${err instanceof Error ? err.message : String(err)}`)));
      const bad = results.filter((r): r is string => r !== true);
      return bad.length === 0 ? true : bad.join('; ');
    }, { what: `etcd cluster in ${dir}`, timeoutMs: Math.max(0, deadline - Date.now()), daemons: running() });
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    env: { endpoints: members.map((m) => m.clientUrl) },
    dir,
    stop,
    kill: async (i: number) => {
      await member(i).daemon?.kill('SIGKILL');
    },
    start: async (i: number) => {
      const m = member(i);
      if (stopped !== undefined) throw new Error('the etcd cluster was stopped');
      if (m.daemon !== undefined && m.daemon.exit() === undefined) throw new Error(`etcd member ${i} is already running`);
      const daemon = await launch(m);
      const quorum = running().length > members.length / 2;
      await waitUntil(() => (quorum ? healthy(m) : answers(m)), {
        what: `etcd ${m.name} to come back${quorum ? ' healthy' : ''}`,
        timeoutMs: 30_000,
        daemons: [daemon],
      });
    },
  };
}
