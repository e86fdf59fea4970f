/**
 * receive-pack (gitprotocol-pack "Pushing Data To a Server"), as git's builtin/receive-pack.c,
 * in DESIGN.md section 5's order: advertise refs; read commands and push options; spool,
 * index and verify the pack (repo.receivePack: nothing visible); check each command; store
 * the pack; one meta transaction moves the refs and publishes the pack; report-status.
 * Always protocol v0/v1 (git has no v2 push): a v2 request is answered as v0.
 */
import { errorCode, hasCode, ProtocolError, publicMessage } from '../core/errors.js';
import { FETCH_LINES_MAX, PUSH_COMMANDS_MAX, PUSH_OPTIONS_MAX } from '../core/limits.js';
import type { FsckConfig } from '../git/fsck/config.js';
import { ZERO_OID } from '../git/hash/object-id.js';
import { encodeRefAdvertisement } from '../git/protocol/advertisement.js';
import { capabilityValue, hasCapability, sanitizeAgent, type Capability } from '../git/protocol/capabilities.js';
import { FLUSH_PKT } from '../git/pktline/encode.js';
import { isDelete, parsePushOptions, parseReceiveRequest } from '../git/protocol/receive-commands.js';
import { encodeReportStatus, type RefStatus } from '../git/protocol/report-status.js';
import type { RepoState } from '../meta/meta-store.js';
import type { ReceivedPack, Repository } from '../repo/repository.js';
import type { GitRequest } from './git-service.js';
import { LineReader } from './line-reader.js';
import type { ServiceSettings } from './options.js';
import { SidebandWriter, withKeepalive, type ServiceOutput } from './output.js';
import { ProgressText } from './progress.js';
import {
  checkDelete,
  checkDuplicates,
  checkFastForward,
  checkNameConflicts,
  checkNewObject,
  checkRefNameForPush,
  type CommandState,
  type Say,
} from './receive-checks.js';
import { receivedLinks } from './received-links.js';
import { sortedRefs } from './refs.js';
import { applyAtomic, applyNonAtomic } from './ref-transaction.js';

/** The capabilities receive-pack advertises (receive-pack.c show_ref, push-options on). */
export function receivePackCapabilities(settings: ServiceSettings): Capability[] {
  return [
    { name: 'report-status' },
    { name: 'report-status-v2' },
    { name: 'delete-refs' },
    { name: 'side-band-64k' },
    { name: 'quiet' },
    { name: 'atomic' },
    { name: 'ofs-delta' },
    { name: 'push-options' },
    { name: 'object-format', value: 'sha1' },
    { name: 'agent', value: sanitizeAgent(settings.agent) },
  ];
}

/** Server fsck severities with the repository's own settings on top (receive.fsck.<id>). */
export function mergeFsckConfig(server: FsckConfig, repo: FsckConfig | undefined): FsckConfig {
  return repo === undefined ? server : { ...server, ...repo };
}

/** Runs one receive-pack request. */
export async function serveReceivePack(
  repo: Repository,
  req: GitRequest,
  input: AsyncIterable<Uint8Array>,
  out: ServiceOutput,
  settings: ServiceSettings,
): Promise<void> {
  const signal = req.signal;
  const state = await repo.readState();
  if (req.advertiseRefs || !req.statelessRpc) {
    await out.write(
      encodeRefAdvertisement({
        version: req.protocolVersion === 1 ? 1 : 0,
        refs: sortedRefs(state).map((r) => ({ name: r.name, oid: r.oid })),
        capabilities: receivePackCapabilities(settings),
        shallows: [],
      }),
    );
  }
  if (req.advertiseRefs) return;

  const reader = new LineReader(input);
  // A flush (nothing to push) or a hang-up: git reads no commands and says nothing.
  if (!(await reader.hasMore())) return;
  const section = await reader.readSection(PUSH_COMMANDS_MAX + FETCH_LINES_MAX);
  if (section.end !== 'flush') throw new ProtocolError('PKT_UNEXPECTED', `expected a flush after the push commands, got a ${section.end} packet`);
  const request = parseReceiveRequest(section.lines);
  if (request.commands.length === 0) return;
  const caps = request.capabilities;
  const format = capabilityValue(caps, 'object-format') ?? 'sha1';
  if (format !== 'sha1') throw new ProtocolError('PROTO_BAD_REQUEST', `unsupported object format '${format}'`);
  let pushOptions = 0;
  if (hasCapability(caps, 'push-options')) {
    const opts = await reader.readSection(PUSH_OPTIONS_MAX);
    if (opts.end !== 'flush') throw new ProtocolError('PKT_UNEXPECTED', `expected a flush after the push options, got a ${opts.end} packet`);
    pushOptions = parsePushOptions(opts.lines).length;
  }

  const sb = new SidebandWriter(out, hasCapability(caps, 'side-band-64k') ? 'sideband-64k' : 'none', !hasCapability(caps, 'quiet'));
  const say: Say = (text) => sb.message(text);
  const cmds: CommandState[] = request.commands.map((cmd) => ({ cmd }));
  let received: ReceivedPack | undefined;
  let unpackError: string | undefined;
  try {
    if (cmds.some((c) => !isDelete(c.cmd))) {
      const r = await unpack(repo, reader, sb, out, cmds, settings, signal);
      received = r.received;
      unpackError = r.error;
    }
    if (unpackError !== undefined) {
      for (const c of cmds) c.error ??= 'unpacker error';
    } else {
      // The refs may have moved while the pack came in: check against the newest state.
      await checkCommands(repo, await repo.readState(), cmds, received, settings, say, signal);
      await execute(repo, cmds, received, hasCapability(caps, 'atomic'), say, signal);
    }
  } finally {
    await received?.discard();
  }

  const v2 = hasCapability(caps, 'report-status-v2');
  if (v2 || hasCapability(caps, 'report-status')) {
    const refs: RefStatus[] = cmds.map((c) =>
      c.error === undefined ? { kind: 'ok', name: c.cmd.name } : { kind: 'ng', name: c.cmd.name, reason: c.error },
    );
    await sb.packetOnBand1(encodeReportStatus({ unpack: unpackError ?? 'ok', refs }, v2));
  }
  if (sb.mode !== 'none') await out.write(FLUSH_PKT);
  await out.drain();
  settings.logger?.info(
    { requestId: req.requestId, repo: req.repoName, commands: cmds.length, rejected: cmds.filter((c) => c.error !== undefined).length, pushOptions },
    'push processed',
  );
}

/** Spools and verifies the pack; an error becomes the unpack status, as index-pack's failure does in git. */
async function unpack(
  repo: Repository,
  reader: LineReader,
  sb: SidebandWriter,
  out: ServiceOutput,
  cmds: CommandState[],
  settings: ServiceSettings,
  signal: AbortSignal | undefined,
): Promise<{ received?: ReceivedPack; error?: string }> {
  const progress = new ProgressText((t) => sb.progress(t));
  let inputDone = false;
  const source = reader.rest();
  const input = (async function* () {
    for await (const chunk of source) yield chunk;
    inputDone = true;
  })();
  const newTips = [...new Set(cmds.filter((c) => !isDelete(c.cmd)).map((c) => c.cmd.newOid))];
  try {
    const received = await withKeepalive(out, sb, 2, () =>
      repo.receivePack(input, {
        fsck: mergeFsckConfig(settings.fsck, repo.record.settings.fsck),
        limits: settings.limits,
        newTips,
        ...(signal === undefined ? {} : { signal }),
        // The client shows its own "Writing objects"; git's server shows only the resolving.
        onProgress: (phase, done, total) => {
          if (phase !== 'Receiving objects') progress.update(phase, done, total);
        },
      }),
    { active: () => inputDone });
    progress.finish();
    for (const w of received.warnings) sb.message(`warning: object ${w.oid}: ${w.id}: ${w.message}\n`);
    return { received };
  } catch (err) {
    progress.finish();
    if (hasCode(err, 'ABORTED') || signal?.aborted === true) throw err;
    if (hasCode(err, 'CONNECTIVITY_FAILED')) {
      sb.message(`error: ${publicMessage(err)}\n`);
      for (const c of cmds) if (!isDelete(c.cmd)) c.error ??= 'missing necessary objects';
      return {};
    }
    const msg = publicMessage(err);
    sb.message(`error: ${msg}\n`);
    settings.logger?.warn({ code: errorCode(err), err }, 'push unpack failed');
    return { error: msg };
  }
}

/** update()'s checks for every command still standing. */
async function checkCommands(
  repo: Repository,
  state: RepoState,
  cmds: CommandState[],
  received: ReceivedPack | undefined,
  settings: ServiceSettings,
  say: Say,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (const c of cmds) if (c.error === undefined) checkRefNameForPush(c, say);
  checkDuplicates(cmds, say);
  const linksOf = receivedLinks(repo, received);
  for (const c of cmds) {
    if (c.error !== undefined) continue;
    if (isDelete(c.cmd)) {
      checkDelete(c, state, settings.receive, say);
      continue;
    }
    if (received === undefined) {
      c.error = 'bad pack';
      continue;
    }
    await checkNewObject(c, received, say);
    if (c.error === undefined && settings.receive.denyNonFastForwards) await checkFastForward(c, linksOf, say, signal);
  }
  checkNameConflicts(cmds, state, say);
}

/** Stores the pack if a surviving command needs it, then moves the refs. */
async function execute(
  repo: Repository,
  cmds: CommandState[],
  received: ReceivedPack | undefined,
  atomic: boolean,
  say: Say,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (atomic && cmds.some((c) => c.error !== undefined)) {
    for (const c of cmds) c.error ??= 'atomic push failure';
    return;
  }
  const live = cmds.filter((c) => c.error === undefined);
  if (live.length === 0) return;
  let record;
  if (received !== undefined && live.some((c) => !isDelete(c.cmd))) {
    try {
      record = await received.store(signal === undefined ? {} : { signal });
    } catch (err) {
      say(`error: ${publicMessage(err)}\n`);
      for (const c of live) if (!isDelete(c.cmd) || atomic) c.error = 'unable to migrate objects to permanent storage';
      if (atomic) return;
    }
  }
  const deleteOlds = new Map<string, boolean>();
  for (const c of live) {
    if (isDelete(c.cmd) && c.cmd.oldOid !== ZERO_OID) deleteOlds.set(c.cmd.name, await repo.hasObject(c.cmd.oldOid));
  }
  if (atomic) await applyAtomic(repo, live, record, deleteOlds, say);
  else await applyNonAtomic(repo, live.filter((c) => c.error === undefined), record, deleteOlds, say);
}
