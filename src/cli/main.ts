/**
 * The `stowage` command line. Exit codes: 0 ok, 1 an error (one line `stowage: <message>` on
 * stderr; the stack only with STOWAGE_DEBUG=1), 2 a usage error.
 */
import { Command, CommanderError, Option } from 'commander';
import { StowageError } from '../core/errors.js';
import { LOG_LEVELS } from '../core/log.js';
import { stowageAgent } from './compose.js';
import { processIo, type CliIo } from './io.js';
import { addStoreOptions, type ConfigFlags } from './options.js';
import { clusterCommand } from './cluster-commands.js';
import { nbdCommand } from './nbd-commands.js';
import { repoCommand } from './repo-commands.js';
import { runServe } from './serve.js';

/** Exit status for a usage error (bad flag, missing argument, refused without --yes). */
export const EXIT_USAGE = 2;

/** Builds the program; actions run against `io`. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('stowage')
    .description('Git hosting on object storage')
    .version(stowageAgent().replace(/^stowage\//, ''), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
    });

  addStoreOptions(program.command('serve').description('run the git://, HTTP and NBD servers'))
    .option('--git-listen <host:port>', 'git:// listen address (default 127.0.0.1:9418)')
    .option('--http-listen <host:port>', 'HTTP listen address (default 127.0.0.1:8080)')
    .option('--git-allow-push', 'allow push over git:// (it has no authentication)')
    .option('--nbd-listen <host:port>', 'serve NBD block devices on this address (e.g. 127.0.0.1:10809)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS))
    .action(async (opts: ConfigFlags) => {
      await runServe(opts, io);
    });

  program.addCommand(repoCommand(io));
  program.addCommand(nbdCommand(io));
  program.addCommand(clusterCommand(io));

  // Every command throws instead of exiting, so main decides the status.
  const override = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) });
    for (const sub of cmd.commands) override(sub);
  };
  override(program);
  return program;
}

/** Runs the CLI; resolves with the exit status (it never calls process.exit). */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are successes; anything else (no command, unknown option, missing
      // argument) is a usage error. commander has already printed its message.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`stowage: ${message.split('\n')[0]}\n`);
    if (io.env['STOWAGE_DEBUG'] === '1' && err instanceof Error && err.stack !== undefined) {
      io.stderr.write(`${err.stack}\n`);
    }
    return err instanceof StowageError && err.code === 'ARG_INVALID' ? EXIT_USAGE : 1;
  }
}
