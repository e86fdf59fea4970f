import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ObjectId } from '../git/hash/object-id.js';
import { decodeFetchResponse } from '../git/protocol/fetch.js';
import { decodeLsRefsOutput } from '../git/protocol/ls-refs.js';
import { decodeV2Advertisement, encodeV2Request } from '../git/protocol/v2-capabilities.js';
import type { GitService } from './git-service.js';
import { git, indexPack, makeHistory, memoryEnv, pushRefs, runService, splitPkts, pktTexts, type History } from './testing/driver.js';

const U = '1234567890123456789012345678901234567890' as ObjectId;

function cmd(command: string, args: readonly string[], caps: readonly string[] = ['agent=git/2.39', 'object-format=sha1']): Uint8Array {
  return encodeV2Request({
    command,
    capabilities: caps.map((c) => {
      const eq = c.indexOf('=');
      return eq < 0 ? { name: c } : { name: c.slice(0, eq), value: c.slice(eq + 1) };
    }),
    args: args.map((a) => Buffer.from(`${a}\n`)),
  });
}

describe('upload-pack v2', () => {
  let hist: History;
  let c: ObjectId[];
  let tag: ObjectId;
  let svc: GitService;
  const C = (i: number): ObjectId => c[i] as ObjectId;
  const v2 = { service: 'git-upload-pack' as const, protocolVersion: 2 as const };

  before(async () => {
    hist = await makeHistory(5);
    c = hist.commits;
    await git(hist.dir, ['tag', '-a', '-m', 'v1', 'v1', C(1)]);
    tag = await hist.rev('v1');
    const env = memoryEnv();
    await env.host.create('r');
    await env.host.create('empty', { defaultBranch: 'trunk' });
    svc = env.service();
    const r = await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: C(4) }, { name: 'refs/tags/v1', newOid: tag }], await hist.pack([C(4), tag]));
    assert.equal(r.error, undefined);
  });
  after(() => hist.cleanup());

  test('advertises version 2 capabilities, without filter', async () => {
    const r = await runService(svc, { ...v2, repoName: 'r', advertiseRefs: true, statelessRpc: true });
    const caps = decodeV2Advertisement(r.output);
    assert.deepEqual(caps, [
      { name: 'agent', value: 'stowage/test' },
      { name: 'ls-refs', value: 'unborn' },
      { name: 'fetch', value: 'shallow wait-for-done' },
      { name: 'server-option' },
      { name: 'object-format', value: 'sha1' },
    ]);
  });

  test('ls-refs: symrefs, peel, prefixes, unborn HEAD', async () => {
    const all = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('ls-refs', ['symrefs', 'peel', 'unborn']));
    assert.deepEqual(decodeLsRefsOutput(all.output), [
      { name: 'HEAD', oid: C(4), symrefTarget: 'refs/heads/main' },
      { name: 'refs/heads/main', oid: C(4) },
      { name: 'refs/tags/v1', oid: tag, peeled: C(1) },
    ]);
    const tags = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('ls-refs', ['ref-prefix refs/tags/']));
    assert.deepEqual(decodeLsRefsOutput(tags.output), [{ name: 'refs/tags/v1', oid: tag }]);
    const empty = await runService(svc, { ...v2, repoName: 'empty', statelessRpc: true }, cmd('ls-refs', ['symrefs', 'unborn', 'ref-prefix HEAD']));
    assert.deepEqual(decodeLsRefsOutput(empty.output), [{ name: 'HEAD', oid: undefined, symrefTarget: 'refs/heads/trunk' }]);
    const noUnborn = await runService(svc, { ...v2, repoName: 'empty', statelessRpc: true }, cmd('ls-refs', ['symrefs']));
    assert.deepEqual(decodeLsRefsOutput(noUnborn.output), []);
  });

  test('ls-refs answers kept per state follow the arguments and every new state', async () => {
    const env = memoryEnv();
    await env.host.create('s');
    const s = env.service();
    const ls = async (args: readonly string[]): Promise<unknown> => decodeLsRefsOutput((await runService(s, { ...v2, repoName: 's', statelessRpc: true }, cmd('ls-refs', args))).output);
    assert.equal((await pushRefs(s, 's', [{ name: 'refs/heads/main', newOid: C(2) }], await hist.pack([C(2)]))).error, undefined);
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(await ls(['symrefs']), [{ name: 'HEAD', oid: C(2), symrefTarget: 'refs/heads/main' }, { name: 'refs/heads/main', oid: C(2) }]);
      assert.deepEqual(await ls([]), [{ name: 'HEAD', oid: C(2) }, { name: 'refs/heads/main', oid: C(2) }]);
      assert.deepEqual(await ls(['ref-prefix refs/tags/']), []);
    }
    assert.equal((await pushRefs(s, 's', [{ name: 'refs/heads/main', oldOid: C(2), newOid: C(3) }, { name: 'refs/tags/v1', newOid: tag }], await hist.pack([C(3), tag], [C(2)]))).error, undefined);
    assert.deepEqual(await ls(['symrefs']), [{ name: 'HEAD', oid: C(3), symrefTarget: 'refs/heads/main' }, { name: 'refs/heads/main', oid: C(3) }, { name: 'refs/tags/v1', oid: tag }]);
    assert.deepEqual(await ls(['ref-prefix refs/tags/', 'peel']), [{ name: 'refs/tags/v1', oid: tag, peeled: C(1) }]);
  });

  test('fetch: clone with done goes straight to the packfile', async () => {
    const r = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', ['ofs-delta', 'thin-pack', `want ${C(4)}`, 'done']));
    assert.equal(r.error, undefined, String(r.error));
    const res = decodeFetchResponse(r.output);
    assert.equal(res.acknowledgments, undefined);
    assert.match(Buffer.from(res.packfile?.progress ?? []).toString(), /Enumerating objects/);
    const idx = await indexPack(res.packfile?.data ?? new Uint8Array());
    try {
      assert.equal(idx.objects.length, (await git(hist.dir, ['rev-list', '--objects', C(4)])).toString().trim().split('\n').length);
    } finally {
      await idx.cleanup();
    }
  });

  test('fetch negotiation: NAK and flush, then ACKs with ready and the pack', async () => {
    const none = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', [`want ${C(4)}`, `have ${U}`]));
    assert.deepEqual(pktTexts(splitPkts(none.output).pkts), ['acknowledgments', 'NAK', '<flush>']);
    const ready = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', ['no-progress', `want ${C(4)}`, `have ${U}`, `have ${C(2)}`]));
    const res = decodeFetchResponse(ready.output);
    assert.deepEqual(res.acknowledgments, { acks: [C(2)], nak: false, ready: true });
    assert.equal(Buffer.from(res.packfile?.progress ?? []).toString(), '');
    const idx = await indexPack(res.packfile?.data ?? new Uint8Array());
    try {
      assert.deepEqual(idx.objects.filter((o) => c.includes(o)).sort(), [C(3), C(4)].sort());
    } finally {
      await idx.cleanup();
    }
    const wait = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', [`want ${C(4)}`, `have ${C(2)}`, 'wait-for-done']));
    assert.deepEqual(pktTexts(splitPkts(wait.output).pkts), ['acknowledgments', `ACK ${C(2)}`, '<flush>']);
  });

  test('fetch shallow-info: deepen, deepen-relative, unshallow', async () => {
    const d = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', [`want ${C(4)}`, 'deepen 1', 'done']));
    assert.deepEqual(decodeFetchResponse(d.output).shallowInfo, { shallow: [C(4)], unshallow: [] });
    const rel = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', [`want ${C(4)}`, `have ${C(4)}`, `shallow ${C(4)}`, 'deepen 2', 'deepen-relative', 'done']));
    const res = decodeFetchResponse(rel.output);
    assert.deepEqual(res.shallowInfo, { shallow: [C(2)], unshallow: [C(4)] });
    const idx = await indexPack(res.packfile?.data ?? new Uint8Array());
    try {
      assert.deepEqual(idx.objects.filter((o) => c.includes(o)).sort(), [C(2), C(3)].sort());
    } finally {
      await idx.cleanup();
    }
    const keep = await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, cmd('fetch', [`want ${C(4)}`, `shallow ${C(3)}`, 'done']));
    assert.deepEqual(decodeFetchResponse(keep.output).shallowInfo, { shallow: [], unshallow: [] });
  });

  test('errors: unknown command, argument, capability, object format; wants must be ours', async () => {
    const code = async (input: Uint8Array): Promise<string | undefined> =>
      ((await runService(svc, { ...v2, repoName: 'r', statelessRpc: true }, input)).error as { code?: string } | undefined)?.code;
    assert.equal(await code(cmd('object-info', ['size'])), 'PROTO_UNKNOWN_COMMAND');
    assert.equal(await code(cmd('fetch', ['filter blob:none'])), 'PROTO_UNKNOWN_PARAM');
    assert.equal(await code(cmd('ls-refs', [], ['session-id=1'])), 'PROTO_UNKNOWN_CAPABILITY');
    assert.equal(await code(cmd('ls-refs', [], ['object-format=sha256'])), 'PROTO_BAD_REQUEST');
    assert.equal(await code(cmd('fetch', [`want ${U}`, 'done'])), 'PROTO_NOT_OUR_REF');
    assert.equal(await code(cmd('ls-refs', [], ['agent=x', 'server-option=foo'])), undefined);
  });

  test('stateful: several commands until an empty request', async () => {
    const r = await runService(svc, { ...v2, repoName: 'r' }, [cmd('ls-refs', ['ref-prefix refs/heads/']), cmd('ls-refs', ['ref-prefix refs/tags/']), Buffer.from('0000')]);
    assert.equal(r.error, undefined);
    const texts = pktTexts(splitPkts(r.output).pkts);
    assert.equal(texts[0], 'version 2');
    const flushes = texts.filter((t) => t === '<flush>').length;
    assert.equal(flushes, 3);
    assert.ok(texts.includes(`${C(4)} refs/heads/main`));
    assert.ok(texts.includes(`${tag} refs/tags/v1`));
  });
});
