import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES } from './error-codes.js';
import { ConflictError, NotFoundError, StowageError, hasCode, publicMessage } from './errors.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('every catalog code is documented in docs/ERRORS.md and every documented code exists', async () => {
  const doc = await readFile(resolve(root, 'docs', 'ERRORS.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const catalog = new Set(Object.keys(ERROR_CODES));
  assert.deepEqual([...catalog].filter((c) => !documented.has(c)), [], 'codes missing from docs/ERRORS.md');
  assert.deepEqual([...documented].filter((c) => c !== undefined && !catalog.has(c)), [], 'documented codes not in the catalog');
});

test('errors carry code, class name, cause and exposure', () => {
  const cause = new Error('disk on fire');
  const e = new NotFoundError('REPO_NOT_FOUND', 'repository "x" does not exist', { cause });
  assert.equal(e.code, 'REPO_NOT_FOUND');
  assert.equal(e.name, 'NotFoundError');
  assert.equal(e.cause, cause);
  assert.ok(e instanceof StowageError);
  assert.ok(e instanceof NotFoundError);
  assert.ok(!(e instanceof ConflictError));
  assert.ok(hasCode(e, 'REPO_NOT_FOUND'));
  assert.equal(publicMessage(e), 'repository "x" does not exist');
  const hidden = new StowageError('STORE_IO', 'EIO reading /secret/path');
  assert.equal(publicMessage(hidden), 'the storage backend failed; try again, and tell the operator if it persists (STORE_IO)');
  assert.ok(!publicMessage(hidden).includes('/secret/path'));
  assert.equal(publicMessage(new StowageError('INTERNAL', 'bug at /secret/path')), 'internal error (INTERNAL)');
  assert.equal(publicMessage(new TypeError('x is undefined')), 'internal error');
});
