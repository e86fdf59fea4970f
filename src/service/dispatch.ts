/**
 * The GitService the frontends call: opens the repository (typed errors before any output),
 * picks the protocol (v2 only for upload-pack; receive-pack speaks v0/v1 as git does) and
 * runs the state machine.
 *
 * Errors: before the first byte of output they are thrown for the frontend to map. After
 * output began, the service has already told the client where the protocol has room for it
 * (an ERR pkt-line during negotiation, side-band 3 inside a pack, `ng` in report-status)
 * and rethrows; the frontend should then only log and close. Frontends tell the two cases
 * apart by whether their sink has received bytes.
 */
import { AuthError, ProtocolError, publicMessage, StowageError } from '../core/errors.js';
import type { Limits } from '../core/limits.js';
import type { FsckConfig } from '../git/fsck/config.js';
import type { RepositoryHost } from '../repo/repository.js';
import type { ByteSink, GitRequest, GitService } from './git-service.js';
import {
  DEFAULT_RECEIVE_PACK_CONFIG,
  DEFAULT_UPLOAD_PACK_CONFIG,
  type ReceivePackConfig,
  type ServiceLogger,
  type ServiceSettings,
  type UploadPackConfig,
} from './options.js';
import { errLine, ServiceOutput } from './output.js';
import { serveReceivePack } from './receive-pack.js';
import { serveUploadPack } from './upload-pack.js';
import { serveUploadPackV2 } from './upload-pack-v2.js';

/** What createGitService needs. */
export interface GitServiceDeps {
  readonly host: RepositoryHost;
  /** Server-wide fsck severities for pushes (a repository's settings override them). */
  readonly fsck: FsckConfig;
  readonly limits: Limits;
  /** Whether this request may push; false refuses with PROTO_SERVICE_DISABLED before any output. */
  readonly allowReceivePack: (req: GitRequest) => boolean;
  readonly logger?: ServiceLogger;
  /** Advertised as `agent=`, e.g. "stowage/0.1.0". */
  readonly agent: string;
  readonly upload?: Partial<UploadPackConfig>;
  readonly receive?: Partial<ReceivePackConfig>;
}

/** Builds the service. */
export function createGitService(deps: GitServiceDeps): GitService {
  const settings: ServiceSettings = {
    agent: deps.agent,
    limits: deps.limits,
    fsck: deps.fsck,
    upload: { ...DEFAULT_UPLOAD_PACK_CONFIG, ...deps.upload },
    receive: { ...DEFAULT_RECEIVE_PACK_CONFIG, ...deps.receive },
    ...(deps.logger === undefined ? {} : { logger: deps.logger }),
  };
  return {
    async serve(req: GitRequest, input: AsyncIterable<Uint8Array>, output: ByteSink): Promise<void> {
      req.signal?.throwIfAborted();
      if (req.service === 'git-upload-archive') {
        throw new ProtocolError('PROTO_SERVICE_DISABLED', 'upload-archive is not supported yet');
      }
      if (req.service === 'git-receive-pack' && !deps.allowReceivePack(req)) {
        throw new AuthError('AUTH_DENIED', `pushing to ${req.repoName} is not allowed`);
      }
      const repo = await deps.host.open(req.repoName);
      const out = new ServiceOutput(output);
      try {
        if (req.service === 'git-receive-pack') await serveReceivePack(repo, req, input, out, settings);
        else if (req.protocolVersion === 2) await serveUploadPackV2(repo, req, input, out, settings);
        else await serveUploadPack(repo, req, input, out, settings);
        await out.drain();
      } catch (err) {
        if (!out.started) throw err;
        await tellClient(out, err);
        deps.logger?.warn(
          { requestId: req.requestId, repo: req.repoName, service: req.service, code: err instanceof StowageError ? err.code : 'INTERNAL', err },
          'git request failed after the response began',
        );
        throw err;
      }
    },
  };
}

/**
 * Sends an ERR line (gitprotocol-pack "error-line") for a failure between pkt-lines, e.g.
 * "not our ref" after the advertisement. Not inside a side-band stream (the pack code used
 * band 3 there) and not when the framing itself broke (the client is likely gone).
 */
async function tellClient(out: ServiceOutput, err: unknown): Promise<void> {
  if (out.streaming) return;
  if (err instanceof StowageError && (err.code === 'PKT_UNEXPECTED' || err.code === 'PKT_TRUNCATED' || err.code === 'ABORTED')) return;
  try {
    await out.write(errLine(publicMessage(err)));
    await out.drain();
  } catch {
    // The client is gone; nothing more to tell it.
  }
}
