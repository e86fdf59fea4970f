import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { EtcdMetaStore } from './etcd-meta.js';
import { dropPrefix, etcdTarget, oid, testOptions } from './etcd-meta.test-util.js';

const env = etcdTarget('etcd meta store race tests');

const COUNTER_CHILD = `
const [metaUrl, optionsJson, id, count] = process.argv.slice(2);
const { EtcdMetaStore } = await import(metaUrl);
const meta = await EtcdMetaStore.open(JSON.parse(optionsJson));
const name = 'refs/heads/counter';
await meta.readState(id);
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
let successes = 0;
let conflicts = 0;
const started = performance.now();
while (successes < Number(count)) {
  const state = await meta.readState(id);
  const cur = state.refs.get(name);
  const n = cur === undefined ? 0 : parseInt(cur.oid, 16);
  const expected = cur === undefined ? { kind: 'must-not-exist' } : { kind: 'must-match', oid: cur.oid };
  const res = await meta.transact(id, { refs: [{ name, expected, value: { oid: (n + 1).toString(16).padStart(40, '0') } }] });
  if (res.ok) successes += 1;
  else conflicts += 1;
}
const ms = performance.now() - started;
await meta.close();
process.stdout.write(JSON.stringify({ successes, conflicts, ms }) + '\\n');
`;

interface CounterRun {
  readonly successes: number;
  readonly conflicts: number;
  readonly ms: number;
}

test('4 processes incrementing one ref through etcd lose no update', { skip: env === undefined ? 'no etcd cluster' : false, timeout: 300_000 }, async (t) => {
  if (env === undefined) return;
  const procs = 4;
  const each = 50;
  const options = testOptions(env);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'stowage-etcd-race-'));
  const meta = await EtcdMetaStore.open(options);
  try {
    const script = path.join(dir, 'counter-child.mjs');
    await fsp.writeFile(script, COUNTER_CHILD);
    const { id } = await meta.createRepo({ name: 'counter', head: 'refs/heads/main' });
    const metaUrl = new URL('./etcd-meta.js', import.meta.url).href;
    const children = Array.from({ length: procs }, () => {
      const child = spawn(process.execPath, [script, metaUrl, JSON.stringify(options), id, String(each)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { child, lines, exited };
    });
    // Start together, so the processes really race.
    for (const { lines } of children) assert.equal((await lines.next()).value, 'ready');
    for (const { child } of children) child.stdin.end('go\n');
    const runs = await Promise.all(
      children.map(async ({ lines, exited }) => {
        const report = (await lines.next()).value as string;
        assert.equal(await exited, 0);
        return JSON.parse(report) as CounterRun;
      }),
    );
    const total = runs.reduce((sum, r) => sum + r.successes, 0);
    assert.equal(total, procs * each);
    const state = await meta.readState(id);
    assert.equal(state.refs.get('refs/heads/counter')?.oid, oid(total));
    assert.equal(state.version, 1 + total);
    t.diagnostic(`per process: ${runs.map((r) => `${r.successes} ok / ${r.conflicts} conflicts in ${r.ms.toFixed(0)} ms`).join('; ')}`);
  } finally {
    await meta.close();
    await dropPrefix(options);
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
