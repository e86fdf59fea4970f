/**
 * A long-running Swift AIO and etcd cluster for development, outside the test runner:
 *
 *   node dist/test/infra/dev.js start   start both, write swift.json and etcd.json (the
 *                                        STOWAGE_TEST_SWIFT / STOWAGE_TEST_ETCD values) once
 *                                        healthy, stay in the foreground until SIGINT/SIGTERM
 *   node dist/test/infra/dev.js stop    stop the instance started by `start` (via its pid file)
 *
 * Files go to $STOWAGE_DEV_INFRA_DIR, default <os.tmpdir()>/stowage-dev-infra; the daemons'
 * configs and logs are in its stowage-swift-* and stowage-etcd-* subdirectories. Use it as
 *   STOWAGE_TEST_SWIFT="$(cat …/swift.json)" STOWAGE_TEST_ETCD="$(cat …/etcd.json)" node --test …
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEtcdCluster, type EtcdCluster } from './etcd-cluster.js';
import { startSwiftAio, type SwiftAio } from './swift-aio.js';

const devDir = process.env['STOWAGE_DEV_INFRA_DIR'] ?? join(tmpdir(), 'stowage-dev-infra');
const pidFile = join(devDir, 'dev.pid');
const swiftFile = join(devDir, 'swift.json');
const etcdFile = join(devDir, 'etcd.json');

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} stowage-dev-infra: ${line}\n`);
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

async function start(): Promise<void> {
  await mkdir(devDir, { recursive: true });
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) throw new Error(`a dev instance already runs (pid ${pid}); stop it with \`dev.js stop\``);
  }
  await Promise.all([rm(swiftFile, { force: true }), rm(etcdFile, { force: true })]);
  await writeAtomic(pidFile, `${process.pid}\n`);
  const keepAlive = setInterval(() => undefined, 1 << 30);

  let swift: SwiftAio | undefined;
  let etcd: EtcdCluster | undefined;
  let stopping = false;
  const shutdown = async (why: string, code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      log(`stopping (${why})`);
      await Promise.all([rm(swiftFile, { force: true }), rm(etcdFile, { force: true })]);
      await Promise.allSettled([swift?.stop(), etcd?.stop()]);
      await rm(pidFile, { force: true });
      clearInterval(keepAlive);
    }
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void shutdown(signal, 0));

  const t0 = Date.now();
  const [s, e] = await Promise.allSettled([
    startSwiftAio({ dir: devDir }).then((aio) => {
      log(`Swift AIO up in ${Date.now() - t0} ms: ${aio.env.authUrl} (dir ${aio.dir})`);
      return aio;
    }),
    startEtcdCluster({ dir: devDir, members: 3 }).then((cluster) => {
      log(`etcd cluster up in ${Date.now() - t0} ms: ${cluster.env.endpoints.join(' ')} (dir ${cluster.dir})`);
      return cluster;
    }),
  ]);
  if (s.status === 'fulfilled') swift = s.value;
  if (e.status === 'fulfilled') etcd = e.value;
  if (swift === undefined || etcd === undefined) {
    for (const r of [s, e]) if (r.status === 'rejected') log(`failed: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
    return shutdown('start-up failed', 1);
  }
  await writeAtomic(swiftFile, `${JSON.stringify(swift.env)}\n`);
  await writeAtomic(etcdFile, `${JSON.stringify(etcd.env)}\n`);
  log(`ready: ${swiftFile} ${etcdFile}`);

  // Say so in the log (and withdraw the JSON) if a service stops answering.
  for (let down = false; ; await sleep(15_000)) {
    const ok = await Promise.all([
      fetch(`${swift.env.s3Endpoint}/healthcheck`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false),
      Promise.all(etcd.env.endpoints.map((u) => fetch(`${u}/health`, { signal: AbortSignal.timeout(5000) }).then((r) => r.ok, () => false)))
        .then((all) => all.filter(Boolean).length > all.length / 2),
    ]);
    if (!ok.every(Boolean) && !down) {
      down = true;
      log(`unhealthy (swift ${ok[0] === true ? 'ok' : 'DOWN'}, etcd ${ok[1] === true ? 'ok' : 'NO QUORUM'}); JSON files removed`);
      await Promise.all([rm(swiftFile, { force: true }), rm(etcdFile, { force: true })]);
    } else if (ok.every(Boolean) && down) {
      down = false;
      log('healthy again; JSON files rewritten');
      await writeAtomic(swiftFile, `${JSON.stringify(swift.env)}\n`);
      await writeAtomic(etcdFile, `${JSON.stringify(etcd.env)}\n`);
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function stop(): Promise<void> {
  if (!existsSync(pidFile)) {
    log(`no ${pidFile}: nothing to stop`);
    return;
  }
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) {
    log(`pid file names no live process; removing it`);
    await rm(pidFile, { force: true });
    return;
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100);
  log(alive(pid) ? `pid ${pid} still alive after 10 s` : `stopped pid ${pid}`);
}

const command = process.argv[2];
if (command === 'start') {
  start().catch((err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
} else if (command === 'stop') {
  await stop();
} else {
  process.stderr.write('usage: node dist/test/infra/dev.js start|stop\n');
  process.exit(2);
}
