// `npm test` on a fresh machine: the Debian packages the tests need are checked before ava runs
// (scripts/test-needs.js, from npm's pretest hook), installed when missing and root, and otherwise
// named in one line that stops the run. Nothing is skipped silently.

import test from 'ava';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const SCRIPT = join(ROOT, 'scripts', 'test-needs.js');

function listFile(lines: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-needs-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'needs.txt');
  writeFileSync(path, lines, { mode: 0o644 });
  return path;
}

function run(args: readonly string[], asUser?: number): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [SCRIPT, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    ...(asUser !== undefined ? { uid: asUser, gid: asUser } : {}),
    timeout: 30_000,
  });
}

const root = process.getuid?.() === 0;
/** A user who is not root: nobody when the tests run as root, else the tests' own user. */
const notRoot = root ? 65534 : undefined;

test('npm test checks the test needs before ava, and test:e2e its own', (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.is(pkg.scripts['pretest'], 'node scripts/test-needs.js test');
  t.is(pkg.scripts['pretest:e2e'], 'node scripts/test-needs.js e2e');
  t.regex(readFileSync(join(ROOT, '.ci', 'run'), 'utf8'), /^node scripts\/test-needs\.js test e2e$/m);
});

test('the needs list names the chromium the browser tests launch', (t) => {
  const list = readFileSync(join(ROOT, 'test', 'needs.txt'), 'utf8');
  const browser = readFileSync(join(ROOT, 'test', 'chromium.ts'), 'utf8');
  const path = /executablePath: '([^']+)'/.exec(browser)?.[1];
  t.is(path, '/usr/bin/chromium');
  t.regex(list, /^chromium\s+\/usr\/bin\/chromium\s+test$/m);
});

test('with everything present the check passes silently', (t) => {
  const r = run(['test', '--list', listFile(`sh /bin/sh test\n# a comment\n`)]);
  t.is(r.status, 0);
  t.is(r.stdout + r.stderr, '');
});

test('a package missing for a user who is not root stops the run with one line naming it', (t) => {
  const list = listFile(`sh /bin/sh test\nno-such-pkg /nonexistent/bin/thing test\nother /nonexistent/other e2e\n`);
  const r = run(['test', '--list', list], notRoot);
  t.is(r.status, 1);
  t.is(r.stdout, '');
  t.is(r.stderr.split('\n').filter((l) => l !== '').length, 1);
  t.regex(r.stderr, /no-such-pkg/);
  t.regex(r.stderr, /apt-get install no-such-pkg\n$/);
  // Only the suite asked for: the e2e need is not named.
  t.notRegex(r.stderr, /other/);
});

test('as root a missing package is installed with apt-get (dry run), otherwise named', (t) => {
  const list = listFile(`no-such-pkg /nonexistent/bin/thing test\n`);
  const r = run(['test', '--list', list, '--dry-run']);
  if (root) {
    t.is(r.status, 0);
    t.is(r.stdout, 'test-needs: would install no-such-pkg with apt-get\n');
  } else {
    t.is(r.status, 1);
    t.regex(r.stderr, /apt-get install no-such-pkg/);
  }
});
