/**
 * upload-pack for protocol v2 (gitprotocol-v2), as git's serve.c, ls-refs.c and
 * upload_pack_v2: a capability advertisement, then commands (`ls-refs`, `fetch`) until the
 * client sends an empty request or hangs up; over smart HTTP one command per request.
 */
import { LimitError, ProtocolError } from '../core/errors.js';
import { FETCH_LINES_MAX } from '../core/limits.js';
import type { ObjectId } from '../git/hash/object-id.js';
import { sanitizeAgent, type Capability } from '../git/protocol/capabilities.js';
import { formatAcknowledgments, formatShallowInfo, parseFetchArgs, type FetchArgs, type FetchFeatures } from '../git/protocol/fetch.js';
import { DELIM, FLUSH, quoteLine } from '../git/protocol/lines.js';
import { encodeLsRefsOutput, matchesRefPrefix, parseLsRefsArgs, type LsRef, type LsRefsArgs } from '../git/protocol/ls-refs.js';
import { encodeV2Advertisement, parseV2Request, V2_CAPABILITY_LINES_MAX, type V2Request } from '../git/protocol/v2-capabilities.js';
import type { Repository } from '../repo/repository.js';
import type { RepoState } from '../meta/meta-store.js';
import type { GitRequest } from './git-service.js';
import { LineReader } from './line-reader.js';
import { HaveSet, LinkCache } from './negotiation.js';
import type { ServiceSettings } from './options.js';
import { SidebandWriter, type ServiceOutput } from './output.js';
import { planShallow, sendPack, wantsDeepen } from './pack-response.js';
import { headEntry, perState, sortedRefs } from './refs.js';
import { checkWantsAllowed, checkWantsExist } from './wants.js';

/** The fetch features this server implements (advertised as `fetch=<features>`). */
export const FETCH_FEATURES: FetchFeatures = { shallow: true, filter: false, refInWant: false, waitForDone: true };

/** Most server-option capabilities accepted in one request. */
const SERVER_OPTIONS_MAX = 100;

/** The v2 capability advertisement (serve.c's list, limited to what is implemented). */
export function v2Capabilities(settings: ServiceSettings): Capability[] {
  const fetch = ['shallow', ...(FETCH_FEATURES.waitForDone ? ['wait-for-done'] : []), ...(FETCH_FEATURES.filter ? ['filter'] : [])];
  return [
    { name: 'agent', value: sanitizeAgent(settings.agent) },
    { name: 'ls-refs', value: 'unborn' },
    { name: 'fetch', value: fetch.join(' ') },
    { name: 'server-option' },
    { name: 'object-format', value: 'sha1' },
  ];
}

/** Runs a v2 upload-pack conversation (or one request of it when stateless). */
export async function serveUploadPackV2(
  repo: Repository,
  req: GitRequest,
  input: AsyncIterable<Uint8Array>,
  out: ServiceOutput,
  settings: ServiceSettings,
): Promise<void> {
  if (req.advertiseRefs || !req.statelessRpc) await out.write(encodeV2Advertisement(v2Capabilities(settings)));
  if (req.advertiseRefs) return;
  const reader = new LineReader(input);
  for (;;) {
    const more = await processRequest(repo, req, reader, out, settings);
    if (!more || req.statelessRpc) return;
  }
}

/** Reads and runs one command; false when the client ended the conversation. */
async function processRequest(
  repo: Repository,
  req: GitRequest,
  reader: LineReader,
  out: ServiceOutput,
  settings: ServiceSettings,
): Promise<boolean> {
  const first = await reader.read();
  if (first === undefined) return false;
  reader.unread(first);
  const preamble = await reader.readSection(V2_CAPABILITY_LINES_MAX);
  if (preamble.end === 'flush' && preamble.lines.length === 0) return false;
  if (preamble.end === 'response-end') throw new ProtocolError('PKT_UNEXPECTED', 'unexpected response-end packet in a request');
  let args: Uint8Array[] = [];
  if (preamble.end === 'delim') {
    const section = await reader.readSection(FETCH_LINES_MAX);
    if (section.end !== 'flush') throw new ProtocolError('PKT_UNEXPECTED', `expected a flush after the command arguments, got a ${section.end} packet`);
    args = section.lines;
  }
  const request = parseV2Request(preamble.lines, args);
  checkRequestCapabilities(request);
  switch (request.command) {
    case 'ls-refs':
      await lsRefs(repo, request, out);
      return true;
    case 'fetch':
      await fetch(repo, req, request, out, settings);
      return true;
    default:
      throw new ProtocolError('PROTO_UNKNOWN_COMMAND', `invalid command ${quoteLine(request.command)}`);
  }
}

/** serve.c receive_client_capability: only advertised, non-command capabilities; sha1 only. */
function checkRequestCapabilities(request: V2Request): void {
  let serverOptions = 0;
  for (const c of request.capabilities) {
    switch (c.name) {
      case 'agent':
        break;
      case 'server-option':
        if (++serverOptions > SERVER_OPTIONS_MAX) throw new LimitError('LIMIT_EXCEEDED', `more than ${SERVER_OPTIONS_MAX} server options`);
        break;
      case 'object-format':
        if (c.value === undefined) throw new ProtocolError('PROTO_BAD_REQUEST', 'object-format capability requires an argument');
        if (c.value !== 'sha1') throw new ProtocolError('PROTO_BAD_REQUEST', `mismatched object format: server sha1; client ${c.value}`);
        break;
      default:
        throw new ProtocolError('PROTO_UNKNOWN_CAPABILITY', `unknown capability ${quoteLine(c.value === undefined ? c.name : `${c.name}=${c.value}`)}`);
    }
  }
}

/** ls-refs.c: HEAD first (or unborn HEAD), then the refs matching the prefixes, by name. */
async function lsRefs(repo: Repository, request: V2Request, out: ServiceOutput): Promise<void> {
  const args = parseLsRefsArgs(request.args);
  const state = await repo.readState();
  // Clients of one repository version mostly ask the same: one encoding per state and arguments.
  const key = `ls-refs ${args.symrefs ? 's' : '-'}${args.peel ? 'p' : '-'}${args.unborn ? 'u' : '-'} ${JSON.stringify(args.refPrefixes)}`;
  await out.write(perState(state, key, () => encodeLsRefs(state, args)));
}

/** The ls-refs answer for `args` (see lsRefs). */
function encodeLsRefs(state: RepoState, args: LsRefsArgs): Uint8Array {
  const refs: LsRef[] = [];
  const prefixes = args.refPrefixes;
  const head = headEntry(state);
  if (matchesRefPrefix('HEAD', prefixes)) {
    if (head !== undefined) {
      refs.push({
        name: 'HEAD',
        oid: head.oid,
        ...(args.symrefs ? { symrefTarget: state.head } : {}),
        ...(args.peel && head.peeled !== undefined ? { peeled: head.peeled } : {}),
      });
    } else if (args.unborn && args.symrefs) {
      refs.push({ name: 'HEAD', oid: undefined, symrefTarget: state.head });
    }
  }
  for (const r of sortedRefs(state)) {
    if (!matchesRefPrefix(r.name, prefixes)) continue;
    refs.push({ name: r.name, oid: r.oid, ...(args.peel && r.peeled !== undefined ? { peeled: r.peeled } : {}) });
  }
  return encodeLsRefsOutput(refs);
}

/** upload_pack_v2: process args, maybe acknowledgments, then shallow-info and the packfile. */
async function fetch(repo: Repository, req: GitRequest, request: V2Request, out: ServiceOutput, settings: ServiceSettings): Promise<void> {
  const signal = req.signal;
  const args = parseFetchArgs(request.args, FETCH_FEATURES);
  const state = await repo.readState();
  const links = new LinkCache(repo);
  await checkWantsExist(repo, args.wants);
  // Unlike git's v2 (any existing object), wants get the same reachability rule as v0 stateless.
  await checkWantsAllowed(repo, state, links, args.wants, {
    statelessRpc: true,
    allowTipSha1InWant: settings.upload.allowTipSha1InWant,
    allowReachableSha1InWant: settings.upload.allowReachableSha1InWant,
  }, signal);
  // Nothing wanted: git answers nothing at all.
  if (args.wants.length === 0 && !args.waitForDone) return;

  const haves = new HaveSet(repo, links, args.wants);
  for (const h of args.haves) {
    signal?.throwIfAborted();
    await haves.got(h);
  }
  if (args.haves.length > 0 && !args.done) {
    const ready = !args.waitForDone && args.wants.length > 0 && (await haves.okToGiveUp(signal));
    await out.lines([...formatAcknowledgments(haves.common, ready), ready ? DELIM : FLUSH]);
    if (!ready) return;
  }
  if (args.wants.length === 0) {
    // wait-for-done without wants and with done: nothing to pack.
    await out.lines([FLUSH]);
    return;
  }
  await sendFetchPack(repo, state, links, args, haves, out, signal);
}

/** The shallow-info section (when shallow or deepen args came) and the packfile section. */
async function sendFetchPack(
  repo: Repository,
  state: Awaited<ReturnType<Repository['readState']>>,
  links: LinkCache,
  args: FetchArgs,
  haves: HaveSet,
  out: ServiceOutput,
  signal: AbortSignal | undefined,
): Promise<void> {
  const shallowReq = {
    shallows: args.shallows,
    ...(args.depth === undefined ? {} : { depth: args.depth }),
    deepenRelative: args.deepenRelative,
    ...(args.deepenSince === undefined ? {} : { deepenSince: args.deepenSince }),
    deepenNot: args.deepenNot,
  };
  const plan = await planShallow(repo, state, links, args.wants, shallowReq, signal);
  if (wantsDeepen(shallowReq) || args.shallows.length > 0) {
    await out.lines([...formatShallowInfo(plan.lines ?? { shallow: [], unshallow: [] }), DELIM]);
  }
  await out.lines(['packfile']);
  const sb = new SidebandWriter(out, 'sideband-64k', !args.noProgress);
  const wants: ObjectId[] = [...args.wants, ...plan.extraWants];
  await sendPack(repo, out, sb, {
    wants,
    haves: [...haves.common, ...plan.extraHaves],
    boundary: plan.boundary,
    includeTags: args.includeTag,
    thin: args.thinPack,
    ofsDelta: args.ofsDelta,
  }, signal);
}
