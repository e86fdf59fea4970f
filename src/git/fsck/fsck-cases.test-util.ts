/**
 * Test support (not a test): runs fsck cases through our checks and, where git can read the
 * object at all, through `git fsck` on the same bytes, and compares the findings.
 */
import assert from 'node:assert/strict';
import { hashObject, type ObjectId } from '../hash/object-id.js';
import { gitFsck, gitHashObject, tempRepo } from '../object/git-oracle.test-util.js';
import type { ObjectType } from '../object/object-type.js';
import { parseFsckConfig } from './config.js';
import { fsckObject, fsckSpecialBlob, type FsckMessage } from './fsck.js';

/** One hand-built object and what fsck must say about it. */
export interface FsckCase {
  readonly name: string;
  readonly type: ObjectType;
  readonly data: Uint8Array;
  /** Expected findings as "id:severity", in any order. */
  readonly expect: readonly string[];
  /** Severity overrides (git's fsck.<id> settings). */
  readonly config?: Record<string, string>;
  /** Whether git 2.39 can parse the object (git fsck skips the checks on objects it cannot parse). */
  readonly oracle: boolean;
  /** Other objects git needs in the repository (e.g. a .gitmodules blob for a tree case). */
  readonly extra?: readonly { type: ObjectType; data: Uint8Array }[];
}

/** Ids the installed git (2.39) does not know yet: left out of the oracle comparison. */
const NEWER_THAN_ORACLE = new Set(['largePathname', 'badGpgsig', 'badHeaderContinuation']);

function key(m: { id: string; severity: string }): string {
  return `${m.id}:${m.severity}`;
}

/** What our fsck says about an object plus the special blobs it names among `extra`. */
export function ourFindings(c: FsckCase): Map<string, string[]> {
  const config = parseFsckConfig(c.config ?? {});
  const oid = hashObject(c.type, c.data);
  const out = new Map<string, string[]>();
  const add = (id: string, ms: FsckMessage[]): void => {
    out.set(id, [...(out.get(id) ?? []), ...ms.map(key)].sort());
  };
  const res = fsckObject(oid, c.type, c.data, config);
  add(oid, res.messages);
  for (const e of c.extra ?? []) {
    const eid = hashObject(e.type, e.data);
    const r = fsckObject(eid, e.type, e.data, config);
    add(eid, r.messages);
    for (const s of r.specialBlobs) {
      const blob = [c, ...(c.extra ?? [])].find((x) => hashObject(x.type, x.data) === s.oid);
      if (blob !== undefined) add(s.oid, fsckSpecialBlob(s.oid, s.kind, blob.data, config));
    }
  }
  for (const s of res.specialBlobs) {
    const blob = c.extra?.find((x) => hashObject(x.type, x.data) === s.oid);
    if (blob !== undefined) add(s.oid, fsckSpecialBlob(s.oid, s.kind, blob.data, config));
  }
  return out;
}

/** Asserts each case's findings, then compares with `git fsck` (one repository per config). */
export function runFsckCases(cases: readonly FsckCase[]): void {
  for (const c of cases) {
    const oid = hashObject(c.type, c.data);
    const all = [...ourFindings(c).values()].flat().sort();
    assert.deepEqual(all, [...c.expect].sort(), `${c.name} (${oid})`);
  }
  const groups = new Map<string, FsckCase[]>();
  for (const c of cases) {
    if (!c.oracle) continue;
    const k = JSON.stringify(c.config ?? {});
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  for (const [configJson, group] of groups) {
    const repo = tempRepo();
    try {
      const expected = new Map<string, string[]>();
      for (const c of group) {
        for (const o of [c, ...(c.extra ?? [])]) gitHashObject(repo.dir, o.type, o.data);
        for (const [id, ms] of ourFindings(c)) {
          expected.set(id, ms.filter((m) => !NEWER_THAN_ORACLE.has(m.split(':')[0] as string)));
        }
      }
      const got = new Map<string, string[]>();
      for (const line of gitFsck(repo.dir, JSON.parse(configJson) as Record<string, string>)) {
        if (!expected.has(line.oid)) continue;
        got.set(line.oid, [...(got.get(line.oid) ?? []), key(line)].sort());
      }
      for (const [id, ms] of expected) {
        const name = group.find((c) => hashObject(c.type, c.data) === id)?.name ?? `extra object of a case`;
        assert.deepEqual(got.get(id) ?? [], ms, `git fsck disagrees on ${name} (${id as ObjectId})`);
      }
    } finally {
      repo.dispose();
    }
  }
}
