// `vouch fsck`: stale tmp/ files go, new/ and cur/ are never touched, an interrupted release is
// finished, and a damaged store makes it exit non-zero.

import test from 'ava';
import { linkSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../agent/store/store.js';
import { deliverQmail, makeHome, maildirFiles, message, vouch, type TestHome } from './helpers.js';
import { runCli } from './stress/run.js';

const HOUR = 3_600_000;

async function home(): Promise<TestHome> {
  return makeHome({ config: { challenge: { enabled: false } } });
}

function aged(path: string, hours: number, bytes = 'partial'): void {
  writeFileSync(path, bytes);
  const t = new Date(Date.now() - hours * HOUR);
  utimesSync(path, t, t);
}

test('fsck removes tmp files older than 36 hours in every folder and keeps fresh ones and new/', async (t) => {
  const h = await home();
  mkdirSync(join(h.maildir, '.Junk', 'tmp'), { recursive: true });
  aged(join(h.maildir, 'tmp', 'old.M1P1.host'), 37);
  aged(join(h.maildir, 'tmp', 'young.M1P2.host'), 35);
  aged(join(h.maildir, '.Junk', 'tmp', 'old.M1P3.host'), 48);
  aged(join(h.maildir, 'new', 'ancient.M1P4.host'), 24 * 365);
  const r = await vouch(['fsck'], { env: h.env });
  t.is(r.code, 0);
  t.regex(r.stdout, /^maildir: 2 stale tmp file\(s\) removed; releases: 0 interrupted release\(s\) finished; challenges: 0 abandoned challenge\(s\) sent; store: ok \(vouch\.db \d+(\.\d)?[BKM], vouch\.db-wal \d+(\.\d)?[BKM]\); lists map: rewritten; permissions: private\n$/);
  t.deepEqual(readdirSync(join(h.maildir, 'tmp')), ['young.M1P2.host']);
  t.deepEqual(readdirSync(join(h.maildir, '.Junk', 'tmp')), []);
  t.deepEqual(readdirSync(join(h.maildir, 'new')), ['ancient.M1P4.host']);
});

test('fsck removes a tmp file that is already linked into new/ but keeps a fresh one still being written', async (t) => {
  const h = await home();
  writeFileSync(join(h.maildir, 'new', 'done.M1P1.host'), 'whole message\n');
  linkSync(join(h.maildir, 'new', 'done.M1P1.host'), join(h.maildir, 'tmp', 'tmp.M1P9.host'));
  writeFileSync(join(h.maildir, 'tmp', 'other.M1P2.host'), 'another writer, not linked yet');
  const r = await vouch(['fsck'], { env: h.env });
  t.is(r.code, 0);
  t.regex(r.stdout, /maildir: 1 stale tmp/);
  t.deepEqual(readdirSync(join(h.maildir, 'tmp')), ['other.M1P2.host']);
  t.is(readFileSync(join(h.maildir, 'new', 'done.M1P1.host'), 'utf8'), 'whole message\n');
});

for (const point of ['maildir:after-tmp-write', 'release:after-maildir']) {
  test(`fsck finishes a release killed at ${point}: the message is in new/ once and no longer held`, async (t) => {
    const h = await home();
    const msg = message({ from: 'carol@example.net', subject: 'half released' });
    const held = await deliverQmail(h, 'carol@example.net', msg);
    const id = /held ([a-z2-7]{13})/.exec(held.stdout)?.[1] ?? '';
    const killed = await runCli(['pending', 'release', id], { env: { ...h.env, VOUCH_FAILPOINT: point } });
    t.is(killed.signal, 'SIGKILL');
    const r = await vouch(['fsck'], { env: h.env });
    t.is(r.code, 0);
    t.regex(r.stdout, /releases: 1 interrupted release\(s\) finished; challenges: 0 abandoned challenge\(s\) sent; store: ok \(/);
    const files = maildirFiles(h.maildir);
    t.is(files.length, 1);
    t.is(files[0]?.bytes.toString(), `Return-Path: <carol@example.net>\nDelivered-To: alice@example.org\n${msg}`);
    const store = await Store.open(join(h.dir, 'vouch.db'));
    t.is((await store.get(id))?.state, 'released');
    await store.close();
    const again = await vouch(['fsck'], { env: h.env });
    t.regex(again.stdout, /releases: 0 interrupted/);
    t.is(maildirFiles(h.maildir).length, 1);
  });
}

test('fsck exits non-zero and names the damage when the store fails its integrity check', async (t) => {
  const h = await home();
  for (let i = 0; i < 3; i++) await deliverQmail(h, `x${i}@example.com`, message({ subject: `s${i}` }));
  const db = join(h.dir, 'vouch.db');
  const store = await Store.open(db);
  const root = (await store.db.get<{ rootpage: number }>(`SELECT rootpage FROM sqlite_master WHERE name = 'messages'`))?.rootpage ?? 0;
  await store.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  await store.close();
  // Change one sender key inside the table page only: the index no longer agrees with the table.
  const bytes = readFileSync(db);
  const page = bytes.subarray((root - 1) * 4096, root * 4096);
  for (let at = page.indexOf('x1@example.com'); at >= 0; at = page.indexOf('x1@example.com')) page.write('y', at);
  writeFileSync(db, bytes);
  const r = await vouch(['fsck'], { env: h.env });
  t.is(r.code, 1);
  t.regex(r.stdout, /store: damaged: .*missing from index/);
});

test('fsck exits non-zero when the store is not a database at all', async (t) => {
  const h = await home();
  writeFileSync(join(h.dir, 'vouch.db'), Buffer.alloc(8192, 0x5a));
  const r = await vouch(['fsck'], { env: h.env });
  t.not(r.code, 0);
  t.regex(r.stderr, /pending store/);
});
