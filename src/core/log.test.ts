import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, newRequestId, requestLogger } from './log.js';

function capture(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}

test('JSON lines with a string level and no pid/hostname', () => {
  const out = capture();
  const log = createLogger({ level: 'info', destination: out });
  log.info({ service: 'git', url: 'git://127.0.0.1:1' }, 'listening');
  log.debug('hidden');
  assert.equal(out.lines.length, 1);
  const obj = JSON.parse(out.lines[0] as string) as Record<string, unknown>;
  assert.equal(obj['msg'], 'listening');
  assert.equal(obj['service'], 'git');
  assert.equal(obj['url'], 'git://127.0.0.1:1');
  assert.equal(obj['level'], 'info');
  assert.equal(typeof obj['time'], 'string');
  assert.equal(obj['pid'], undefined);
  assert.equal(obj['hostname'], undefined);
});

test('request loggers carry reqId; ids are short and distinct', () => {
  const out = capture();
  const log = createLogger({ level: 'info', destination: out });
  const id = newRequestId();
  assert.match(id, /^[0-9a-f]{8}$/);
  assert.notEqual(id, newRequestId());
  requestLogger(log, id, { remote: '127.0.0.1:5' }).info('hello');
  const obj = JSON.parse(out.lines[0] as string) as Record<string, unknown>;
  assert.equal(obj['reqId'], id);
  assert.equal(obj['remote'], '127.0.0.1:5');
});

test('credentials in common places are redacted', () => {
  const out = capture();
  const log = createLogger({ level: 'info', destination: out });
  log.info({ headers: { authorization: 'Basic c2VjcmV0', host: 'x' }, password: 'hunter2', auth: { token: 't0ken' } }, 'req');
  const line = out.lines[0] as string;
  assert.ok(!line.includes('c2VjcmV0') && !line.includes('hunter2') && !line.includes('t0ken'), line);
  assert.ok(line.includes('[redacted]'));
});

test('pretty mode prints one readable line', () => {
  const out = capture();
  const log = createLogger({ level: 'info', pretty: true, destination: out });
  log.warn({ code: 'X' }, 'careful');
  assert.match(out.lines[0] as string, /WARN +careful code=X\n$/);
});
