/**
 * Hostile input: what stock git never sends (raw clients) and bad objects stock git will push
 * if asked (made with hash-object --literally). Every case must get a clear error, leave refs
 * and the visible pack list unchanged, and leave the server serving clones.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { cliJson } from '../helpers/cli.js';
import { git, lines, type GitResult } from '../helpers/git.js';
import { EMPTY_TREE, EMPTY_TREE_ID, blob, commitBody, encodePack, insertDelta, objectId, packOf, treeBody, type RawObject } from '../helpers/pack.js';
import { ZERO_ID, pickCaps, pushRequest, rawPush, readReport, refusalText, type RawPushResult } from '../helpers/raw-push.js';
import { asLines, assertFsckClean } from '../helpers/repo-check.js';
import { RawConnection, afterFirstFlush, daemonRequest, hasFlushOrErr, httpExchange, pktTexts } from '../helpers/wire.js';
import { failedWith, scenario, type E2eContext } from './context.js';
import { commitFile } from './scenarios-fetch.js';

const REPO = 'hostile';

interface Target {
  readonly work: string;
  readonly tip: string;
  readonly tree: string;
}

/** Messages that say nothing a user can act on. */
const VAGUE = /internal error|^\W*(error|failed|unknown error)?\W*$/i;

export function hostileScenarios(ctx: E2eContext): void {
  let target: Target | undefined;
  const setUp = async (): Promise<Target> => {
    if (target !== undefined) return target;
    await ctx.createRepo(REPO);
    const work = join(await ctx.dir(REPO), 'w');
    await ctx.git(['init', '--quiet', work]);
    await commitFile(ctx, work, 'a.txt', 'base\n');
    const tip = await commitFile(ctx, work, 'b.txt', 'tip\n');
    await ctx.git(['remote', 'add', 'origin', ctx.url(REPO)], { cwd: work });
    await ctx.git(['push', '--quiet', 'origin', 'master'], { cwd: work });
    const tree = (await ctx.git(['rev-parse', 'HEAD^{tree}'], { cwd: work })).stdout.trim();
    target = { work, tip, tree };
    return target;
  };

  /** Runs an attack, then checks: refs and visible packs unchanged, and clones still served. */
  const harmless = async (tc: TestContext, attack: (t: Target) => Promise<string>): Promise<string> => {
    const t = await setUp();
    const refsBefore = asLines(await ctx.lsRemote(REPO));
    const packsBefore = await ctx.packCount(REPO);
    const message = await attack(t);
    assert.ok(message.trim().length > 0, 'the client got no error message');
    tc.diagnostic(`the client was told: ${message.replace(/\s+/g, ' ').slice(0, 600)}`);
    assert.doesNotMatch(message.trim(), VAGUE, `the error is not clear: "${message}"`);
    assert.deepEqual(asLines(await ctx.lsRemote(REPO)), refsBefore, 'refs changed');
    assert.equal(await ctx.packCount(REPO), packsBefore, 'a new pack became visible');
    const clone = join(await ctx.dir('after-attack'), 'c');
    await ctx.git(['clone', '--quiet', '--mirror', ctx.url(REPO), clone]);
    assert.equal(await ctx.revParse(clone, 'refs/heads/master'), t.tip);
    await assertFsckClean(clone);
    return message;
  };

  /** A raw push that must be refused; returns what the server said. */
  const refusedPush = async (tc: TestContext, commands: (t: Target) => string[], pack: (t: Target) => Uint8Array | undefined, expect: RegExp): Promise<void> => {
    await harmless(tc, async (t) => {
      const result = await rawPush(ctx.server, ctx.frontend, `/${REPO}`, (advert) => pushRequest(commands(t), pickCaps(advert, ['report-status']), pack(t)));
      return checkRefusal(result, expect);
    });
  };

  /** Pushes a commit built from a literally-hashed (invalid) object with stock git. */
  const stockPushOfBadObject = async (
    tc: TestContext,
    make: (t: Target, blobId: string) => { type: 'tree' | 'commit'; body: Uint8Array },
    ref: string,
    expect: RegExp,
  ): Promise<void> => {
    await harmless(tc, async (t) => {
      const blobId = (await git(['hash-object', '-w', '--stdin'], { cwd: t.work, input: 'bad tree content\n' })).stdout.trim();
      const obj = make(t, blobId);
      const id = (await git(['hash-object', '-t', obj.type, '--literally', '-w', '--stdin'], { cwd: t.work, input: obj.body })).stdout.trim();
      const commit = obj.type === 'commit' ? id : (await git(['commit-tree', id, '-p', t.tip, '-m', `bad tree for ${ref}`], { cwd: t.work })).stdout.trim();
      const result = await ctx.gitResult(['push', 'origin', `${commit}:refs/heads/${ref}`], { cwd: t.work });
      const problem = failedWith(result, /remote rejected|remote unpack failed|unpack|error/i);
      assert.equal(problem, undefined);
      assert.match(result.stderr, expect, 'the reason the client was given');
      return remoteReason(result);
    });
  };

  scenario(ctx, 'hostile: a truncated pack is refused', async (tc) => {
    const commit: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: 'truncated' }) };
    await refusedPush(
      tc,
      () => [`${ZERO_ID} ${objectId(commit)} refs/heads/truncated`],
      () => {
        const pack = packOf([EMPTY_TREE, commit, blob('x'.repeat(5000))]);
        return pack.subarray(0, pack.length - 40);
      },
      /pack|truncat|eof|end of|short|premature|incomplete/i,
    );
  });

  scenario(ctx, 'hostile: a pack with a bad checksum is refused', async (tc) => {
    const commit: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: 'bad checksum' }) };
    await refusedPush(
      tc,
      () => [`${ZERO_ID} ${objectId(commit)} refs/heads/bad-checksum`],
      () => {
        const pack = Buffer.from(packOf([EMPTY_TREE, commit]));
        pack[pack.length - 1] = (pack[pack.length - 1] ?? 0) ^ 0xff;
        return pack;
      },
      /checksum|sha|hash|trailer|corrupt/i,
    );
  });

  scenario(ctx, 'hostile: an object whose content does not match its id is refused', async (tc) => {
    const claimed: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: 'the original' }) };
    const forged: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: 'the forgery' }) };
    await refusedPush(
      tc,
      () => [`${ZERO_ID} ${objectId(claimed)} refs/heads/forged`],
      () => packOf([EMPTY_TREE, forged]),
      /missing|not found|mismatch|connect|does not exist|absent|unknown|bad/i,
    );
  });

  scenario(ctx, 'hostile: a ref-delta against a base that is not there is refused', async (tc) => {
    const result = Buffer.from(commitBody({ tree: EMPTY_TREE_ID, message: 'delta result' }));
    const id = objectId({ type: 'commit', body: result });
    await refusedPush(
      tc,
      () => [`${ZERO_ID} ${id} refs/heads/delta`],
      () => encodePack([
        { kind: 'object', object: EMPTY_TREE },
        { kind: 'ref-delta', baseId: 'e'.repeat(40), delta: insertDelta(10, result) },
      ]),
      /base|delta|missing|not found|thin/i,
    );
  });

  scenario(ctx, 'hostile: a tree with unsorted entries is refused', async (tc) => {
    await stockPushOfBadObject(
      tc,
      (_t, b) => ({ type: 'tree', body: treeBody([{ mode: '100644', name: 'zz', id: b }, { mode: '100644', name: 'aa', id: b }]) }),
      'unsorted',
      /sort|order/i,
    );
  });

  scenario(ctx, 'hostile: a tree with duplicate entries is refused', async (tc) => {
    await stockPushOfBadObject(
      tc,
      (_t, b) => ({ type: 'tree', body: treeBody([{ mode: '100644', name: 'same', id: b }, { mode: '100644', name: 'same', id: b }]) }),
      'duplicate',
      /duplicate/i,
    );
  });

  scenario(ctx, 'hostile: a tree with a ".." entry is refused when hasDotdot is configured as an error', async (tc) => {
    await stockPushOfBadObject(
      tc,
      (_t, b) => ({ type: 'tree', body: treeBody([{ mode: '100644', name: '..', id: b }, { mode: '100644', name: 'ok', id: b }]) }),
      'dotdot',
      /dotdot|\.\./i,
    );
  });

  scenario(ctx, 'hostile: a commit without a tree is refused', async (tc) => {
    const commit: RawObject = { type: 'commit', body: commitBody({ tree: undefined, message: 'no tree' }) };
    await refusedPush(
      tc,
      () => [`${ZERO_ID} ${objectId(commit)} refs/heads/no-tree`],
      () => packOf([commit]),
      /tree|commit/i,
    );
  });

  scenario(ctx, 'hostile: invalid ref names are refused', async (tc) => {
    await harmless(tc, async () => {
      const said: string[] = [];
      for (const name of ['refs/heads/bad..name', 'refs/heads/ends.lock', 'refs/heads/ctl\x01char', 'HEAD', 'refs/heads/', 'refs/heads/x/../y']) {
        const commit: RawObject = { type: 'commit', body: commitBody({ tree: EMPTY_TREE_ID, message: `ref ${name}` }) };
        const result = await rawPush(ctx.server, ctx.frontend, `/${REPO}`, (advert) =>
          pushRequest([`${ZERO_ID} ${objectId(commit)} ${name}`], pickCaps(advert, ['report-status']), packOf([EMPTY_TREE, commit])),
        );
        said.push(`${JSON.stringify(name)}: ${checkRefusal(result, /ref|name|invalid|funny/i)}`);
      }
      return said.join(' | ');
    });
  });

  scenario(ctx, 'hostile: an oversized pkt-line length gets an error and a closed connection', async (tc) => {
    await harmless(tc, async () => {
      const messages: string[] = [];
      const { host, port } = ctx.server.address(ctx.frontend);
      if (ctx.frontend === 'git') {
        // as the very first (request) line
        const conn = await RawConnection.open(host, port);
        await conn.write(Buffer.concat([Buffer.from('ffff'), Buffer.alloc(2000, 0x61)]));
        assert.ok(await conn.waitClosed(15_000), 'the server kept a connection with an oversized first pkt-line open');
        conn.destroy();
        messages.push(errText(conn.received, 'first line'));
      }
      // inside receive-pack's command list
      // (no half-close: the length alone must be refused, without waiting for the rest)
      const result = await rawPush(ctx.server, ctx.frontend, `/${REPO}`, () => Buffer.concat([Buffer.from('fff1'), Buffer.alloc(3000, 0x30)]), 15_000, false);
      assert.equal(result.timedOut, false, 'the server did not answer an oversized command pkt-line');
      messages.push(checkRefusal(result, /pkt|packet|length|line|too (long|large)|protocol|invalid/i));
      // inside an upload-pack request
      if (ctx.frontend === 'http') {
        const answer = await httpExchange({
          host,
          port,
          method: 'POST',
          path: `/${REPO}.git/git-upload-pack`,
          headers: {
            'content-type': 'application/x-git-upload-pack-request',
            ...(ctx.protocol === 2 ? { 'git-protocol': 'version=2' } : {}),
          },
          body: Buffer.concat([Buffer.from('ffff'), Buffer.alloc(100, 0x61)]),
        });
        const text = answer.status >= 400 ? answer.body.toString('utf8') : errText(answer.body, 'upload-pack body');
        assert.ok(answer.status >= 400 || /ERR/.test(answer.body.toString('utf8')), `HTTP ${answer.status} for an oversized pkt-line: ${answer.body.toString('utf8').slice(0, 300)}`);
        messages.push(text);
      } else {
        const conn = await RawConnection.open(host, port);
        const extra = ctx.protocol === 2 ? ['version=2'] : [];
        await conn.write(daemonRequest('git-upload-pack', `/${REPO}`, `${host}:${port}`, extra));
        assert.ok(await conn.waitFor(hasFlushOrErr, 15_000), 'no upload-pack advertisement');
        const advertised = afterFirstFlush(conn.received);
        await conn.write(Buffer.concat([Buffer.from('ffff'), Buffer.alloc(100, 0x61)]));
        assert.ok(await conn.waitClosed(15_000), 'upload-pack kept a connection with an oversized pkt-line open');
        conn.destroy();
        messages.push(errText(conn.received.subarray(advertised), 'upload-pack request'));
      }
      return messages.join(' | ');
    });
  });

  scenario(ctx, 'hostile: repository names with ".." or a leading "-" are refused', async (tc) => {
    await harmless(tc, async () => {
      const messages: string[] = [];
      const { host, port } = ctx.server.address(ctx.frontend);
      for (const path of [`/../${REPO}`, `/x/../${REPO}`, `/${REPO}/..`, '/-upload-pack', `/-${REPO}`, '/..']) {
        if (ctx.frontend === 'git') {
          const conn = await RawConnection.open(host, port);
          await conn.write(daemonRequest('git-upload-pack', path, `${host}:${port}`, ctx.protocol === 2 ? ['version=2'] : []));
          assert.ok(await conn.waitClosed(15_000), `connection for ${path} stayed open`);
          conn.destroy();
          const texts = pktTexts(conn.received);
          assert.ok(!texts.some((l) => /^[0-9a-f]{40} /.test(l) || l === 'version 2'), `${path} was served: ${texts.slice(0, 3).join(' / ')}`);
          messages.push(`${path}: ${errText(conn.received, path)}`);
        } else {
          const answer = await httpExchange({ host, port, method: 'GET', path: `${path}/info/refs?service=git-upload-pack` });
          assert.ok(answer.status >= 400 && answer.status < 500, `${path}: HTTP ${answer.status} ${answer.body.toString('utf8').slice(0, 200)}`);
          messages.push(`${path}: ${answer.status} ${answer.body.toString('utf8').trim()}`);
        }
      }
      if (ctx.frontend === 'git') {
        const stock = await ctx.gitResult(['ls-remote', `${ctx.server.gitUrl}/x/../${REPO}`]);
        assert.equal(failedWith(stock, /remote error|fatal/i), undefined);
        messages.push(`stock git: ${remoteReason(stock)}`);
      }
      return messages.join(' | ');
    });
  });

  scenario(ctx, 'hostile: a push to a repository that does not exist is refused and creates nothing', async (tc) => {
    await harmless(tc, async (t) => {
      const result = await ctx.gitResult(['push', ctx.url('no/such/repo'), 'master'], { cwd: t.work });
      assert.equal(failedWith(result, /not found|does not exist|no such|not exist|unknown repo/i), undefined);
      const list = JSON.stringify(await cliJson(['repo', 'list', '--json'], { dataDir: ctx.dataDir }));
      assert.ok(!list.includes('no/such/repo'), `a push created the repository: ${list}`);
      return remoteReason(result);
    });
  });
}

/** The remote's own words from a failed stock git run. */
function remoteReason(result: GitResult): string {
  const said = lines(result.stderr).filter((l) => /remote|rejected|error|fatal/i.test(l));
  return said.join(' / ');
}

/** The ERR text in a raw answer; fails the test if there is none. */
function errText(received: Buffer, what: string): string {
  const texts = pktTexts(received);
  const err = texts.find((l) => l.startsWith('ERR '));
  const band3 = texts.find((l) => l.startsWith('\x03'));
  assert.ok(err !== undefined || band3 !== undefined, `no ERR pkt-line for ${what}; the server sent ${JSON.stringify(received.toString('latin1').slice(0, 300))}`);
  return (err ?? band3 ?? '').replace(/^ERR |^\x03/, '');
}

/** Asserts a raw push was refused with a message matching `expect`; returns the message. */
function checkRefusal(result: RawPushResult, expect: RegExp): string {
  assert.equal(result.timedOut, false, 'the server neither answered nor closed the connection');
  const report = readReport(result);
  const refusal = refusalText(report);
  assert.notEqual(refusal, undefined, `the push was accepted: ${JSON.stringify([...report.refs])}`);
  assert.ok((refusal ?? '').length > 0, `no error reported; the server answered ${JSON.stringify(result.response.toString('latin1').slice(0, 300))}${result.socketError === undefined ? '' : ` (${result.socketError})`}`);
  assert.match(refusal ?? '', expect, 'the reason the client was given');
  return refusal ?? '';
}
