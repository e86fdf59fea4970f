/**
 * upload-pack for protocol v0/v1 (gitprotocol-pack "Fetching Data From a Server"), as git's
 * upload-pack.c: advertise refs, read wants/shallows/deepen, send the shallow update, run
 * the have/ACK negotiation (multi_ack, multi_ack_detailed, no-done), then send the pack.
 * Stateful over git:// and SSH; over smart HTTP each request is one round (stateless-rpc):
 * it carries the wants and every have so far, and a round without `done` ends at its flush.
 */
import { FETCH_LINES_MAX } from '../core/limits.js';
import type { ObjectId } from '../git/hash/object-id.js';
import { encodeRefAdvertisement, type AdvertisedRef } from '../git/protocol/advertisement.js';
import { hasCapability, sanitizeAgent, type Capability } from '../git/protocol/capabilities.js';
import { formatAck, formatShallowLines } from '../git/protocol/upload-response.js';
import { parseNegotiationLine, parseUploadRequest, type UploadRequest } from '../git/protocol/upload-request.js';
import { LimitError, ProtocolError } from '../core/errors.js';
import type { Repository } from '../repo/repository.js';
import type { RepoState } from '../meta/meta-store.js';
import type { GitRequest } from './git-service.js';
import { LineReader } from './line-reader.js';
import { HaveSet, LinkCache } from './negotiation.js';
import type { ServiceSettings } from './options.js';
import { SidebandWriter, type ServiceOutput, type SidebandMode } from './output.js';
import { planShallow, sendPack } from './pack-response.js';
import { headEntry, perState, sortedRefs } from './refs.js';
import { checkWantsAllowed, checkWantsExist } from './wants.js';

/** Capabilities upload-pack always advertises in v0/v1 (upload-pack.c write_v0_ref). */
const BASE_CAPABILITIES = [
  'multi_ack',
  'thin-pack',
  'side-band',
  'side-band-64k',
  'ofs-delta',
  'shallow',
  'deepen-since',
  'deepen-not',
  'deepen-relative',
  'no-progress',
  'include-tag',
  'multi_ack_detailed',
];

/** The v0/v1 capability list for this repository state. */
export function uploadPackCapabilities(state: RepoState, settings: ServiceSettings, advertiseNoDone: boolean): Capability[] {
  const caps: Capability[] = BASE_CAPABILITIES.map((name) => ({ name }));
  if (settings.upload.allowTipSha1InWant) caps.push({ name: 'allow-tip-sha1-in-want' });
  if (settings.upload.allowReachableSha1InWant) caps.push({ name: 'allow-reachable-sha1-in-want' });
  if (advertiseNoDone) caps.push({ name: 'no-done' });
  if (headEntry(state) !== undefined) caps.push({ name: 'symref', value: `HEAD:${state.head}` });
  caps.push({ name: 'object-format', value: 'sha1' });
  caps.push({ name: 'agent', value: sanitizeAgent(settings.agent) });
  return caps;
}

/** The refs upload-pack advertises: HEAD first when it resolves, then every ref by name. */
export function uploadPackRefs(state: RepoState): AdvertisedRef[] {
  const refs: AdvertisedRef[] = [];
  const head = headEntry(state);
  if (head !== undefined) refs.push(head);
  refs.push(...sortedRefs(state));
  return refs;
}

/** Acknowledgement lines held before writing them out. */
const PENDING_ACKS_MAX = 1024;

/** How the client wants acknowledgements. */
type MultiAck = 'none' | 'multi_ack' | 'multi_ack_detailed';

/** Runs one v0/v1 upload-pack request. */
export async function serveUploadPack(
  repo: Repository,
  req: GitRequest,
  input: AsyncIterable<Uint8Array>,
  out: ServiceOutput,
  settings: ServiceSettings,
): Promise<void> {
  const signal = req.signal;
  const state = await repo.readState();
  if (req.advertiseRefs || !req.statelessRpc) {
    const version = req.protocolVersion === 1 ? 1 : 0;
    const capabilities = uploadPackCapabilities(state, settings, req.advertiseRefs);
    const key = `v${version} ${capabilities.map((c) => (c.value === undefined ? c.name : `${c.name}=${c.value}`)).join(' ')}`;
    await out.write(perState(state, key, () => encodeRefAdvertisement({ version, refs: uploadPackRefs(state), capabilities, shallows: [] })));
  }
  if (req.advertiseRefs) return;

  const reader = new LineReader(input);
  const first = await reader.read();
  // A flush right away (ls-remote, nothing to fetch) or a hang-up ends the conversation.
  if (first === undefined || first.kind === 'flush') return;
  if (first.kind !== 'data') throw new ProtocolError('PKT_UNEXPECTED', `expected a want line, got a ${first.kind} packet`);
  const rest = await reader.readSection(FETCH_LINES_MAX - 1);
  if (rest.end !== 'flush') throw new ProtocolError('PKT_UNEXPECTED', `expected a flush after the wants, got a ${rest.end} packet`);
  const request = parseUploadRequest([first.payload, ...rest.lines]);
  // Shallow lines without wants: git reads them and ends without a word.
  if (request.wants.length === 0) return;
  const caps = request.capabilities;
  if (request.filter !== undefined) {
    throw new ProtocolError('PROTO_BAD_REQUEST', 'git upload-pack: filtering capability not negotiated');
  }

  const links = new LinkCache(repo);
  await checkWantsExist(repo, request.wants);
  await checkWantsAllowed(repo, state, links, request.wants, {
    statelessRpc: req.statelessRpc,
    allowTipSha1InWant: settings.upload.allowTipSha1InWant,
    allowReachableSha1InWant: settings.upload.allowReachableSha1InWant,
  }, signal);

  const shallow = await planShallow(repo, state, links, request.wants, {
    shallows: request.shallows,
    ...(request.depth === undefined ? {} : { depth: request.depth }),
    deepenRelative: hasCapability(caps, 'deepen-relative'),
    ...(request.deepenSince === undefined ? {} : { deepenSince: request.deepenSince }),
    deepenNot: request.deepenNot,
  }, signal);
  if (shallow.lines !== undefined) await out.lines([...formatShallowLines(shallow.lines), { special: 'flush' }]);

  // Stateless: a request may end right after the wants (the client only wanted the shallow list).
  if (req.statelessRpc && !(await reader.hasMore())) return;

  const haves = new HaveSet(repo, links, request.wants);
  const proceed = await negotiate(reader, out, haves, request, req.statelessRpc, signal);
  if (!proceed) return;

  const sideband: SidebandMode = hasCapability(caps, 'side-band-64k') ? 'sideband-64k' : hasCapability(caps, 'side-band') ? 'sideband' : 'none';
  const sb = new SidebandWriter(out, sideband, !hasCapability(caps, 'no-progress'));
  await sendPack(repo, out, sb, {
    wants: [...request.wants, ...shallow.extraWants],
    haves: [...haves.common, ...shallow.extraHaves],
    boundary: shallow.boundary,
    includeTags: hasCapability(caps, 'include-tag'),
    thin: hasCapability(caps, 'thin-pack'),
    ofsDelta: hasCapability(caps, 'ofs-delta'),
  }, signal);
}

/**
 * git's get_common_commits. Returns true when the pack should be sent (after `done`, or
 * after `ready` with no-done), false when a stateless round ended at its flush.
 */
async function negotiate(
  reader: LineReader,
  out: ServiceOutput,
  haves: HaveSet,
  request: UploadRequest,
  stateless: boolean,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const caps = request.capabilities;
  const multiAck: MultiAck = hasCapability(caps, 'multi_ack_detailed') ? 'multi_ack_detailed' : hasCapability(caps, 'multi_ack') ? 'multi_ack' : 'none';
  const noDone = hasCapability(caps, 'no-done');
  let lastHex: ObjectId | undefined;
  let gotCommon = false;
  let gotOther = false;
  let sentReady = false;
  let lines = 0;
  let pending: string[] = [];
  for (;;) {
    signal?.throwIfAborted();
    // Bound what waits for the flush; the client reads acknowledgements only after its flush anyway.
    if (pending.length >= PENDING_ACKS_MAX) {
      await out.lines(pending);
      pending = [];
    }
    const line = await reader.read();
    if (line === undefined) throw new ProtocolError('PKT_UNEXPECTED', 'the client hung up during negotiation');
    if (line.kind !== 'data') {
      if (multiAck === 'multi_ack_detailed' && gotCommon && !gotOther && lastHex !== undefined && (await haves.okToGiveUp(signal))) {
        sentReady = true;
        pending.push(formatAck({ kind: 'ack', oid: lastHex, status: 'ready' }));
      }
      if (haves.common.length === 0 || multiAck !== 'none') pending.push(formatAck({ kind: 'nak' }));
      if (noDone && sentReady && lastHex !== undefined) {
        pending.push(formatAck({ kind: 'ack', oid: lastHex }));
        await out.lines(pending);
        return true;
      }
      await out.lines(pending);
      pending = [];
      if (stateless) return false;
      gotCommon = false;
      gotOther = false;
      continue;
    }
    if (++lines > FETCH_LINES_MAX) throw new LimitError('LIMIT_EXCEEDED', `more than ${FETCH_LINES_MAX} have lines`);
    const nl = parseNegotiationLine(line.payload);
    if (nl.kind === 'done') {
      if (haves.common.length > 0) {
        if (multiAck !== 'none' && lastHex !== undefined) pending.push(formatAck({ kind: 'ack', oid: lastHex }));
      } else {
        pending.push(formatAck({ kind: 'nak' }));
      }
      if (pending.length > 0) await out.lines(pending);
      return true;
    }
    const got = await haves.got(nl.oid);
    if (got === 'absent') {
      gotOther = true;
      if (multiAck !== 'none' && (await haves.okToGiveUp(signal))) {
        if (multiAck === 'multi_ack_detailed') {
          sentReady = true;
          pending.push(formatAck({ kind: 'ack', oid: nl.oid, status: 'ready' }));
        } else {
          pending.push(formatAck({ kind: 'ack', oid: nl.oid, status: 'continue' }));
        }
      }
      continue;
    }
    gotCommon = true;
    lastHex = nl.oid;
    if (multiAck === 'multi_ack_detailed') pending.push(formatAck({ kind: 'ack', oid: nl.oid, status: 'common' }));
    else if (multiAck === 'multi_ack') pending.push(formatAck({ kind: 'ack', oid: nl.oid, status: 'continue' }));
    else if (haves.common.length === 1) pending.push(formatAck({ kind: 'ack', oid: nl.oid }));
  }
}
