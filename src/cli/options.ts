/**
 * Options shared by commands (`--data`, `--config`, …) and their mapping onto config keys, so
 * that flags override environment variables, which override the config file.
 */
import type { Command } from 'commander';
import { loadConfig, type ConfigAssignment, type StowageConfig } from '../core/config.js';
import { parseFsckConfig } from '../git/fsck/config.js';
import type { CliIo } from './io.js';

/** Flag values as commander hands them over (all optional). */
export interface ConfigFlags {
  readonly config?: string;
  readonly data?: string;
  readonly store?: string;
  readonly meta?: string;
  readonly swiftConfig?: string;
  readonly gitListen?: string;
  readonly httpListen?: string;
  /** `--nbd-listen HOST:PORT` also enables the NBD server. */
  readonly nbdListen?: string;
  readonly gitAllowPush?: boolean;
  readonly logLevel?: string;
}

/** Adds `--data` and `--config` (every command that touches repositories takes them). */
export function addStoreOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data directory (default ./stowage-data; env STOWAGE_DATA)')
    .option('--store <url>', 'object store: fs:///DIR, s3://BUCKET/PREFIX?endpoint=…, swift://CONTAINER/PREFIX?auth_url=… (env STOWAGE_STORE)')
    .option('--meta <url>', 'where refs live: "store" (default, in the object store) or etcd://HOST:PORT,HOST:PORT/PREFIX (env STOWAGE_META)')
    .option('--swift-config <file>', 'a Swift config file with a [swift] section (Dulwich format); selects the Swift store')
    .option('--config <file>', 'config file (.toml, .yaml, .yml or .json)');
}

/** Flag → config key, with the flag's name for error messages. */
const FLAG_KEYS: ReadonlyArray<readonly [keyof ConfigFlags, string, string]> = [
  ['data', 'data', '--data'],
  ['store', 'store', '--store'],
  ['meta', 'meta', '--meta'],
  ['swiftConfig', 'swiftConfig', '--swift-config'],
  ['gitListen', 'git.listen', '--git-listen'],
  ['httpListen', 'http.listen', '--http-listen'],
  ['nbdListen', 'nbd.listen', '--nbd-listen'],
  ['gitAllowPush', 'git.allowPush', '--git-allow-push'],
  ['logLevel', 'log.level', '--log-level'],
];

/** The flags that were given, as config assignments. */
export function flagAssignments(flags: ConfigFlags): ConfigAssignment[] {
  const out: ConfigAssignment[] = [];
  for (const [prop, path, flag] of FLAG_KEYS) {
    const value = flags[prop];
    if (value !== undefined) out.push({ path, value, source: flag });
  }
  // Asking for an NBD listen address means serving NBD.
  if (flags.nbdListen !== undefined) out.push({ path: 'nbd.enabled', value: true, source: '--nbd-listen' });
  return out;
}

/** Loads the configuration for a command: file < environment < flags. */
export function configFromFlags(flags: ConfigFlags, io: CliIo): Promise<StowageConfig> {
  return loadConfig({ file: flags.config, env: io.env, flags: flagAssignments(flags), checkFsck: parseFsckConfig });
}
