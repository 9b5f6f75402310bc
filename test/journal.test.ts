// The delivery journal (delivered/<day>/<key>) and the whitelisted fast path it serves: one
// delivery per message across retries, without the store, and counted per day.
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claim, countByDay, dayOf, deliveryKey, findClaim, JOURNAL_DIR, prune } from '../agent/store/journal.js';
import { MAP_FILE, STALE_DIR } from '../agent/store/listmap.js';
import { Store } from '../agent/store/store.js';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, vouch, type TestHome } from './helpers.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 23, 12);

test('the delivery key changes with the sender, the recipient and any byte, and not with alignment', (t) => {
  const msg = Buffer.from('Subject: x\n\nbody of the message, long enough to have whole words\n');
  const k = deliveryKey('bob@example.com', 'alice@example.org', msg);
  t.regex(k, new RegExp(`^${msg.length}-[0-9a-f]{16}$`));
  t.is(deliveryKey('bob@example.com', 'alice@example.org', Buffer.from(msg)), k);
  t.not(deliveryKey('bob@example.net', 'alice@example.org', msg), k);
  t.not(deliveryKey('bob@example.com', 'alice-x@example.org', msg), k);
  // Sender and recipient cannot trade characters with each other.
  t.not(deliveryKey('bob@example.co', 'malice@example.org', msg), k);
  for (let i = 0; i < msg.length; i++) {
    const m = Buffer.from(msg);
    m[i] = (m[i] ?? 0) ^ 1;
    t.not(deliveryKey('bob@example.com', 'alice@example.org', m), k, `byte ${i}`);
  }
  // The same bytes at an odd offset inside a larger buffer (a Postfix From_ line cut off).
  const padded = Buffer.concat([Buffer.from('xyz'), msg]);
  t.is(deliveryKey('bob@example.com', 'alice@example.org', padded.subarray(3)), k);
});

test('the day of a time is the UTC date, as Date would say it', (t) => {
  for (const ms of [0, -1, 86_399_999, 86_400_000, Date.UTC(2000, 1, 29, 23, 59), Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2100, 2, 1), NOW]) {
    t.is(dayOf(ms), new Date(ms).toISOString().slice(0, 10), String(ms));
  }
  for (let ms = Date.UTC(1999, 0, 1); ms < Date.UTC(2101, 0, 1); ms += 86_400_000 * 7 + 3_600_000) {
    if (dayOf(ms) !== new Date(ms).toISOString().slice(0, 10)) t.fail(String(ms));
  }
  t.pass();
});

test('a claim is fresh once, found again for a week, then forgotten; prune removes old days', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'vouch-journal-'));
  t.deepEqual(claim(home, 'k1', 'name-a', NOW), { name: 'name-a', fresh: true });
  t.deepEqual(claim(home, 'k1', 'name-b', NOW + 1000), { name: 'name-a', fresh: false });
  t.is(findClaim(home, 'k1', NOW + 7 * DAY), 'name-a');
  t.is(findClaim(home, 'k1', NOW + 8 * DAY), undefined);
  // An empty claim (a crash between creating and filling it) is claimed anew.
  writeFileSync(join(home, JOURNAL_DIR, dayOf(NOW), 'k2'), '');
  t.deepEqual(claim(home, 'k2', 'name-c', NOW), { name: 'name-c', fresh: true });
  claim(home, 'k3', 'name-d', NOW + DAY);
  t.deepEqual(countByDay(home, dayOf(NOW)), [
    { day: dayOf(NOW), n: 2 },
    { day: dayOf(NOW + DAY), n: 1 },
  ]);
  t.deepEqual(countByDay(home, dayOf(NOW + DAY)), [{ day: dayOf(NOW + DAY), n: 1 }]);
  t.is(prune(home, dayOf(NOW + DAY)), 1);
  t.false(existsSync(join(home, JOURNAL_DIR, dayOf(NOW))));
  t.true(existsSync(join(home, JOURNAL_DIR, dayOf(NOW + DAY), 'k3')));
});

async function whitelisted(): Promise<TestHome> {
  const h = await makeHome({ config: { challenge: { enabled: false } } });
  const r = await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  if (r.code !== 0) throw new Error(r.stderr);
  return h;
}

test('a whitelisted delivery reads the lists map and never opens the store', async (t) => {
  const h = await whitelisted();
  t.true(existsSync(join(h.dir, MAP_FILE)));
  // A store nobody could open: the whitelisted path does not notice, the held path fails safe.
  const db = join(h.dir, 'vouch.db');
  const saved = readFileSync(db);
  writeFileSync(db, Buffer.alloc(4096, 0x42));
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
  const ok = await deliverQmail(h, 'bob@example.com', message());
  t.is(ok.code, 99);
  t.regex(ok.stdout, /^vouch: delivered: whitelisted sender bob@example.com/);
  t.is(maildirFiles(h.maildir).length, 1);
  const held = await deliverQmail(h, 'carol@example.net', message());
  t.is(held.code, 111);
  writeFileSync(db, saved);
});

test('a list change is seen by the next delivery; a stale map is not believed', async (t) => {
  const h = await whitelisted();
  await vouch(['whitelist', 'add', 'carol@example.net'], { env: h.env });
  t.regex((await deliverQmail(h, 'carol@example.net', message())).stdout, /delivered: whitelisted/);
  await vouch(['whitelist', 'remove', 'carol@example.net'], { env: h.env });
  t.regex((await deliverQmail(h, 'carol@example.net', message())).stdout, /held [a-z2-7]{13}: unknown sender/);
  // A map that disagrees with the store, marked stale by a writer still at work (this test's own
  // pid): the delivery asks the store, and leaves the map to that writer.
  writeFileSync(join(h.dir, MAP_FILE), readFileSync(join(h.dir, MAP_FILE)).fill(0, 40));
  mkdirSync(join(h.dir, STALE_DIR), { recursive: true });
  writeFileSync(join(h.dir, STALE_DIR, `${process.pid}.1.1`), '');
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /delivered: whitelisted/);
  t.deepEqual(readdirSync(join(h.dir, STALE_DIR)), [`${process.pid}.1.1`]);
  // The writer is gone (a pid that does not exist): the next delivery through the store repairs it.
  rmSync(join(h.dir, STALE_DIR, `${process.pid}.1.1`));
  writeFileSync(join(h.dir, STALE_DIR, '999999999.1.1'), '');
  t.regex((await deliverQmail(h, 'dave@example.net', message())).stdout, /held/);
  t.deepEqual(readdirSync(join(h.dir, STALE_DIR)), []);
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /delivered: whitelisted/);
});

test('a deleted lists map is rebuilt by the next delivery that needs the store', async (t) => {
  const h = await whitelisted();
  rmSync(join(h.dir, MAP_FILE));
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /delivered: whitelisted/);
  t.true(existsSync(join(h.dir, MAP_FILE)));
});

test('a journal key that names another message does not stop this one from being delivered', async (t) => {
  const h = await whitelisted();
  const first = message({ subject: 'first' });
  t.is((await deliverQmail(h, 'bob@example.com', first)).code, 99);
  const [delivered] = maildirFiles(h.maildir);
  t.truthy(delivered);
  // Forge a collision: the second message's key claimed for the first message's file.
  const second = message({ subject: 'second' });
  const key = deliveryKey('bob@example.com', 'alice@example.org', Buffer.from(second));
  // The day folder the first delivery wrote (not today's by the test's clock: midnight may have passed).
  const [firstDay] = readdirSync(join(h.dir, JOURNAL_DIR));
  writeFileSync(join(h.dir, JOURNAL_DIR, firstDay ?? '', key), `${delivered?.name ?? ''}\n`);
  t.is((await deliverQmail(h, 'bob@example.com', second)).code, 99);
  const files = maildirFiles(h.maildir);
  t.is(files.length, 2);
  t.true(files.some((f) => f.bytes.toString().includes('Subject: second')));
  // And the real retry of the second message is still written once.
  t.is((await deliverQmail(h, 'bob@example.com', second)).code, 99);
  t.is(maildirFiles(h.maildir).length, 2);
});

test('a claimed message the user already moved to cur/ is not delivered again', async (t) => {
  const h = await whitelisted();
  const msg = message();
  await deliverQmail(h, 'bob@example.com', msg);
  const [f] = maildirFiles(h.maildir);
  mkdirSync(join(h.maildir, 'cur'), { recursive: true });
  writeFileSync(join(h.maildir, 'cur', `${f?.name ?? ''}:2,S`), f?.bytes ?? '');
  rmSync(join(h.maildir, 'new', f?.name ?? ''));
  t.is((await deliverQmail(h, 'bob@example.com', msg)).code, 99);
  t.deepEqual(maildirFiles(h.maildir), []);
});

test('the activity counts whitelisted deliveries from the journal', async (t) => {
  const h = await whitelisted();
  const since = dayOf(Date.now());
  await deliverQmail(h, 'bob@example.com', message());
  await deliverQmail(h, 'bob@example.com', message());
  await deliverQmail(h, 'carol@example.net', message());
  t.is((await pendingList(h)).length, 1);
  const store = await Store.open(join(h.dir, 'vouch.db'));
  t.teardown(() => store.close());
  // Summed over the days since the test began: the deliveries may straddle midnight.
  const rows = await store.activity(since);
  const sum = (kind: string) => rows.filter((r) => r.kind === kind).reduce((n, r) => n + r.n, 0);
  t.is(sum('delivered'), 2);
  t.is(sum('held'), 1);
});

test('a journal folder that cannot be written is a temporary failure, and nothing is delivered', async (t) => {
  if (process.getuid?.() === 0) {
    // root writes anywhere: make the journal folder a file instead.
    const h = await whitelisted();
    writeFileSync(join(h.dir, JOURNAL_DIR), 'not a folder');
    const r = await deliverQmail(h, 'bob@example.com', message());
    t.is(r.code, 111);
    t.deepEqual(maildirFiles(h.maildir), []);
    return;
  }
  const h = await whitelisted();
  mkdirSync(join(h.dir, JOURNAL_DIR));
  chmodSync(join(h.dir, JOURNAL_DIR), 0o500);
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 111);
  t.deepEqual(maildirFiles(h.maildir), []);
});

test('the same whitelisted message delivered by eight processes at once lands once', async (t) => {
  const h = await whitelisted();
  for (let round = 0; round < 3; round++) {
    const msg = message({ subject: `race ${round}` });
    const runs = await Promise.all(Array.from({ length: 8 }, () => deliverQmail(h, 'bob@example.com', msg)));
    t.deepEqual(runs.map((r) => r.code), Array(8).fill(99));
  }
  t.is(maildirFiles(h.maildir).length, 3);
  t.deepEqual(maildirFiles(h.maildir, 'tmp'), []);
  const claims = readdirSync(join(h.dir, JOURNAL_DIR)).flatMap((d) => readdirSync(join(h.dir, JOURNAL_DIR, d)));
  t.is(claims.length, 3, claims.join(' '));
});

test('the store’s prune (vouch expire) removes journal days before its cutoff and keeps the rest', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'vouch-journal-'));
  const store = await Store.open(join(home, 'vouch.db'), { create: true });
  t.teardown(() => store.close());
  claim(home, 'old', 'name-old', NOW - 10 * DAY);
  claim(home, 'new', 'name-new', NOW - 7 * DAY);
  await store.prune(NOW - 7 * DAY);
  t.is(findClaim(home, 'old', NOW - 10 * DAY), undefined);
  t.is(findClaim(home, 'new', NOW), 'name-new');
});
