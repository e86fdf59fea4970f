import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { StowageError } from '../../core/errors.js';
import { runObjectStoreConformance } from '../conformance.js';
import { FS_TMP_DIR, FsStore } from './fs-store.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const FS_STORE_URL = new URL('./fs-store.js', import.meta.url).href;

async function tempDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-fs-store-'));
}

runObjectStoreConformance('fs', async () => {
  const dir = await tempDir();
  return {
    store: new FsStore({ root: path.join(dir, 'data') }),
    cleanup: () => fsp.rm(dir, { recursive: true, force: true }),
  };
});

/** A running child process with its stdout as a line queue. */
interface Child {
  readonly proc: ChildProcess;
  nextLine(): Promise<string>;
  exited: Promise<number | null>;
}

function startChild(script: string, args: readonly string[]): Child {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  const rl = createInterface({ input: proc.stdout ?? process.stdin });
  rl.on('line', (line) => {
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(line);
    else lines.push(line);
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    exited,
    nextLine: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      return new Promise<string>((resolve, reject) => {
        waiters.push(resolve);
        void exited.then((code) => reject(new Error(`child exited (${String(code)}) before writing a line`)));
      });
    },
  };
}

const RACE_CHILD = `
const [storeUrl, root, keysJson] = process.argv.slice(2);
const { FsStore } = await import(storeUrl);
const store = new FsStore({ root });
const keys = JSON.parse(keysJson);
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const body = new TextEncoder().encode('winner-' + process.pid);
const results = await Promise.all(keys.map((key) => store.put(key, body, { ifAbsent: true })));
const wins = keys.filter((_, i) => results[i].created);
process.stdout.write(JSON.stringify({ pid: process.pid, wins }) + '\\n');
await store.close();
process.exit(0);
`;

const CRASH_CHILD = `
const [storeUrl, root, mode] = process.argv.slice(2);
const { FsStore } = await import(storeUrl);
const store = new FsStore({ root });
if (mode === 'stream') {
  async function* body() {
    for (let i = 0; ; i += 1) {
      yield Buffer.alloc(1 << 20, i & 255);
      if (i === 4) process.stdout.write('streaming\\n');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
  await Promise.all([store.put('crash/plain', body()), store.put('crash/create-only', body(), { ifAbsent: true })]);
} else {
  for (let i = 0; ; i += 1) {
    await store.put('loop/' + String(i).padStart(6, '0'), Buffer.alloc(100000 + i, i & 255), { ifAbsent: i % 2 === 0 });
    if (i === 10) process.stdout.write('streaming\\n');
  }
}
`;

describe('FsStore across processes', () => {
  let dir = '';
  before(async () => {
    dir = await tempDir();
    await fsp.writeFile(path.join(dir, 'race-child.mjs'), RACE_CHILD);
    await fsp.writeFile(path.join(dir, 'crash-child.mjs'), CRASH_CHILD);
  });
  after(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('create-only puts from 6 processes: exactly one winner per key', { timeout: 120_000 }, async () => {
    const root = path.join(dir, 'race-data');
    const keys = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? `k${i}` : `race/${i % 4}/k${i}`));
    const children = Array.from({ length: 6 }, () =>
      startChild(path.join(dir, 'race-child.mjs'), [FS_STORE_URL, root, JSON.stringify(keys)]),
    );
    for (const child of children) assert.equal(await child.nextLine(), 'ready');
    for (const child of children) child.proc.stdin?.write('go\n');
    const reports = await Promise.all(
      children.map(async (child) => JSON.parse(await child.nextLine()) as { pid: number; wins: string[] }),
    );
    for (const child of children) assert.equal(await child.exited, 0);
    const store = new FsStore({ root });
    for (const key of keys) {
      const winners = reports.filter((r) => r.wins.includes(key));
      assert.equal(winners.length, 1, `key ${key} has ${winners.length} winners`);
      assert.equal(dec.decode(await store.get(key)), `winner-${String(winners[0]?.pid)}`);
    }
    assert.deepEqual(await fsp.readdir(path.join(root, FS_TMP_DIR)), []);
    await store.close();
  });

  test('kill -9 mid streaming put: no object at the key, at most a temp file', { timeout: 60_000 }, async () => {
    const root = path.join(dir, 'crash-data');
    const child = startChild(path.join(dir, 'crash-child.mjs'), [FS_STORE_URL, root, 'stream']);
    assert.equal(await child.nextLine(), 'streaming');
    child.proc.kill('SIGKILL');
    await child.exited;
    const store = new FsStore({ root });
    assert.equal(await store.head('crash/plain'), undefined);
    assert.equal(await store.head('crash/create-only'), undefined);
    const listed: string[] = [];
    for await (const info of store.list('')) listed.push(info.key);
    assert.deepEqual(listed, []);
    const temps = await fsp.readdir(path.join(root, FS_TMP_DIR));
    assert.ok(temps.length <= 2, `temps: ${temps.join(',')}`);
    // The key is free for a new writer.
    assert.ok((await store.put('crash/create-only', enc.encode('fresh'), { ifAbsent: true })).created);
    await store.close();
  });

  test('kill -9 during a loop of puts: every visible object is whole', { timeout: 60_000 }, async () => {
    const root = path.join(dir, 'crash-loop-data');
    const child = startChild(path.join(dir, 'crash-child.mjs'), [FS_STORE_URL, root, 'loop']);
    assert.equal(await child.nextLine(), 'streaming');
    await new Promise((resolve) => setTimeout(resolve, 30));
    child.proc.kill('SIGKILL');
    await child.exited;
    const store = new FsStore({ root });
    let count = 0;
    for await (const info of store.list('loop/')) {
      const i = Number(info.key.slice('loop/'.length));
      const data = Buffer.from(await store.get(info.key));
      assert.ok(data.equals(Buffer.alloc(100000 + i, i & 255)), `object ${info.key} is torn`);
      count += 1;
    }
    assert.ok(count >= 11);
    await store.close();
  });
});

describe('FsStore streams', () => {
  test('getStream with recycle reads into a few buffers, each again only after recycle resolved', async () => {
    const dir = await tempDir();
    try {
      const store = new FsStore({ root: dir });
      const data = Buffer.from(Array.from({ length: 3 * 1024 * 1024 + 12_345 }, (_, i) => (i * 131 + (i >> 9)) & 255));
      await store.put('big', data);
      /** Chunks given out since the last recycle, as views (not copies): they must stay intact. */
      const held: { chunk: Uint8Array; at: number }[] = [];
      const intact = (): void => {
        for (const h of held) assert.ok(Buffer.from(h.chunk).equals(data.subarray(h.at, h.at + h.chunk.byteLength)), `chunk at ${h.at} changed before recycle`);
      };
      let recycles = 0;
      const recycle = async (): Promise<void> => {
        await new Promise((r) => setTimeout(r, 2));
        intact();
        held.length = 0;
        recycles += 1;
      };
      const memory = new Set<ArrayBufferLike>();
      let at = 0;
      for await (const chunk of store.getStream('big', { recycle })) {
        held.push({ chunk, at });
        memory.add(chunk.buffer);
        at += chunk.byteLength;
      }
      intact();
      assert.equal(at, data.length);
      assert.ok(recycles >= 2, `recycle was awaited ${recycles} times`);
      assert.ok(memory.size <= 4, `${memory.size} buffers for ${at} bytes`);
      // Without recycle every chunk has memory of its own.
      const fresh = new Set<ArrayBufferLike>();
      let chunks = 0;
      for await (const chunk of store.getStream('big')) {
        fresh.add(chunk.buffer);
        chunks += 1;
      }
      assert.equal(fresh.size, chunks);
      await store.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FsStore layout', () => {
  test('creates a missing root and reserves .tmp', async () => {
    const dir = await tempDir();
    try {
      const store = new FsStore({ root: path.join(dir, 'x', 'y') });
      await store.put('k', enc.encode('v'));
      assert.equal(dec.decode(await fsp.readFile(path.join(dir, 'x', 'y', 'k'))), 'v');
      await assert.rejects(
        () => store.put(`${FS_TMP_DIR}/evil`, enc.encode('x')),
        (err: unknown) => err instanceof StowageError && err.code === 'STORE_BAD_KEY',
      );
      // Foreign files with names outside the key grammar are not listed.
      await fsp.writeFile(path.join(dir, 'x', 'y', 'has space'), 'x');
      const keys: string[] = [];
      for await (const info of store.list('')) keys.push(info.key);
      assert.deepEqual(keys, ['k']);
      assert.deepEqual(await fsp.readdir(path.join(dir, 'x', 'y', FS_TMP_DIR)), []);
      await store.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('an object and a prefix of the same name collide with STORE_BAD_KEY', async () => {
    const dir = await tempDir();
    try {
      const store = new FsStore({ root: dir });
      const badKey = (err: unknown): boolean => err instanceof StowageError && err.code === 'STORE_BAD_KEY';
      await store.put('a', enc.encode('file'));
      await assert.rejects(() => store.put('a/b', enc.encode('x')), badKey);
      await assert.rejects(() => store.put('a/b', enc.encode('x'), { ifAbsent: true }), badKey);
      await store.put('x/y', enc.encode('nested'));
      await assert.rejects(() => store.put('x', enc.encode('x')), badKey);
      await assert.rejects(() => store.put('x', enc.encode('x'), { ifAbsent: true }), badKey);
      assert.equal(dec.decode(await store.get('a')), 'file');
      assert.equal(dec.decode(await store.get('x/y')), 'nested');
      assert.deepEqual(await fsp.readdir(path.join(dir, FS_TMP_DIR)), []);
      await store.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('sweeps temp files older than the stale age at start', async () => {
    const dir = await tempDir();
    try {
      await fsp.mkdir(path.join(dir, FS_TMP_DIR));
      const old = path.join(dir, FS_TMP_DIR, 'old');
      const fresh = path.join(dir, FS_TMP_DIR, 'fresh');
      await fsp.writeFile(old, 'left by a crash');
      await fsp.writeFile(fresh, 'being written');
      const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
      await fsp.utimes(old, twoHoursAgo, twoHoursAgo);
      const store = new FsStore({ root: dir });
      await store.close();
      assert.deepEqual(await fsp.readdir(path.join(dir, FS_TMP_DIR)), ['fresh']);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FsStore deferred durability', () => {
  test('a deferred put is visible at once and atomic; sync takes every pending path', async () => {
    const dir = await tempDir();
    try {
      const store = new FsStore({ root: dir });
      await store.put('blocks/a', enc.encode('one'), { deferDurability: true });
      await store.put('blocks/b', enc.encode('two'), { deferDurability: true });
      await store.put('other/c', enc.encode('plain'));
      // Visible at once, to this store and to another one on the same directory.
      const other = new FsStore({ root: dir });
      assert.equal(dec.decode(await other.get('blocks/a')), 'one');
      assert.equal(dec.decode(await store.get('blocks/b')), 'two');
      assert.equal(store.pendingSyncs, 3, 'two files and their folder');
      // Puts made while a sync runs are left for the next one.
      const first = store.sync();
      await store.put('blocks/d', enc.encode('during'), { deferDurability: true });
      await first;
      assert.ok(store.pendingSyncs >= 1);
      await store.sync();
      assert.equal(store.pendingSyncs, 0);
      // A deferred overwrite replaces atomically; a deleted key is skipped by sync.
      await store.put('blocks/a', enc.encode('uno'), { deferDurability: true });
      await store.put('blocks/e', enc.encode('gone'), { deferDurability: true });
      await store.delete('blocks/e');
      await store.sync();
      assert.equal(dec.decode(await store.get('blocks/a')), 'uno');
      assert.equal(await store.head('blocks/e'), undefined);
      // Create-only puts are always durable (never deferred).
      assert.ok((await store.put('blocks/f', enc.encode('x'), { ifAbsent: true, deferDurability: true })).created);
      assert.equal(store.pendingSyncs, 0);
      assert.deepEqual(await fsp.readdir(path.join(dir, FS_TMP_DIR)), []);
      await other.close();
      await store.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  test('small ranged reads: views of the object, short at the end, undefined for absent keys and folders', async () => {
    const dir = await tempDir();
    try {
      const store = new FsStore({ root: dir });
      await store.put('x/y', enc.encode('0123456789'), { deferDurability: true });
      assert.equal(dec.decode(await store.get('x/y', { range: { offset: 2, length: 3 } })), '234');
      assert.equal(dec.decode(await store.get('x/y', { range: { offset: 8, length: 100 } })), '89');
      assert.equal((await store.get('x/y', { range: { offset: 20, length: 5 } })).byteLength, 0);
      assert.equal(await store.tryGet('x/none', { range: { offset: 0, length: 5 } }), undefined);
      assert.equal(await store.tryGet('x', { range: { offset: 0, length: 5 } }), undefined);
      await store.close();
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
