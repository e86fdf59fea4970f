import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ObjectId } from '../git/hash/object-id.js';
import { decodeRefAdvertisement } from '../git/protocol/advertisement.js';
import { frameLines, FLUSH } from '../git/protocol/lines.js';
import { encodeHaves, encodeUploadRequest } from '../git/protocol/upload-request.js';
import type { GitService } from './git-service.js';
import {
  git,
  indexPack,
  makeHistory,
  memoryEnv,
  parseFetchOutput,
  pushRefs,
  runService,
  type History,
  type MemoryEnv,
} from './testing/driver.js';

const U = '1234567890123456789012345678901234567890' as ObjectId;
const U2 = 'fedcba9876543210fedcba9876543210fedcba98' as ObjectId;

function wants(w: readonly ObjectId[], caps: readonly string[], extra: readonly string[] = []): Uint8Array {
  const req = encodeUploadRequest({ wants: w, capabilities: caps.map((name) => ({ name })), shallows: [], deepenNot: [] });
  // Extra lines (shallow, deepen) go before the flush.
  return extra.length === 0 ? req : Buffer.concat([req.subarray(0, req.length - 4), frameLines([...extra, FLUSH])]);
}

describe('upload-pack v0/v1', () => {
  let hist: History;
  let c: ObjectId[];
  let tag: ObjectId;
  let env: MemoryEnv;
  let svc: GitService;

  before(async () => {
    hist = await makeHistory(6);
    c = hist.commits;
    await git(hist.dir, ['tag', '-a', '-m', 'v1', 'v1', c[2]!]);
    tag = await hist.rev('v1');
    env = memoryEnv();
    await env.host.create('r');
    await env.host.create('empty');
    svc = env.service();
    const r = await pushRefs(
      svc,
      'r',
      [{ name: 'refs/heads/main', newOid: c[5]! }, { name: 'refs/heads/side', newOid: c[3]! }, { name: 'refs/tags/v1', newOid: tag }],
      await hist.pack([c[5]!, tag]),
    );
    assert.equal(r.error, undefined);
  });
  after(() => hist.cleanup());

  const C = (i: number): ObjectId => c[i] as ObjectId;

  test('advertises HEAD first, sorted refs, peeled tags and git capabilities', async () => {
    const r = await runService(svc, { service: 'git-upload-pack', repoName: 'r', advertiseRefs: true, statelessRpc: true, protocolVersion: 1 });
    const adv = decodeRefAdvertisement(r.output);
    assert.equal(adv.version, 1);
    assert.deepEqual(adv.refs, [
      { name: 'HEAD', oid: C(5) },
      { name: 'refs/heads/main', oid: C(5) },
      { name: 'refs/heads/side', oid: C(3) },
      { name: 'refs/tags/v1', oid: tag, peeled: C(2) },
    ]);
    const caps = adv.capabilities.map((x) => (x.value === undefined ? x.name : `${x.name}=${x.value}`));
    for (const n of ['multi_ack', 'multi_ack_detailed', 'no-done', 'thin-pack', 'side-band', 'side-band-64k', 'ofs-delta', 'shallow', 'deepen-since', 'deepen-not', 'deepen-relative', 'no-progress', 'include-tag', 'allow-tip-sha1-in-want', 'allow-reachable-sha1-in-want', 'symref=HEAD:refs/heads/main', 'object-format=sha1', 'agent=stowage/test']) {
      assert.ok(caps.includes(n), n);
    }
    const stateful = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, Buffer.from('0000'));
    assert.equal(decodeRefAdvertisement(stateful.output).capabilities.some((x) => x.name === 'no-done'), false);
    const empty = decodeRefAdvertisement((await runService(svc, { service: 'git-upload-pack', repoName: 'empty' }, Buffer.from('0000'))).output);
    assert.deepEqual(empty.refs, []);
    assert.equal(empty.capabilities.some((x) => x.name === 'symref'), false);
  });

  test('clone: want, done, NAK, then a complete pack on side-band with progress', async () => {
    const r = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(5), tag], ['multi_ack_detailed', 'side-band-64k', 'ofs-delta']), encodeHaves([], 'done')]);
    assert.equal(r.error, undefined, String(r.error));
    const out = parseFetchOutput(r.output, { advertised: true, sideband: true });
    assert.deepEqual(out.lines, ['NAK']);
    assert.match(out.progress, /Enumerating objects: \d+, done\./);
    const idx = await indexPack(out.pack);
    try {
      const expected = (await git(hist.dir, ['rev-list', '--objects', '--no-object-names', C(5), tag])).toString().trim().split('\n');
      assert.deepEqual([...idx.objects].sort(), [...expected].sort());
    } finally {
      await idx.cleanup();
    }
  });

  test('multi_ack_detailed: common, ready, NAK, final ACK; the pack holds only what is missing', async () => {
    const r = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [
      wants([C(5)], ['multi_ack_detailed', 'side-band-64k', 'ofs-delta', 'no-progress']),
      encodeHaves([U, C(2)], 'flush'),
      encodeHaves([C(1), U2], 'flush'),
      encodeHaves([], 'done'),
    ]);
    assert.equal(r.error, undefined, String(r.error));
    const out = parseFetchOutput(r.output, { advertised: true, sideband: true });
    assert.deepEqual(out.lines, [`ACK ${C(2)} common`, 'NAK', `ACK ${C(1)} common`, `ACK ${U2} ready`, 'NAK', `ACK ${C(1)}`]);
    assert.equal(out.progress, '');
    const idx = await indexPack(out.pack);
    try {
      const expected = (await git(hist.dir, ['rev-list', '--objects', '--no-object-names', C(5), `^${C(2)}`])).toString().trim().split('\n');
      assert.deepEqual([...idx.objects].sort(), [...expected].sort());
    } finally {
      await idx.cleanup();
    }
  });

  test('multi_ack: continue; without multi_ack: ACK only while one object is common', async () => {
    const ma = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [
      wants([C(5)], ['multi_ack', 'side-band-64k']),
      encodeHaves([C(2), U], 'flush'),
      encodeHaves([], 'done'),
    ]);
    assert.deepEqual(parseFetchOutput(ma.output, { advertised: true, sideband: true }).lines, [`ACK ${C(2)} continue`, `ACK ${U} continue`, 'NAK', `ACK ${C(2)}`]);
    const plain = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [
      wants([C(5)], ['side-band-64k']),
      encodeHaves([U, C(2), C(1)], 'flush'),
      encodeHaves([], 'done'),
    ]);
    assert.deepEqual(parseFetchOutput(plain.output, { advertised: true, sideband: true }).lines, [`ACK ${C(2)}`, `ACK ${C(1)}`]);
    const none = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(5)], []), encodeHaves([U], 'flush'), encodeHaves([], 'done')]);
    const raw = parseFetchOutput(none.output, { advertised: true, sideband: false });
    assert.deepEqual(raw.lines, ['NAK', 'NAK']);
    assert.equal(raw.pack.subarray(0, 4).toString(), 'PACK');
  });

  test('stateless rounds: each request replays the wants and the common haves', async () => {
    const caps = ['multi_ack_detailed', 'no-done', 'side-band-64k', 'ofs-delta'];
    const req = { service: 'git-upload-pack' as const, repoName: 'r', statelessRpc: true };
    const r1 = await runService(svc, req, [wants([C(5)], caps), encodeHaves([U], 'flush')]);
    assert.deepEqual(parseFetchOutput(r1.output, { advertised: false, sideband: true }).lines, ['NAK']);
    const r2 = await runService(svc, req, [wants([C(5)], caps), encodeHaves([U, C(2)], 'flush')]);
    assert.deepEqual(parseFetchOutput(r2.output, { advertised: false, sideband: true }).lines, [`ACK ${C(2)} common`, 'NAK']);
    const r3 = await runService(svc, req, [wants([C(5)], caps), encodeHaves([C(2), U2], 'flush')]);
    const o3 = parseFetchOutput(r3.output, { advertised: false, sideband: true });
    assert.deepEqual(o3.lines, [`ACK ${C(2)} common`, `ACK ${U2} ready`, 'NAK', `ACK ${C(2)}`]);
    assert.equal(o3.pack.subarray(0, 4).toString(), 'PACK');
    const r4 = await runService(svc, req, [wants([C(5)], caps), encodeHaves([C(2)], 'done')]);
    assert.deepEqual(parseFetchOutput(r4.output, { advertised: false, sideband: true }).lines, [`ACK ${C(2)} common`, `ACK ${C(2)}`]);
  });

  test('shallow: deepen sends shallow lines and a flush, and cuts the pack', async () => {
    const stateless = await runService(svc, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, wants([C(5)], ['side-band-64k'], ['deepen 2']));
    assert.equal(stateless.error, undefined);
    assert.deepEqual(parseFetchOutput(stateless.output, { advertised: false, sideband: true }).lines, [`shallow ${C(4)}`, '<flush>']);
    const full = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(5)], ['side-band-64k'], ['deepen 2']), encodeHaves([], 'done')]);
    const out = parseFetchOutput(full.output, { advertised: true, sideband: true });
    assert.deepEqual(out.lines, [`shallow ${C(4)}`, '<flush>', 'NAK']);
    const idx = await indexPack(out.pack);
    try {
      assert.ok(idx.objects.includes(C(5)) && idx.objects.includes(C(4)) && !idx.objects.includes(C(3)));
    } finally {
      await idx.cleanup();
    }
    const since = await runService(svc, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, wants([C(5)], ['side-band-64k'], [`deepen-since ${1600000000 + 3 * 86400}`]));
    assert.deepEqual(parseFetchOutput(since.output, { advertised: false, sideband: true }).lines, [`shallow ${C(3)}`, '<flush>']);
    const not = await runService(svc, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, wants([C(5)], ['side-band-64k'], ['deepen-not side']));
    assert.deepEqual(parseFetchOutput(not.output, { advertised: false, sideband: true }).lines, [`shallow ${C(4)}`, '<flush>']);
    const bad = await runService(svc, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, wants([C(5)], [], ['deepen-not nosuch']));
    assert.equal((bad.error as { code?: string }).code, 'PROTO_BAD_REQUEST');
  });

  test('include-tag sends annotated tags of sent commits', async () => {
    const r = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(3)], ['side-band-64k', 'include-tag']), encodeHaves([], 'done')]);
    assert.equal(r.error, undefined, String(r.error));
    const idx = await indexPack(parseFetchOutput(r.output, { advertised: true, sideband: true }).pack);
    try {
      assert.ok(idx.objects.includes(tag));
    } finally {
      await idx.cleanup();
    }
  });

  test('not our ref: unknown wants, and non-tips unless reachable and allowed', async () => {
    const unknown = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([U], ['side-band-64k']), encodeHaves([], 'done')]);
    assert.equal((unknown.error as { code?: string }).code, 'PROTO_NOT_OUR_REF');
    const lines = parseFetchOutput(unknown.output, { advertised: true, sideband: true }).lines;
    assert.deepEqual(lines, [`ERR upload-pack: not our ref ${U}`]);
    const strict = env.service({ upload: { allowReachableSha1InWant: false } });
    const nonTip = await runService(strict, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(1)], []), encodeHaves([], 'done')]);
    assert.equal((nonTip.error as { code?: string }).code, 'PROTO_NOT_OUR_REF');
    const statelessOk = await runService(strict, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, [wants([C(1)], []), encodeHaves([], 'done')]);
    assert.equal(statelessOk.error, undefined);
    const reachable = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, [wants([C(1)], []), encodeHaves([], 'done')]);
    assert.equal(reachable.error, undefined);
    const before = await runService(strict, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, [wants([U], []), encodeHaves([], 'done')]);
    assert.equal((before.error as { code?: string }).code, 'PROTO_NOT_OUR_REF');
    assert.equal(before.output.length, 0, 'nothing is written before the error in a stateless request');
  });

  test('any chunking of the request gives the same response', async () => {
    const input = Buffer.concat([wants([C(5)], ['multi_ack_detailed', 'side-band-64k', 'no-progress']), encodeHaves([U, C(2)], 'flush'), encodeHaves([C(1)], 'done')]);
    const whole = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, input);
    assert.equal(whole.error, undefined);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 12 }), async (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const parts: Buffer[] = [];
        let from = 0;
        for (const p of [...points, input.length]) {
          parts.push(input.subarray(from, p));
          from = p;
        }
        const r = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, parts);
        assert.equal(r.error, undefined);
        assert.deepEqual(r.output, whole.output);
      }),
      { seed: 5, numRuns: 15 },
    );
  });

  test('filter is refused (not advertised); a lone flush ends quietly', async () => {
    const f = await runService(svc, { service: 'git-upload-pack', repoName: 'r', statelessRpc: true }, [wants([C(5)], ['filter'], ['filter blob:none']), encodeHaves([], 'done')]);
    assert.equal((f.error as { code?: string }).code, 'PROTO_BAD_REQUEST');
    const quiet = await runService(svc, { service: 'git-upload-pack', repoName: 'r' }, Buffer.from('0000'));
    assert.equal(quiet.error, undefined);
  });
});
