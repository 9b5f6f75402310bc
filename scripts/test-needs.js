// Run before `npm test` (and `npm run test:e2e`): checks that the Debian packages the tests need,
// as test/needs.txt lists them, are installed. As root, installs the missing ones with apt-get;
// otherwise stops at once with one line naming what to install. A test is never skipped for want
// of a package.
//
//   node scripts/test-needs.js [SUITE…] [--list FILE] [--dry-run]
//
// SUITE: "test" (default), "e2e". --dry-run says what it would install and installs nothing.

import { spawnSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let list = join(root, 'test', 'needs.txt');
let dryRun = false;
const suites = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--list') list = args[++i] ?? '';
  else if (args[i] === '--dry-run') dryRun = true;
  else suites.push(args[i]);
}
if (suites.length === 0) suites.push('test');

function stop(line) {
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

/** [{ pkg, file, suite }] from the list: one need a line, # comments. */
function needs() {
  let text;
  try {
    text = readFileSync(list, 'utf8');
  } catch {
    stop(`test-needs: cannot read ${list}`);
  }
  const out = [];
  for (const [n, line] of text.split('\n').entries()) {
    const t = line.replace(/#.*/, '').trim();
    if (t === '') continue;
    const [pkg, file, suite, ...rest] = t.split(/\s+/);
    if (!pkg || !file || !suite || rest.length > 0) stop(`test-needs: ${list} line ${n + 1}: want "package file suite"`);
    out.push({ pkg, file, suite });
  }
  return out;
}

function present(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const missing = () => needs().filter((x) => suites.includes(x.suite) && !present(x.file));
const want = missing();
if (want.length === 0) process.exit(0);
const pkgs = [...new Set(want.map((x) => x.pkg))];
const what = `${pkgs.join(' ')} (${want.map((x) => x.file).join(', ')} missing)`;
if (process.getuid?.() !== 0) stop(`vouch tests need Debian package(s) ${what}: run as root: apt-get install ${pkgs.join(' ')}`);
if (dryRun) {
  process.stdout.write(`test-needs: would install ${pkgs.join(' ')} with apt-get\n`);
  process.exit(0);
}
process.stderr.write(`test-needs: installing ${pkgs.join(' ')} with apt-get\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const cmd of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
  const r = spawnSync('apt-get', cmd, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.error || r.status !== 0) stop(`vouch tests need Debian package(s) ${what}: apt-get ${cmd[0]} failed; install them by hand`);
}
const still = missing();
if (still.length > 0) stop(`vouch tests need ${still.map((x) => x.file).join(', ')}: apt-get installed ${pkgs.join(' ')} but it is still missing`);
