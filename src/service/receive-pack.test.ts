import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ZERO_OID, hashObject, type ObjectId } from '../git/hash/object-id.js';
import { decodeSidebandStream } from '../git/pktline/sideband.js';
import { decodeRefAdvertisement } from '../git/protocol/advertisement.js';
import { encodePushOptions } from '../git/protocol/receive-commands.js';
import { decodeReportStatus } from '../git/protocol/report-status.js';
import { git, makeHistory, memoryEnv, pushRefs, runService, type History, type RunResult } from './testing/driver.js';

function report(r: RunResult): { unpack: string; refs: Record<string, string>; messages: string } {
  assert.equal(r.error, undefined, String(r.error));
  const sb = decodeSidebandStream(r.output);
  assert.equal(sb.flushed, true);
  const rep = decodeReportStatus(sb.data);
  const refs: Record<string, string> = {};
  for (const x of rep.refs) refs[x.name] = x.kind === 'ok' ? 'ok' : x.reason;
  return { unpack: rep.unpack, refs, messages: Buffer.from(sb.progress).toString() };
}

describe('receive-pack', () => {
  let hist: History;
  let c: ObjectId[];

  before(async () => {
    hist = await makeHistory(4);
    c = hist.commits;
  });
  after(() => hist.cleanup());

  test('advertises capabilities^{} for an empty repository, refs without HEAD otherwise', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    const empty = await runService(svc, { service: 'git-receive-pack', repoName: 'r', advertiseRefs: true, statelessRpc: true });
    const adv = decodeRefAdvertisement(empty.output);
    assert.deepEqual(adv.refs, []);
    const names = adv.capabilities.map((x) => x.name);
    for (const n of ['report-status', 'report-status-v2', 'delete-refs', 'side-band-64k', 'quiet', 'atomic', 'ofs-delta', 'push-options', 'object-format', 'agent']) {
      assert.ok(names.includes(n), n);
    }
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }], await hist.pack([c[1]!])));
    const v1 = await runService(svc, { service: 'git-receive-pack', repoName: 'r', advertiseRefs: true, statelessRpc: true, protocolVersion: 1 });
    const adv1 = decodeRefAdvertisement(v1.output);
    assert.equal(adv1.version, 1);
    assert.deepEqual(adv1.refs, [{ name: 'refs/heads/main', oid: c[1]! }]);
  });

  test('creates, updates and deletes refs; the pack is published with the refs', async () => {
    const env = memoryEnv();
    const repo = await env.host.create('r');
    const svc = env.service();
    const r1 = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }, { name: 'refs/heads/dev', newOid: c[0]! }], await hist.pack([c[1]!])));
    assert.deepEqual(r1, { unpack: 'ok', refs: { 'refs/heads/main': 'ok', 'refs/heads/dev': 'ok' }, messages: r1.messages });
    let state = await repo.readState();
    assert.equal(state.refs.get('refs/heads/main')?.oid, c[1]!);
    assert.equal(state.packs.length, 1);
    const r2 = report(
      await pushRefs(svc, 'r', [{ name: 'refs/heads/main', oldOid: c[1]!, newOid: c[3]! }, { name: 'refs/heads/dev', oldOid: c[0]! }], await hist.pack([c[3]!], [c[1]!]), [
        'report-status-v2',
        'side-band-64k',
      ]),
    );
    assert.deepEqual(r2.refs, { 'refs/heads/main': 'ok', 'refs/heads/dev': 'ok' });
    state = await repo.readState();
    assert.equal(state.refs.get('refs/heads/main')?.oid, c[3]!);
    assert.equal(state.refs.has('refs/heads/dev'), false);
    assert.equal(state.packs.length, 2);
  });

  test('atomic push with a stale old value rejects every ref and publishes nothing', async () => {
    const env = memoryEnv();
    const repo = await env.host.create('r');
    const svc = env.service();
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }], await hist.pack([c[1]!])));
    const before = await repo.readState();
    const r = report(
      await pushRefs(
        svc,
        'r',
        [{ name: 'refs/heads/main', oldOid: c[0]!, newOid: c[3]! }, { name: 'refs/heads/new', newOid: c[3]! }],
        await hist.pack([c[3]!], [c[1]!]),
        ['report-status', 'side-band-64k', 'atomic'],
      ),
    );
    assert.equal(r.unpack, 'ok');
    assert.deepEqual(r.refs, { 'refs/heads/main': 'incorrect old value provided', 'refs/heads/new': 'atomic transaction failed' });
    assert.match(r.messages, /cannot lock ref 'refs\/heads\/main': is at [0-9a-f]{40} but expected/);
    const after = await repo.readState();
    assert.equal(after.version, before.version);
    assert.deepEqual(after.packs, before.packs);
  });

  test('non-atomic push: a stale ref fails alone; a failed check fails all under atomic', async () => {
    const env = memoryEnv();
    const repo = await env.host.create('r');
    const svc = env.service();
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }], await hist.pack([c[1]!])));
    const r = report(
      await pushRefs(svc, 'r', [{ name: 'refs/heads/main', oldOid: c[0]!, newOid: c[3]! }, { name: 'refs/heads/new', newOid: c[3]! }], await hist.pack([c[3]!], [c[1]!])),
    );
    assert.deepEqual(r.refs, { 'refs/heads/main': 'incorrect old value provided', 'refs/heads/new': 'ok' });
    assert.equal((await repo.readState()).refs.get('refs/heads/new')?.oid, c[3]!);
    const a = report(
      await pushRefs(svc, 'r', [{ name: 'refs/heads/x', newOid: c[2]! }, { name: 'refs/heads/bad..name', newOid: c[2]! }], await hist.pack([]), [
        'report-status',
        'side-band-64k',
        'atomic',
      ]),
    );
    assert.deepEqual(a.refs, { 'refs/heads/x': 'atomic push failure', 'refs/heads/bad..name': 'funny refname' });
    assert.match(a.messages, /refusing to update funny ref 'refs\/heads\/bad\.\.name' remotely/);
  });

  test('refuses deleting the current branch, creating an existing ref, name conflicts and non-commits on branches', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }, { name: 'refs/heads/a', newOid: c[1]! }], await hist.pack([c[1]!])));
    const tree = (await git(hist.dir, ['rev-parse', `${c[1]!}^{tree}`])).toString().trim() as ObjectId;
    const r = report(
      await pushRefs(svc, 'r', [
        { name: 'refs/heads/main', oldOid: c[1]! },
        { name: 'refs/heads/a', newOid: c[1]! },
        { name: 'refs/heads/a/b', newOid: c[1]! },
        { name: 'refs/heads/t', newOid: tree },
        { name: 'refs/tags/t', newOid: tree },
      ], await hist.pack([])),
    );
    assert.deepEqual(r.refs, {
      'refs/heads/main': 'deletion of the current branch prohibited',
      'refs/heads/a': 'reference already exists',
      'refs/heads/a/b': 'refname conflict',
      'refs/heads/t': 'invalid new value provided',
      'refs/tags/t': 'ok',
    });
    assert.match(r.messages, /refusing to delete the current branch: refs\/heads\/main/);
  });

  test('receive.denyNonFastForwards refuses a rewind; deletes may be denied', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service({ receive: { denyNonFastForwards: true, denyDeletes: true } });
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[3]! }, { name: 'refs/heads/x', newOid: c[3]! }], await hist.pack([c[3]!])));
    const r = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', oldOid: c[3]!, newOid: c[1]! }, { name: 'refs/heads/x', oldOid: c[3]! }], await hist.pack([])));
    assert.deepEqual(r.refs, { 'refs/heads/main': 'non-fast-forward', 'refs/heads/x': 'deletion prohibited' });
    assert.match(r.messages, /denying non-fast-forward refs\/heads\/main \(you should pull first\)/);
  });

  test('a corrupt pack is an unpack error and every ref fails', async () => {
    const env = memoryEnv();
    const repo = await env.host.create('r');
    const svc = env.service();
    const pack = await hist.pack([c[1]!]);
    pack[pack.length - 1] = (pack[pack.length - 1] as number) ^ 0xff;
    const r = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }], pack));
    assert.notEqual(r.unpack, 'ok');
    assert.deepEqual(r.refs, { 'refs/heads/main': 'unpacker error' });
    assert.equal((await repo.readState()).refs.size, 0);
  });

  test('missing objects fail the connectivity check', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    const r = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[3]! }], await hist.pack([c[3]!], [c[1]!])));
    assert.deepEqual(r.refs, { 'refs/heads/main': 'missing necessary objects' });
  });

  test('fsck warnings are reported on band 2 and accepted', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    const blob = await git(hist.dir, ['hash-object', '-w', '--stdin'], 'x\n');
    const blobOid = blob.toString().trim();
    // A tree with a zero-padded file mode: git's zeroPaddedFilemode, a warning by default.
    const treeData = Buffer.concat([Buffer.from('0100644 a\0'), Buffer.from(blobOid, 'hex')]);
    const treeOid = (await git(hist.dir, ['hash-object', '-w', '-t', 'tree', '--literally', '--stdin'], treeData)).toString().trim();
    assert.equal(treeOid, hashObject('tree', treeData));
    const commit = (await git(hist.dir, ['commit-tree', treeOid, '-m', 'odd'])).toString().trim() as ObjectId;
    const r = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: commit }], await hist.pack([commit])));
    assert.deepEqual(r.refs, { 'refs/heads/main': 'ok' });
    assert.match(r.messages, new RegExp(`warning: object ${treeOid}: zeroPaddedFilemode: `));
  });

  test('push options, quiet, and no side-band', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const svc = env.service();
    const withOpts = await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[2]! }], await hist.pack([c[2]!]), ['report-status', 'side-band-64k', 'push-options', 'quiet'], [
      encodePushOptions(['ci.skip']),
    ]);
    const r = report(withOpts);
    assert.deepEqual(r.refs, { 'refs/heads/main': 'ok' });
    assert.doesNotMatch(r.messages, /Resolving/);
    const plain = await pushRefs(svc, 'r', [{ name: 'refs/heads/b', newOid: c[2]! }], await hist.pack([]), ['report-status']);
    assert.deepEqual(decodeReportStatus(plain.output), { unpack: 'ok', refs: [{ kind: 'ok', name: 'refs/heads/b' }] });
    const silent = await pushRefs(svc, 'r', [{ name: 'refs/heads/c', newOid: c[2]! }], await hist.pack([]), []);
    assert.equal(silent.output.length, 0);
    assert.equal(silent.error, undefined);
  });

  test('nothing to push: a lone flush gets no answer', async () => {
    const env = memoryEnv();
    await env.host.create('r');
    const r = await runService(env.service(), { service: 'git-receive-pack', repoName: 'r', statelessRpc: true }, Buffer.from('0000'));
    assert.equal(r.error, undefined);
    assert.equal(r.output.length, 0);
  });

  test('deleting with a zero old id deletes whatever is there', async () => {
    const env = memoryEnv();
    const repo = await env.host.create('r');
    const svc = env.service();
    report(await pushRefs(svc, 'r', [{ name: 'refs/heads/main', newOid: c[1]! }, { name: 'refs/heads/x', newOid: c[1]! }], await hist.pack([c[1]!])));
    const r = report(await pushRefs(svc, 'r', [{ name: 'refs/heads/x', oldOid: ZERO_OID }], undefined));
    assert.deepEqual(r.refs, { 'refs/heads/x': 'ok' });
    assert.equal((await repo.readState()).refs.has('refs/heads/x'), false);
  });
});
