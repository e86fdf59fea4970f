/**
 * `stowage serve`: starts the enabled listeners, logs one `listening` line per listener
 * (`{"msg":"listening","service":"git","url":"git://127.0.0.1:9418"}`; tests read it to find
 * ports bound with port 0), and closes gracefully on SIGTERM/SIGINT.
 */
import { formatHostPort } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { createFrontends, createNbdServer, createService, openBackends } from './compose.js';
import type { CliIo } from './io.js';
import { configFromFlags, type ConfigFlags } from './options.js';

/** Runs the server until a signal (or `io.stop`); resolves when everything is closed. */
export async function runServe(flags: ConfigFlags, io: CliIo): Promise<void> {
  const config = await configFromFlags(flags, io);
  const logger = createLogger({ level: config.log.level, pretty: config.log.pretty, destination: io.stdout });
  const backends = openBackends(config);
  const service = createService(config, backends, logger);
  const { gitDaemon, http } = createFrontends(config, service, logger);
  const nbd = createNbdServer(config, backends, logger);
  if (gitDaemon === undefined && http === undefined && nbd === undefined) {
    await backends.close();
    throw new ValidationError('CONFIG_INVALID', 'nothing to serve: git.enabled, http.enabled and nbd.enabled are all false');
  }

  const started: Array<{ close(): Promise<void> }> = [];
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(started.map((s) => s.close()));
    await backends.close();
  };
  try {
    if (gitDaemon !== undefined) {
      const a = await gitDaemon.start();
      started.push(gitDaemon);
      logger.info({ service: 'git', url: `git://${formatHostPort(a.address, a.port)}` }, 'listening');
    }
    if (http !== undefined) {
      const a = await http.start();
      started.push(http);
      logger.info({ service: 'http', url: `http://${formatHostPort(a.address, a.port)}` }, 'listening');
    }
    if (nbd !== undefined) {
      const a = await nbd.start();
      started.push(nbd);
      logger.info({ service: 'nbd', url: `nbd://${formatHostPort(a.address, a.port)}` }, 'listening');
    }
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
