/**
 * `stowage serve`: starts the enabled listeners, logs one `listening` line per listener
 * (`{"msg":"listening","service":"git","url":"git://127.0.0.1:9418"}`; tests read it to find
 * ports bound with port 0), and closes gracefully on SIGTERM/SIGINT.
 */
import { formatHostPort } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { joinCluster } from './cluster-commands.js';
import { createFrontends, createNbdServer, createService, openBackends, stowageAgent } from './compose.js';
import type { CliIo } from './io.js';
import { configFromFlags, type ConfigFlags } from './options.js';

/** Runs the server until a signal (or `io.stop`); resolves when everything is closed. */
export async function runServe(flags: ConfigFlags, io: CliIo): Promise<void> {
  const config = await configFromFlags(flags, io);
  const logger = createLogger({ level: config.log.level, pretty: config.log.pretty, destination: io.stdout });
  const backends = await openBackends(config, io.env as NodeJS.ProcessEnv, { autoCompact: logger.child({ component: 'compact' }) });
  const service = createService(config, backends, logger);
  const { gitDaemon, http } = createFrontends(config, service, logger);
  const nbd = createNbdServer(config, backends, logger);
  if (gitDaemon === undefined && http === undefined && nbd === undefined) {
    await backends.close();
    throw new ValidationError('CONFIG_INVALID', 'nothing to serve: git.enabled, http.enabled and nbd.enabled are all false');
  }

  const started: Array<{ close(): Promise<void> }> = [];
  const urls: string[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(started.map((s) => s.close()));
    await backends.close();
  };
  try {
    if (gitDaemon !== undefined) {
      const a = await gitDaemon.start();
      started.push(gitDaemon);
      urls.push(`git://${formatHostPort(a.address, a.port)}`);
      logger.info({ service: 'git', url: urls.at(-1) }, 'listening');
    }
    if (http !== undefined) {
      const a = await http.start();
      started.push(http);
      urls.push(`http://${formatHostPort(a.address, a.port)}`);
      logger.info({ service: 'http', url: urls.at(-1) }, 'listening');
    }
    if (nbd !== undefined) {
      const a = await nbd.start();
      started.push(nbd);
      urls.push(`nbd://${formatHostPort(a.address, a.port)}`);
      logger.info({ service: 'nbd', url: urls.at(-1) }, 'listening');
    }
    // In a cluster (refs in etcd) the node announces itself until it stops or dies.
    const member = await joinCluster(config, io.env as NodeJS.ProcessEnv, {
      addresses: urls,
      version: stowageAgent(),
      startedMs: Date.now(),
    });
    if (member !== undefined) started.unshift({ close: () => member.leave() });
  } catch (err) {
    await closeAll();
    throw err;
  }

  const signal = await waitForStop(io.stop);
  logger.info({ signal }, 'shutting down');
  await closeAll();
  logger.info('stopped');
}

/** Resolves with the name of the first of SIGTERM, SIGINT or the abort signal. */
function waitForStop(stop: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const finish = (name: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      stop?.removeEventListener('abort', onAbort);
      resolve(name);
    };
    const onTerm = (): void => finish('SIGTERM');
    const onInt = (): void => finish('SIGINT');
    const onAbort = (): void => finish('stop');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
    if (stop?.aborted === true) finish('stop');
    else stop?.addEventListener('abort', onAbort, { once: true });
  });
}
