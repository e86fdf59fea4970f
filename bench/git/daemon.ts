/**
 * `git daemon` on 127.0.0.1 under GNU time, one daemon per measured run. GNU time reports what
 * wait4(2) returned for the daemon: user and system CPU including every descendant the daemon
 * reaped (and their own reaped descendants), and ru_maxrss, the largest resident set of the
 * daemon or any of those descendants (in practice pack-objects or index-pack). So one daemon
 * per run gives that run's exact server CPU and peak RSS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { gitEnv } from '../../test/helpers/git.js';
import { waitChildless } from './proc-stats.js';

/** GNU time's path (Debian package `time`). */
export const GNU_TIME = '/usr/bin/time';

/** What one daemon run cost the server side. */
export interface DaemonCost {
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const live = new Set<TimedDaemon>();
let hooked = false;

/** A running `git daemon` wrapped in GNU time. */
export class TimedDaemon {
  readonly url: string;
  readonly #timeProc: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #pid: number;
  readonly #report: string;

  private constructor(url: string, timeProc: ChildProcess, exited: Promise<void>, pid: number, report: string) {
    this.url = url;
    this.#timeProc = timeProc;
    this.#exited = exited;
    this.#pid = pid;
    this.#report = report;
  }

  /** Starts a daemon exporting every repository under basePath, with push enabled. */
  static async start(basePath: string, scratch: string, label: string): Promise<TimedDaemon> {
    if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} (GNU time) is needed to measure git daemon; on Debian: apt-get install time`);
    const port = await freePort();
    const report = join(scratch, `${label}.time`);
    const pidFile = join(scratch, `${label}.pid`);
    const proc = spawn(
      GNU_TIME,
      ['-f', '%U %S %M', '-o', report, 'git', 'daemon', '--export-all', `--base-path=${basePath}`, '--enable=receive-pack',
        // No connection cap (the default 32 would refuse part of the concurrent-clients row).
        '--reuseaddr', '--max-connections=0', '--listen=127.0.0.1', `--port=${port}`, `--pid-file=${pidFile}`, basePath],
      { env: gitEnv(), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const deadline = Date.now() + 10_000;
    while (!(existsSync(pidFile) && (await canConnect(port)))) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`git daemon did not start on 127.0.0.1:${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    const daemon = new TimedDaemon(`git://127.0.0.1:${port}`, proc, exited, pid, report);
    live.add(daemon);
    if (!hooked) {
      hooked = true;
      process.once('exit', () => {
        for (const d of live) d.kill();
      });
    }
    return daemon;
  }

  /** Waits for the daemon's children to be reaped, stops it, and reads GNU time's report. */
  async stop(): Promise<DaemonCost> {
    live.delete(this);
    await waitChildless(this.#pid, 30_000);
    try {
      process.kill(this.#pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.#timeProc.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
    const text = await readFile(this.#report, 'utf8');
    // "Command terminated by signal 15" comes first; the format line is last
    const last = text.trim().split('\n').pop() ?? '';
    const [user, system, maxKb] = last.split(' ').map(Number);
    if (user === undefined || system === undefined || maxKb === undefined || [user, system, maxKb].some(Number.isNaN)) {
      throw new Error(`cannot read GNU time's report: ${text}`);
    }
    return { cpuSeconds: user + system, peakRssBytes: maxKb * 1024 };
  }

  /** Kills without measuring (clean-up after an error). */
  kill(): void {
    live.delete(this);
    try {
      process.kill(this.#pid, 'SIGKILL');
    } catch {
      // already gone
    }
    this.#timeProc.kill('SIGKILL');
  }
}
