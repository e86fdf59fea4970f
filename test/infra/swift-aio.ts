/**
 * A Swift all-in-one on 127.0.0.1 from the Debian packages: memcached, account, container and
 * object servers and a proxy with tempauth (user test:tester, key testing) and s3api, on free
 * ports, 1-replica rings, one device, everything in a fresh temp dir that stop() removes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  describeExit, findCommand, freePorts, logTail, probe, spawnDaemon, waitUntil, type Daemon,
} from './daemon.js';
import type { SwiftTestEnv } from './services.js';
import {
  LAUNCHER_PY, NO_XATTR_MARK, proxyServerConf, storageServerConf, swiftConf,
  type LaunchSpec, type SwiftLayout, type SwiftServer,
} from './swift-config.js';

/** How startSwiftAio sets the cluster up. */
export interface SwiftAioOptions {
  /** Parent of the fresh directory (default os.tmpdir()); only the fresh one is removed. */
  readonly dir?: string;
  /** [swift-constraints] max_file_size in bytes (default 8 MiB), so tests reach the SLO paths. */
  readonly maxFileSize?: number;
  /** Give up after this long (default 60 s). */
  readonly startTimeoutMs?: number;
}

/** A running Swift AIO. */
export interface SwiftAio {
  readonly env: SwiftTestEnv;
  /** Configs, rings, the device and one log file per daemon. */
  readonly dir: string;
  /** Kills every daemon (process groups) and removes dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** The default max_file_size: small enough that tests reach the large-object code cheaply. */
export const DEFAULT_MAX_FILE_SIZE = 8 * 1024 * 1024;

const SWIFT_SERVERS = ['swift-account-server', 'swift-container-server', 'swift-object-server', 'swift-proxy-server'] as const;

/** Commands startSwiftAio needs that are not on PATH (empty when it can run). */
export function missingSwiftCommands(): string[] {
  return [...SWIFT_SERVERS, 'memcached'].filter((c) => findCommand(c) === undefined);
}

/** The Python that runs the installed swift servers (their #! line; it has the swift package). */
function swiftPython(): string {
  const script = findCommand('swift-proxy-server');
  if (script === undefined) throw new Error(`cannot start a Swift AIO: ${missingSwiftCommands().join(', ')} not found on PATH (Debian: apt-get install swift swift-proxy swift-account swift-container swift-object memcached)`);
  const first = readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const match = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  if (match === null) return 'python3';
  // "#!/usr/bin/env python3" names the interpreter in its argument
  return match[1]?.endsWith('/env') === true && match[2] !== undefined ? match[2] : (match[1] ?? 'python3');
}

/** Starts a Swift AIO and waits until the proxy answers and tempauth hands out a token. */
export async function startSwiftAio(opts: SwiftAioOptions = {}): Promise<SwiftAio> {
  const maxFileSize = opts.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
  if (!Number.isSafeInteger(maxFileSize) || maxFileSize < 65536) throw new Error(`maxFileSize must be an integer >= 65536, got ${maxFileSize}`);
  const missing = missingSwiftCommands();
  if (missing.length > 0) throw new Error(`cannot start a Swift AIO: ${missing.join(', ')} not found on PATH (Debian: apt-get install swift swift-proxy swift-account swift-container swift-object memcached)`);
  const python = swiftPython();
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const parents = [opts.dir ?? tmpdir()];
  let lastError: unknown;
  // A port taken between freePorts() and the bind costs one more try; a temp dir without user
  // xattrs (tmpfs before Linux 6.6) moves to the project's ignored dist/ directory.
  for (let attempt = 0; attempt < 3 && Date.now() < deadline; attempt++) {
    const parent = parents[Math.min(attempt, parents.length - 1)] ?? tmpdir();
    const dir = await mkdtemp(join(parent, 'stowage-swift-'));
    try {
      return await startIn(dir, python, maxFileSize, deadline);
    } catch (err) {
      lastError = err;
      await rm(dir, { recursive: true, force: true });
      const text = err instanceof Error ? err.message : String(err);
      if (text.includes(NO_XATTR_MARK)) {
        if (opts.dir !== undefined || parents.length > 1) break;
        const fallback = join(process.cwd(), 'dist', 'test-infra-tmp');
        await mkdir(fallback, { recursive: true });
        parents.push(fallback);
        process.stderr.write(`swift-aio: ${parent} has no user xattr support (Swift's object server needs it); using ${fallback}\n`);
        continue;
      }
      if (!/address already in use|could not bind/i.test(text)) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

async function startIn(dir: string, python: string, maxFileSize: number, deadline: number): Promise<SwiftAio> {
  const [memcachedPort, proxyPort, accountPort, containerPort, objectPort] = await freePorts(5) as [number, number, number, number, number];
  const layout: SwiftLayout = {
    dir, devices: join(dir, 'node'), user: userInfo().username,
    memcachedPort, proxyPort, accountPort, containerPort, objectPort, maxFileSize,
  };
  await mkdir(join(layout.devices, 'd1'), { recursive: true });
  await mkdir(join(dir, 'recon'));
  await Promise.all([
    writeFile(join(dir, 'swift.conf'), swiftConf(layout)),
    writeFile(join(dir, 'launch.py'), LAUNCHER_PY),
    writeFile(join(dir, 'account-server.conf'), storageServerConf(layout, 'account')),
    writeFile(join(dir, 'container-server.conf'), storageServerConf(layout, 'container')),
    writeFile(join(dir, 'object-server.conf'), storageServerConf(layout, 'object')),
    writeFile(join(dir, 'proxy-server.conf'), proxyServerConf(layout)),
  ]);

  const daemons: Daemon[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await Promise.all(daemons.map((d) => d.kill('SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };
  const launch = async (server: SwiftServer, extra: Partial<LaunchSpec>): Promise<void> => {
    const spec: LaunchSpec = { swift_dir: dir, conf: join(dir, `${server}.conf`), server, ...extra };
    daemons.push(await spawnDaemon({
      name: `swift ${server}`, command: python, args: [join(dir, 'launch.py'), JSON.stringify(spec)],
      logFile: join(dir, `${server}.log`), cwd: dir,
      // eventlet's green DNS imports dnspython, which imports httpx and rich: over a second of
      // CPU per daemon; everything here is a literal 127.0.0.1, so plain resolution is enough.
      env: { EVENTLET_NO_GREENDNS: 'yes' },
    }));
  };
  try {
    const memcachedArgs = ['-l', '127.0.0.1', '-p', String(memcachedPort), '-U', '0', '-m', '64'];
    if (process.getuid?.() === 0) memcachedArgs.push('-u', layout.user);
    daemons.push(await spawnDaemon({ name: 'memcached', command: 'memcached', args: memcachedArgs, logFile: join(dir, 'memcached.log') }));
    await launch('account-server', {});
    await launch('container-server', {});
    await launch('object-server', { check_xattr: join(layout.devices, 'd1') });
    await launch('proxy-server', {
      rings: [
        { name: 'account', port: accountPort, part_power: 6 },
        { name: 'container', port: containerPort, part_power: 6 },
        { name: 'object', port: objectPort, part_power: 6 },
      ],
    });

    const base = `http://127.0.0.1:${proxyPort}`;
    const env: SwiftTestEnv = {
      authUrl: `${base}/auth/v1.0`,
      authVersion: 1,
      user: 'test:tester',
      key: 'testing',
      storageUrlHint: `${base}/v1/AUTH_test`,
      s3Endpoint: base,
      s3Region: 'us-east-1',
      s3AccessKey: 'test:tester',
      s3SecretKey: 'testing',
      maxFileSize,
    };
    const healthUrls = [proxyPort, accountPort, containerPort, objectPort].map((p) => `http://127.0.0.1:${p}/healthcheck`);
    await waitUntil(async () => {
      const answers = await Promise.all(healthUrls.map(async (url) => {
        try {
          const res = await probe(url);
          await res.arrayBuffer();
          return res.ok ? undefined : `${url} answered ${res.status}`;
        } catch (err) {
          return `${url}: ${err instanceof Error ? err.message : String(err)}`;
        }
      }));
      const bad = answers.filter((a) => a !== undefined);
      if (bad.length > 0) return bad.join('; ');
      const auth = await probe(env.authUrl, { headers: { 'X-Auth-User': env.user, 'X-Auth-Key': env.key } });
      await auth.arrayBuffer();
      if (auth.status !== 200 || auth.headers.get('x-auth-token') === null) return `tempauth answered ${auth.status}`;
      return true;
    }, { what: `the Swift AIO in ${dir}`, timeoutMs: Math.max(0, deadline - Date.now()), daemons });
    return { env, dir, stop };
  } catch (err) {
    // name the xattr problem even if another daemon's failure was noticed first
    const xattr = await Promise.all(daemons.map(async (d) => ((await logTail(d.logFile)).includes(NO_XATTR_MARK) ? await describeExit(d) : '')));
    await stop();
    const extra = xattr.filter((t) => t !== '').join('\n');
    if (extra !== '' && err instanceof Error && !err.message.includes(NO_XATTR_MARK)) throw new Error(`${err.message}\n${extra}`, { cause: err });
    throw err;
  }
}

/** Whether a Swift AIO can start here: undefined if so, else why not. */
export function swiftUnavailableReason(): string | undefined {
  const missing = missingSwiftCommands();
  if (missing.length > 0) return `${missing.join(', ')} not found on PATH`;
  const python = swiftPython();
  if (python.startsWith('/') && !existsSync(python)) return `the swift servers' interpreter ${python} is missing`;
  return undefined;
}
