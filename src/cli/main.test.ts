import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import type { CliIo } from './io.js';
import { main } from './main.js';

const execFileP = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function makeIo(env: Record<string, string> = {}, stop?: AbortSignal): { io: CliIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (s: string) => out.push(s) },
    stderr: { write: (s: string) => err.push(s) },
    stdin: new PassThrough(),
    env,
    ...(stop === undefined ? {} : { stop }),
  };
  return { io, out, err };
}

async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const { io, out, err } = makeIo(env);
  const code = await main(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}

async function withDataDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-main-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('stowage CLI', () => {
  test('usage errors exit 2, help and version exit 0', async () => {
    assert.equal((await run(['--version'])).code, 0);
    assert.equal((await run(['--help'])).code, 0);
    assert.equal((await run(['frobnicate'])).code, 2);
    assert.equal((await run(['repo', 'create'])).code, 2);
    assert.equal((await run(['serve', '--no-such-flag'])).code, 2);
    const badListen = await run(['serve', '--git-listen', 'nowhere']);
    assert.equal(badListen.code, 2);
    assert.match(badListen.stderr, /^stowage: .*--git-listen/);
  });

  test('repo delete refuses without --yes when stdin is not a terminal', async () => {
    const r = await run(['repo', 'delete', 'x']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'stowage: refusing to delete x without --yes (stdin is not a terminal)\n');
  });

  test('repo commands against a data directory', async () => {
    await withDataDir(async (dir) => {
      const d = ['--data', dir];
      const created = await run(['repo', 'create', 'team/app', '--description', 'the app', ...d]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /^created repository team\/app \(id .+\)\n$/);

      assert.equal((await run(['repo', 'create', 'team/app', ...d])).code, 1, 'exists');

      const list = await run(['repo', 'list', '--json', ...d]);
      const entries = JSON.parse(list.stdout) as Array<{ name: string; description: string }>;
      assert.deepEqual(entries.map((e) => [e.name, e.description]), [['team/app', 'the app']]);

      const show = await run(['repo', 'show', 'team/app.git', '--json', ...d]);
      assert.equal(show.code, 0, show.stderr);
      const info = JSON.parse(show.stdout) as Record<string, unknown>;
      assert.equal(info['name'], 'team/app');
      assert.equal(info['head'], 'refs/heads/main');
      assert.equal(info['headUnborn'], true);
      assert.equal(info['refs'], 0);
      assert.equal(info['packs'], 0);
      assert.equal(info['size'], 0);

      assert.equal((await run(['repo', 'set-head', 'team/app', 'dev', ...d])).stdout, 'HEAD of team/app now points at refs/heads/dev\n');
      assert.equal((await run(['repo', 'rename', 'team/app', 'team/app2', ...d])).code, 0);
      const text = await run(['repo', 'show', 'team/app2', ...d]);
      assert.match(text.stdout, /HEAD: +refs\/heads\/dev \(unborn\)/);

      const missing = await run(['repo', 'show', 'team/app', ...d]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr.split('\n').length, 2, 'one line');
      assert.match(missing.stderr, /^stowage: /);

      const debug = await run(['repo', 'show', 'team/app', ...d], { STOWAGE_DEBUG: '1' });
      assert.ok(debug.stderr.split('\n').length > 2, 'STOWAGE_DEBUG=1 adds the stack');

      assert.equal((await run(['repo', 'delete', 'team/app2', '--yes', ...d])).code, 0);
      assert.equal((await run(['repo', 'list', ...d])).stdout, '');
    });
  });

  test('repo import and export round-trip a bare repository, with plain progress lines', async () => {
    await withDataDir(async (dir) => {
      const git = async (args: string[], cwd = dir): Promise<string> => (await execFileP('git', args, { cwd, env: { ...process.env, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@x', GIT_COMMITTER_NAME: 'A', GIT_COMMITTER_EMAIL: 'a@x' } })).stdout;
      await git(['init', '-q', '-b', 'trunk', 'work']);
      const work = join(dir, 'work');
      await writeFile(join(work, 'a.txt'), 'hello\n');
      await git(['add', 'a.txt'], work);
      await git(['commit', '-qm', 'one'], work);
      await git(['tag', '-a', '-m', 'v1', 'v1'], work);
      await git(['clone', '-q', '--bare', work, join(dir, 'src.git')]);
      const d = ['--data', join(dir, 'data')];

      const imported = await run(['repo', 'import', 'imp', join(dir, 'src.git'), ...d]);
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stdout, /^imported .* into imp: 2 refs, 4 objects\n$/);
      assert.match(imported.stderr, /: \d+(\/\d+)?\n/, 'progress lines on a non-terminal');
      const info = JSON.parse((await run(['repo', 'show', 'imp', '--json', ...d])).stdout) as Record<string, unknown>;
      assert.equal(info['head'], 'refs/heads/trunk');
      assert.equal(info['refs'], 2);

      const exported = await run(['repo', 'export', 'imp', join(dir, 'out.git'), ...d]);
      assert.equal(exported.code, 0, exported.stderr);
      await git(['--git-dir', join(dir, 'out.git'), 'fsck', '--strict']);
      assert.equal(await git(['--git-dir', join(dir, 'out.git'), 'show-ref']), await git(['--git-dir', join(dir, 'src.git'), 'show-ref']));

      assert.equal((await run(['repo', 'import', 'imp', join(dir, 'src.git'), ...d])).code, 1, 'name taken');
      assert.equal((await run(['repo', 'import', 'other', join(dir, 'nothing-here'), ...d])).code, 2);
      assert.equal((await run(['repo', 'list', ...d])).stdout, 'imp\n', 'a failed import leaves no repository behind');
    });
  });

  test('serve logs one listening line per listener and stops on request', async () => {
    await withDataDir(async (dir) => {
      const stop = new AbortController();
      const { io, out } = makeIo({}, stop.signal);
      const running = main(['serve', '--data', dir, '--git-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--git-allow-push'], io);
      const listening = async (): Promise<Array<Record<string, unknown>>> => {
        for (;;) {
          const lines = out.join('').split('\n').filter((l) => l.includes('"listening"')).map((l) => JSON.parse(l) as Record<string, unknown>);
          if (lines.length === 2) return lines;
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      const lines = await listening();
      const git = lines.find((l) => l['service'] === 'git');
      const http = lines.find((l) => l['service'] === 'http');
      assert.match(String(git?.['url']), /^git:\/\/127\.0\.0\.1:\d+$/);
      assert.match(String(http?.['url']), /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(git?.['msg'], 'listening');
      const health = await fetch(`${String(http?.['url'])}/healthz`);
      assert.equal(await health.text(), 'ok');
      stop.abort();
      assert.equal(await running, 0);
    });
  });
});
