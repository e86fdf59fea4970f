/**
 * Enforces DESIGN.md section 2: imports point down only. Reads the TypeScript sources
 * (not the build) and checks every import of every non-test file against the rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// dist/src/core -> project root
const root = resolve(here, '..', '..', '..');
const srcDir = join(root, 'src');

/** Node built-ins that pure format code may use: computation only, no I/O. */
const PURE_BUILTINS = new Set(['node:crypto', 'node:zlib', 'node:buffer', 'node:util']);

interface Rule {
  /** Folder prefix (under src/) the rule applies to. */
  readonly from: string;
  /** Import targets (paths under src/) allowed, as prefixes. */
  readonly allow: readonly string[];
  /** Whether node built-ins beyond PURE_BUILTINS and npm packages are allowed. */
  readonly io: boolean;
}

const RULES: readonly Rule[] = [
  { from: 'core/', allow: ['core/'], io: true },
  { from: 'git/', allow: ['git/', 'core/'], io: false },
  { from: 'storage/', allow: ['storage/', 'core/'], io: true },
  { from: 'meta/', allow: ['meta/', 'storage/object-store.ts', 'storage/key.ts', 'core/'], io: true },
  {
    from: 'repo/',
    allow: ['repo/', 'git/', 'core/', 'storage/object-store.ts', 'meta/meta-store.ts'],
    io: true,
  },
  // service/ sees the Repository contract, whose value types (refs, transactions) come from the
  // meta contract; never a store or an implementation.
  { from: 'service/', allow: ['service/', 'git/', 'core/', 'repo/repository.ts', 'meta/meta-store.ts'], io: false },
  { from: 'frontends/', allow: ['frontends/', 'service/git-service.ts', 'git/pktline/', 'core/'], io: true },
  { from: 'nbd/protocol/', allow: ['nbd/protocol/', 'core/'], io: false },
  { from: 'nbd/server/', allow: ['nbd/', 'core/'], io: true },
  { from: 'nbd/device/', allow: ['nbd/device/', 'nbd/protocol/', 'core/', 'storage/object-store.ts', 'storage/key.ts', 'meta/meta-store.ts'], io: true },
  { from: 'cli/', allow: [''], io: true },
];

async function* walk(dir: string): AsyncGenerator<string> {
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) yield* walk(p);
    else if (ent.name.endsWith('.ts') && !ent.name.endsWith('.test.ts') && !ent.name.endsWith('.d.ts')) yield p;
  }
}

const IMPORT_RE = /^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]/gms;

test('imports follow the layer rules of DESIGN.md', async () => {
  const violations: string[] = [];
  let files = 0;
  for await (const file of walk(srcDir)) {
    files++;
    const rel = relative(srcDir, file).split(sep).join('/');
    const rule = RULES.find((r) => rel.startsWith(r.from));
    if (!rule) {
      violations.push(`${rel}: no layer rule covers this folder`);
      continue;
    }
    // Test support (conformance suites, *.test-util.ts, testing/ folders) is test code: exempt.
    if (rel.endsWith('conformance.ts') || rel.endsWith('.test-util.ts') || rel.includes('/testing/')) continue;
    const text = await readFile(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? '';
      if (spec.startsWith('.')) {
        const target = relative(srcDir, resolve(dirname(file), spec)).split(sep).join('/').replace(/\.js$/, '.ts');
        if (!rule.allow.some((a) => target.startsWith(a))) violations.push(`${rel} imports ${target}`);
      } else if (spec.startsWith('node:')) {
        if (!rule.io && !PURE_BUILTINS.has(spec)) violations.push(`${rel} imports ${spec} (no I/O in this layer)`);
      } else if (!rule.io) {
        violations.push(`${rel} imports package ${spec} (no I/O in this layer)`);
      }
    }
  }
  assert.ok(files > 10, `expected to scan the sources, found ${files} files under ${relative(root, srcDir)}`);
  assert.deepEqual(violations, []);
});
