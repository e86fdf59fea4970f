/**
 * Test support (not a test): what git's file:// transport runs instead of git-upload-pack /
 * git-receive-pack (`<script> upload-pack|receive-pack <path>`): stdin and stdout piped into
 * GitService.serve, the repository named by the last path component, the data directory
 * from STOWAGE_TEST_DATA, the protocol version from GIT_PROTOCOL (as git sets it).
 */
import { basename } from 'node:path';
import { publicMessage } from '../../core/errors.js';
import { encodePktLine } from '../../git/pktline/encode.js';
import type { GitServiceName, ProtocolVersion } from '../git-service.js';
import type { ReceivePackConfig } from '../options.js';
import { hostAt, serviceFor } from './env.js';

function protocolVersion(env: string | undefined): ProtocolVersion {
  for (const p of (env ?? '').split(':')) {
    if (p === 'version=2') return 2;
    if (p === 'version=1') return 1;
  }
  return 0;
}

async function main(): Promise<number> {
  const [which, path] = process.argv.slice(2);
  const dataDir = process.env['STOWAGE_TEST_DATA'];
  if ((which !== 'upload-pack' && which !== 'receive-pack') || path === undefined || dataDir === undefined) {
    process.stderr.write('usage: git-server-script upload-pack|receive-pack <path> (with STOWAGE_TEST_DATA set)\n');
    return 129;
  }
  const receive = JSON.parse(process.env['STOWAGE_TEST_RECEIVE'] ?? '{}') as Partial<ReceivePackConfig>;
  const service = serviceFor(hostAt(dataDir), receive);
  let written = 0;
  const sink = {
    write: (chunk: Uint8Array): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        written += chunk.length;
        process.stdout.write(chunk, (err) => (err ? reject(err) : resolve()));
      }),
  };
  try {
    await service.serve(
      {
        service: `git-${which}` as GitServiceName,
        repoName: basename(path).replace(/\.git$/, ''),
        protocolVersion: protocolVersion(process.env['GIT_PROTOCOL']),
        statelessRpc: false,
        advertiseRefs: false,
        requestId: `test-${process.pid}`,
      },
      process.stdin,
      sink,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`fatal: ${publicMessage(err)}\n`);
    if (written === 0) await sink.write(encodePktLine(`ERR ${publicMessage(err)}\n`)).catch(() => undefined);
    return 128;
  }
}

const code = await main();
process.stdout.write('', () => process.exit(code));
