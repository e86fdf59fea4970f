/**
 * NBD crash safety and single-writer leases, end to end with libnbd's Python binding (what
 * nbdsh runs) against real `stowage serve` processes:
 *   - a server killed with SIGKILL mid-session loses nothing that was written with FUA or
 *     before a completed flush; its lease keeps writers out until `stowage nbd unlock`;
 *   - two servers on one data dir: the one whose client holds the lease excludes the other,
 *     which takes over (with the data) once the first stops gracefully.
 * Needs python3-libnbd (nbdsh).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { missingTools } from '../../src/nbd/server/testing/harness.js';
import { cliResult } from '../helpers/cli.js';
import { PROJECT_ROOT, STOWAGE_BIN } from '../helpers/paths.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startNbdServer, type NbdServerProcess } from './nbd-helpers.js';

const MiB = 1024 * 1024;
const VOLUME_BYTES = 64 * MiB;

/** Every child this file starts; SIGKILLed in `after` if still running. */
const children = new Set<ChildProcess>();
const servers = new Set<NbdServerProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what()}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function started(server: Promise<NbdServerProcess>): Promise<NbdServerProcess> {
  const s = await server;
  servers.add(s);
  return s;
}

/** A server whose process we can SIGKILL (nbd-helpers only stops gracefully). */
async function spawnKillableServer(dataDir: string): Promise<{ child: ChildProcess; nbdUrl: string; output: () => string }> {
  const args = ['serve', '--data', dataDir, '--git-listen', '127.0.0.1:0', '--http-listen', '127.0.0.1:0', '--nbd-listen', '127.0.0.1:0'];
  const child = track(spawn(process.execPath, [STOWAGE_BIN, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const url = new Promise<string>((resolve, reject) => {
    void exitOf(child).then(() => reject(new Error(`stowage serve exited before listening:\n${out}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      out += `${line}\n`;
      try {
        const rec = JSON.parse(line) as Record<string, unknown>;
        if (rec['msg'] === 'listening' && rec['service'] === 'nbd' && typeof rec['url'] === 'string') resolve(rec['url'].replace(/\/+$/, ''));
      } catch {
        // not a log line
      }
    });
  });
  const nbdUrl = await withTimeout(url, 30_000, () => `stowage serve logged no nbd listening line:\n${out}`);
  return { child, nbdUrl, output: () => out };
}

/**
 * The libnbd client, in the python3 that nbdsh would use. Modes: `write` (apply ops, print
 * READY, hold the connection until stdin closes), `probe` (report whether opt_go succeeds),
 * `read` (dump the whole export to a file).
 */
const CLIENT_PY = `
import json, sys, nbd
cfg = json.load(open(sys.argv[1]))
h = nbd.NBD()
if cfg['mode'] == 'probe':
    try:
        h.connect_uri(cfg['uri'])
    except nbd.Error as e:
        print(json.dumps({'connected': False, 'error': str(e)}), flush=True)
        sys.exit(0)
    print(json.dumps({'connected': True, 'readOnly': h.is_read_only()}), flush=True)
    h.shutdown()
    sys.exit(0)
h.connect_uri(cfg['uri'])
if cfg['mode'] == 'write':
    for op in cfg['ops']:
        if op['kind'] == 'flush':
            h.flush()
        else:
            with open(op['file'], 'rb') as f:
                buf = f.read()
            h.pwrite(buf, op['off'], nbd.CMD_FLAG_FUA if op['fua'] else 0)
    print('READY', flush=True)
    if cfg.get('hold'):
        sys.stdin.read()
    h.shutdown()
elif cfg['mode'] == 'read':
    size = h.get_size()
    with open(cfg['out'], 'wb') as f:
        off = 0
        while off < size:
            n = min(4 << 20, size - off)
            f.write(h.pread(n, off))
            off += n
    h.shutdown()
`;

/** Runs CLIENT_PY via the first python3 on PATH that has the nbd module (as harness.ts does). */
const PY_LAUNCH = 'for p in $(type -ap python3); do if "$p" -c "import nbd" 2>/dev/null; then exec "$p" "$@"; fi; done; ' +
  'echo "no python3 with the nbd module (python3-libnbd)" >&2; exit 127';

interface Client {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves when the client printed a line matching `re`. */
  waitFor(re: RegExp, ms: number): Promise<void>;
  /** Waits for exit (killing it after `ms`); rejects unless it exited 0. */
  finish(ms: number): Promise<void>;
}

let seq = 0;
async function startClient(work: string, cfg: Record<string, unknown>): Promise<Client> {
  const script = join(work, 'client.py');
  await writeFile(script, CLIENT_PY);
  const cfgFile = join(work, `client-${++seq}.json`);
  await writeFile(cfgFile, JSON.stringify(cfg));
  const child = track(spawn('bash', ['-c', PY_LAUNCH, 'nbd-client', script, cfgFile], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) if (w.re.test(out)) w.resolve();
  });
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const describeIt = (): string => `client ${JSON.stringify(cfg['mode'])}\n--- stdout ---\n${out}\n--- stderr ---\n${err}`;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, ms) => {
      const seen = new Promise<void>((resolve, reject) => {
        if (re.test(out)) resolve();
        waiters.push({ re, resolve });
        void exitOf(child).then(() => (re.test(out) ? resolve() : reject(new Error(`client exited before printing ${re}: ${describeIt()}`))));
      });
      return withTimeout(seen, ms, describeIt);
    },
    finish: async (ms) => {
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      const r = await exitOf(child);
      clearTimeout(t);
      if (r.code !== 0) throw new Error(`client exited with ${r.code ?? r.signal}: ${describeIt()}`);
    },
  };
}

/** One client run to completion. */
async function runClient(work: string, cfg: Record<string, unknown>, ms = 60_000): Promise<string> {
  const c = await startClient(work, cfg);
  c.child.stdin?.end();
  await c.finish(ms);
  return c.stdout();
}

async function probe(work: string, uri: string): Promise<{ connected: boolean; error?: string; readOnly?: boolean }> {
  return JSON.parse(await runClient(work, { mode: 'probe', uri }, 30_000)) as { connected: boolean; error?: string; readOnly?: boolean };
}

async function readExport(work: string, uri: string): Promise<Buffer> {
  const out = join(work, `read-${++seq}.img`);
  await runClient(work, { mode: 'read', uri, out }, 120_000);
  const img = await readFile(out);
  assert.equal(img.length, VOLUME_BYTES, 'the export reads back at its full size');
  return img;
}

/** One step of a write session, with what the client may rely on after a crash. */
type Step = { kind: 'write'; off: number; len: number; fua: boolean } | { kind: 'flush' };

interface Plan {
  readonly ops: Record<string, unknown>[];
  /** The image as far as durable writes go (FUA, or completed before a completed flush). */
  readonly durable: Buffer;
  /** Merged [start, end) ranges that must survive a crash. */
  readonly durableRanges: readonly (readonly [number, number])[];
  /** Merged [start, end) ranges some write touched (durable or not). */
  readonly touchedRanges: readonly (readonly [number, number])[];
}

function merge(ranges: readonly (readonly [number, number])[]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

async function plan(work: string, steps: readonly Step[]): Promise<Plan> {
  const durable = Buffer.alloc(VOLUME_BYTES);
  const durableRanges: [number, number][] = [];
  const touchedRanges: [number, number][] = [];
  const ops: Record<string, unknown>[] = [];
  const pending: { off: number; data: Buffer }[] = [];
  const settle = (off: number, data: Buffer): void => {
    data.copy(durable, off);
    durableRanges.push([off, off + data.length]);
  };
  for (const s of steps) {
    if (s.kind === 'flush') {
      for (const p of pending.splice(0)) settle(p.off, p.data);
      ops.push({ kind: 'flush' });
      continue;
    }
    const data = randomBytes(s.len);
    const file = join(work, `w-${++seq}.bin`);
    await writeFile(file, data);
    ops.push({ kind: 'write', off: s.off, file, fua: s.fua });
    touchedRanges.push([s.off, s.off + s.len]);
    if (s.fua) settle(s.off, data);
    else pending.push({ off: s.off, data });
  }
  return { ops, durable, durableRanges: merge(durableRanges), touchedRanges: merge(touchedRanges) };
}

/** Asserts durable bytes read back identical and never-written bytes read as zeros. */
function checkImage(img: Buffer, p: Plan): void {
  assert.ok(p.durableRanges.length > 0);
  for (const [s, e] of p.durableRanges) {
    assert.ok(img.subarray(s, e).equals(p.durable.subarray(s, e)), `durable bytes [${s}, ${e}) read back different`);
  }
  let zeroFrom = 0;
  for (const [s, e] of [...p.touchedRanges, [VOLUME_BYTES, VOLUME_BYTES] as const]) {
    const got = img.subarray(zeroFrom, s);
    assert.ok(got.equals(Buffer.alloc(got.length)), `never-written bytes [${zeroFrom}, ${s}) are not zero`);
    zeroFrom = e;
  }
}

async function volumeInfo(dataDir: string, name: string): Promise<Record<string, unknown>> {
  const r = await cliResult(['nbd', 'info', name, '--json'], { dataDir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function createVolume(dataDir: string, name: string): Promise<void> {
  const r = await cliResult(['nbd', 'create', name, '--size', '64M'], { dataDir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
}

describe('NBD crash safety and leases (libnbd)', { timeout: 300_000 }, () => {
  let work: string;
  let missing: string | undefined;

  before(async () => {
    missing = await missingTools(['nbdsh']);
    work = await makeTempDir('stowage-nbd-crash-');
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all([...servers].map((s) => s.stop()));
  });

  test('SIGKILL mid-session: FUA and flushed writes survive; the dead lease blocks writers until unlocked', async (t) => {
    if (missing !== undefined) return t.skip(missing);
    const dataDir = await makeTempDir('stowage-nbd-crash-data-');
    await createVolume(dataDir, 'crash');
    const p = await plan(work, [
      { kind: 'write', off: 0, len: 64 * 1024, fua: false },
      { kind: 'write', off: 5 * MiB + 4096, len: 200 * 1024, fua: true },
      { kind: 'flush' },
      { kind: 'write', off: 10 * MiB + 123, len: 70_000, fua: false },
      { kind: 'write', off: 20 * MiB, len: MiB, fua: true },
      { kind: 'write', off: 30 * MiB - 1000, len: 3000, fua: false },
      { kind: 'flush' },
      // a FUA write over part of flushed data, after the last flush
      { kind: 'write', off: 20 * MiB + 5000, len: 2000, fua: true },
      { kind: 'write', off: 40 * MiB + 7, len: 100 * 1024, fua: true },
      // dirty: never flushed, disjoint from the durable bytes (some in the same blocks)
      { kind: 'write', off: 50 * MiB, len: 256 * 1024, fua: false },
      { kind: 'write', off: 10 * MiB + 123 + 70_000 + 1000, len: 5000, fua: false },
      { kind: 'write', off: 21 * MiB + 4096, len: 8192, fua: false },
      { kind: 'write', off: 64 * 1024 + 512, len: 4096, fua: false },
    ]);

    const first = await spawnKillableServer(dataDir);
    const writer = await startClient(work, { mode: 'write', uri: `${first.nbdUrl}/crash`, ops: p.ops, hold: true });
    await writer.waitFor(/READY/, 60_000);
    assert.equal((await volumeInfo(dataDir, 'crash'))['leaseHolder'] !== null, true, 'the serving server holds the lease');

    // Crash with the client still connected and dirty data in the server's cache.
    first.child.kill('SIGKILL');
    const dead = await withTimeout(exitOf(first.child), 15_000, first.output);
    assert.equal(dead.signal, 'SIGKILL');
    writer.child.kill('SIGKILL');
    await withTimeout(exitOf(writer.child), 15_000, () => 'writer did not die');

    const info = await volumeInfo(dataDir, 'crash');
    assert.notEqual(info['leaseHolder'], null, `the dead server's lease is still live: ${JSON.stringify(info)}`);

    const second = await started(startNbdServer(dataDir));
    const refused = await probe(work, `${second.nbdUrl}/crash`);
    assert.equal(refused.connected, false, `a writable connection is refused while the dead lease is live: ${JSON.stringify(refused)}`);
    assert.match(refused.error ?? '', /server policy prevents NBD_OPT_GO/, 'refused with NBD_REP_ERR_POLICY');

    const unlock = await cliResult(['nbd', 'unlock', 'crash'], { dataDir, timeoutMs: 60_000 });
    assert.equal(unlock.code, 0, unlock.stderr);
    assert.match(unlock.stdout, /unlocked volume crash/);
    assert.equal((await volumeInfo(dataDir, 'crash'))['leaseHolder'], null);

    const ok = await probe(work, `${second.nbdUrl}/crash`);
    assert.deepEqual(ok, { connected: true, readOnly: false }, 'after unlock the export is served writable');
    checkImage(await readExport(work, `${second.nbdUrl}/crash`), p);
    assert.doesNotMatch(second.output(), /"level":(50|60)|"level":"(error|fatal)"/, second.output().slice(-4000));
  });

  test('two servers on one data dir: the lease holder excludes the other until it stops', async (t) => {
    if (missing !== undefined) return t.skip(missing);
    const dataDir = await makeTempDir('stowage-nbd-lease-data-');
    await createVolume(dataDir, 'shared');
    const a = await started(startNbdServer(dataDir));
    const b = await started(startNbdServer(dataDir));
    const p = await plan(work, [
      { kind: 'write', off: 4096, len: 100_000, fua: false },
      { kind: 'write', off: 33 * MiB - 10, len: 20, fua: true },
      { kind: 'flush' },
      { kind: 'write', off: 63 * MiB, len: MiB, fua: false },
    ]);

    const writer = await startClient(work, { mode: 'write', uri: `${a.nbdUrl}/shared`, ops: p.ops, hold: true });
    await writer.waitFor(/READY/, 60_000);
    assert.notEqual((await volumeInfo(dataDir, 'shared'))['leaseHolder'], null);

    const refused = await probe(work, `${b.nbdUrl}/shared`);
    assert.equal(refused.connected, false, `server B refuses a writer while A's client holds the lease: ${JSON.stringify(refused)}`);
    assert.match(refused.error ?? '', /server policy prevents NBD_OPT_GO/, 'refused with NBD_REP_ERR_POLICY');

    // A clean disconnect and a graceful stop release the lease (and flush the last write).
    writer.child.stdin?.end();
    await writer.finish(60_000);
    await a.stop();
    servers.delete(a);
    assert.equal((await volumeInfo(dataDir, 'shared'))['leaseHolder'], null, 'a graceful stop frees the lease');

    const ok = await probe(work, `${b.nbdUrl}/shared`);
    assert.deepEqual(ok, { connected: true, readOnly: false }, 'server B now serves the volume writable');
    const img = await readExport(work, `${b.nbdUrl}/shared`);
    // Everything A's client wrote is there: it disconnected cleanly, so even the last write.
    checkImage(img, p);
    const tail = await readFile(p.ops[3]?.['file'] as string);
    assert.ok(img.subarray(63 * MiB).equals(tail), 'the unflushed write was flushed by the clean disconnect');

    // B writes and reads back through its own lease.
    const q = await plan(work, [{ kind: 'write', off: 7 * MiB, len: 4096, fua: true }]);
    await runClient(work, { mode: 'write', uri: `${b.nbdUrl}/shared`, ops: q.ops });
    const img2 = await readExport(work, `${b.nbdUrl}/shared`);
    assert.ok(img2.subarray(7 * MiB, 7 * MiB + 4096).equals(q.durable.subarray(7 * MiB, 7 * MiB + 4096)), 'B wrote through its own lease');
    for (const s of [a, b]) assert.doesNotMatch(s.output(), /"level":(50|60)|"level":"(error|fatal)"/, s.output().slice(-4000));
  });
});
