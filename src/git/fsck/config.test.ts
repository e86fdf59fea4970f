import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../../core/errors.js';
import type { ObjectId } from '../hash/object-id.js';
import { fsckSeverity, parseFsckConfig } from './config.js';
import { hasFsckErrors } from './fsck.js';
import { FSCK_DEFAULT_SEVERITY, fsckMsgIdFromName } from './msg-ids.js';
import { FsckReporter } from './report.js';

const invalid = (e: unknown): boolean => e instanceof ValidationError && e.code === 'CONFIG_INVALID';

describe('fsck configuration', () => {
  test('default severities follow git', () => {
    assert.equal(FSCK_DEFAULT_SEVERITY.treeNotSorted, 'error');
    assert.equal(FSCK_DEFAULT_SEVERITY.hasDotgit, 'warn');
    assert.equal(FSCK_DEFAULT_SEVERITY.badFilemode, 'info');
    assert.equal(FSCK_DEFAULT_SEVERITY.extraHeaderEntry, 'ignore');
    assert.equal(FSCK_DEFAULT_SEVERITY.nulInHeader, 'error');
    assert.equal(fsckMsgIdFromName('HASDOTGIT'), 'hasDotgit');
    assert.equal(fsckMsgIdFromName('nope'), undefined);
  });

  test('parses ids in any case, with or without a config prefix', () => {
    const c = parseFsckConfig({ HasDotDot: 'error', 'receive.fsck.badTimezone': 'warn', 'fsck.missingEmail': 'IGNORE' });
    assert.deepEqual({ ...c }, { hasDotdot: 'error', badTimezone: 'warn', missingEmail: 'ignore' });
    assert.equal(fsckSeverity('hasDotdot', c), 'error');
    assert.equal(fsckSeverity('hasDot', c), 'warn');
    assert.equal(fsckSeverity('hasDotgit', { HASDOTGIT: 'error' }), 'error', 'hand-built configs match case-insensitively too');
  });

  test('rejects unknown ids and values, and demoting fatal ids', () => {
    assert.throws(() => parseFsckConfig({ noSuchThing: 'warn' }), invalid);
    assert.throws(() => parseFsckConfig({ hasDotgit: 'info' }), invalid);
    assert.throws(() => parseFsckConfig({ hasDotgit: 'fatal' }), invalid);
    assert.throws(() => parseFsckConfig({ nulInHeader: 'warn' }), invalid);
    assert.deepEqual({ ...parseFsckConfig({ nulInHeader: 'error' }) }, { nulInHeader: 'error' });
  });

  test('the reporter drops ignored ids, shows info as warnings and says when to stop', () => {
    const r = new FsckReporter('1'.repeat(40) as ObjectId, parseFsckConfig({ hasDot: 'ignore' }));
    assert.equal(r.report('hasDot', 'x'), false);
    assert.equal(r.report('badFilemode', 'y'), false);
    assert.equal(r.report('badDate', 'z'), true);
    assert.deepEqual(
      r.messages.map((m) => `${m.id}:${m.severity}`),
      ['badFilemode:warn', 'badDate:error'],
    );
    assert.equal(hasFsckErrors(r.messages), true);
    assert.equal(hasFsckErrors(r.messages.slice(0, 1)), false);
  });
});
