// The home's files: private whatever the umask (the home 0700, every file in it 0600, the store's
// WAL and SHM too), `vouch fsck` making wider ones private again, and the store's files bounded.

import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db } from '../agent/store/db.js';
import { JOURNAL_SIZE_LIMIT, Store } from '../agent/store/store.js';
import { CLI, holdInput, message, qmailEnv, type RunResult } from './helpers.js';

/** The built vouch run under a given umask (as a shell sets it before exec). */
function vouchUmask(umask: string, args: readonly string[], env: NodeJS.ProcessEnv, input: string | Buffer = ''): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `umask ${umask}; exec "$0" "$@"`, process.execPath, CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.end(input);
  });
}

/** Every path under `dir` (and dir itself) with its permission bits, symbolic links left out. */
function modes(dir: string, rel = '.'): { path: string; dir: boolean; mode: number }[] {
  const st = lstatSync(dir);
  if (st.isSymbolicLink()) return [];
  const me = { path: rel, dir: st.isDirectory(), mode: st.mode & 0o777 };
  if (!st.isDirectory()) return [me];
  return [me, ...readdirSync(dir).flatMap((n) => modes(join(dir, n), rel === '.' ? n : `${rel}/${n}`))];
}

function wider(dir: string): string[] {
  return modes(dir)
    .filter((m) => m.mode !== (m.dir ? 0o700 : 0o600))
    .map((m) => `${m.path} ${m.mode.toString(8)}`);
}

for (const umask of ['000', '022']) {
  test(`under umask ${umask} the home is 0700 and every file in it 0600: store, WAL, SHM, caches, journal, token, secret`, async (t) => {
    const base = mkdtempSync(join(tmpdir(), 'vouch-umask-'));
    // A folder that was there before, as --home may name one: 0755.
    const dir = join(base, 'vouch');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    const user = join(base, 'user');
    const env = { HOME: user, USER: 'alice' };
    const r = await vouchUmask(umask, ['--home', dir, 'init', '--address', 'alice@example.org'], env);
    t.is(r.code, 0, r.stderr);
    const home = { dir, user, maildir: join(user, 'Maildir'), env: { ...env, VOUCH_HOME: dir } };
    // Every kind of file the home gets: a whitelisted delivery (journal, config.cache), a held one
    // (the store's WAL and SHM, left by a process that exits with the store open), a list change
    // (lists.map), a file-transport challenge (outbox/).
    t.is((await vouchUmask(umask, ['whitelist', 'add', 'friend@example.com'], home.env)).code, 0);
    t.is((await vouchUmask(umask, ['deliver'], qmailEnv(home, 'friend@example.com'), message())).code, 99);
    t.is((await vouchUmask(umask, ['deliver'], qmailEnv(home, 'stranger@example.net'), message())).code, 99);
    const names = readdirSync(dir).sort();
    for (const n of ['config.cache', 'config.toml', 'delivered', 'lists.map', 'secret', 'vouch.db', 'vouch.db-shm', 'vouch.db-wal', 'web-token']) t.true(names.includes(n), `${n} in ${names.join(' ')}`);
    t.deepEqual(wider(dir), []);
    t.true(readdirSync(join(dir, 'delivered')).length > 0);
  });
}

test('vouch fsck reports files and folders of the home wider than 0600/0700 and makes them private', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'vouch-fsck-modes-'));
  const dir = join(base, 'vouch');
  const env = { HOME: join(base, 'user'), USER: 'alice', VOUCH_HOME: dir };
  t.is((await vouchUmask('022', ['init', '--address', 'alice@example.org'], env)).code, 0);
  const home = { dir, user: env.HOME, maildir: join(env.HOME, 'Maildir'), env };
  t.is((await vouchUmask('022', ['whitelist', 'add', 'friend@example.com'], env)).code, 0);
  t.is((await vouchUmask('022', ['deliver'], qmailEnv(home, 'friend@example.com'), message())).code, 99);
  t.is((await vouchUmask('022', ['deliver'], qmailEnv(home, 'stranger@example.net'), message())).code, 99);
  // As an older vouch (or a careless hand) left them.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'vouch.db'), 0o644);
  chmodSync(join(dir, 'web-token'), 0o640);
  const [day] = readdirSync(join(dir, 'delivered'));
  chmodSync(join(dir, 'delivered', day ?? ''), 0o755);
  const r = await vouchUmask('022', ['fsck'], env);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /permissions: \d+ made private \(\. 755, /);
  t.regex(r.stdout, /vouch\.db 644/);
  t.regex(r.stdout, /web-token 640/);
  t.regex(r.stdout, new RegExp(`delivered/${day ?? ''} 755`));
  t.deepEqual(wider(dir), []);
  t.regex((await vouchUmask('022', ['fsck'], env)).stdout, /permissions: private\n$/);
});

test('the WAL is bounded: it shrinks once a held-off checkpoint gets through, and vouch expire empties it; fsck reports both sizes', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'vouch-wal-'));
  const dir = join(base, 'vouch');
  const env = { HOME: join(base, 'user'), USER: 'alice', VOUCH_HOME: dir };
  t.is((await vouchUmask('077', ['init', '--address', 'alice@example.org'], env)).code, 0);
  const path = join(dir, 'vouch.db');
  const wal = () => statSync(`${path}-wal`).size;
  const store = await Store.open(path);
  t.teardown(() => store.close());
  // A reader (as `vouch web` or a CLI command may be) holds every checkpoint off during a burst.
  const reader = await Db.open(path);
  await reader.exec('BEGIN');
  await reader.get('SELECT count(*) FROM messages');
  const body = Buffer.alloc(100_000, 0x61);
  const at = Date.UTC(2026, 10, 1);
  for (let i = 0; i < 150; i++) {
    await store.hold(holdInput({ digest: `d${i}`, sender: `s${i}@example.com`, senderKey: `s${i}@example.com`, received: at + i, raw: Buffer.concat([Buffer.from(`Subject: ${i}\n\n`), body]) }));
  }
  const burst = wal();
  t.true(burst > 3 * JOURNAL_SIZE_LIMIT, `the burst made a WAL of ${burst} bytes`);
  await reader.exec('COMMIT');
  await reader.close();
  // The next writes checkpoint (automatically) and start the WAL again: its file is cut back.
  for (let i = 150; i < 1200; i++) await store.hold(holdInput({ digest: `d${i}`, sender: `s${i}@example.com`, senderKey: `s${i}@example.com`, received: at + i, raw: Buffer.from(`Subject: ${i}\n\nsmall\n`) }));
  t.true(wal() <= JOURNAL_SIZE_LIMIT + 1_100_000, `after the burst the WAL is ${wal()} bytes`);
  // vouch expire, while this connection stays open (so closing cannot be what empties it).
  const r = await vouchUmask('077', ['expire'], env);
  t.is(r.code, 0, r.stderr);
  t.is(wal(), 0);
  const f = await vouchUmask('077', ['fsck'], env);
  t.regex(f.stdout, /store: ok \(vouch\.db \d+\.\dM, vouch\.db-wal \d+(\.\d)?[BK]\)/);
});
