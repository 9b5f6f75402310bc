import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePattern } from '../agent/mail/address.js';
import { Store, SCHEMA_VERSION } from '../agent/store/store.js';
import { holdInput } from './helpers.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'vouch-store-')), 'vouch.db');

const input = holdInput;

test('a new store gets the current schema version and WAL mode', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  t.is((await store.db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, SCHEMA_VERSION);
  t.is((await store.db.get<{ journal_mode: string }>('PRAGMA journal_mode'))?.journal_mode, 'wal');
  await store.close();
});

test('holding the same message twice keeps one copy, byte for byte', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const a = await store.hold(input());
  const b = await store.hold(input());
  t.true(a.fresh);
  t.false(b.fresh);
  // What the hold returns is what a get() reads back.
  t.deepEqual(a.held, await store.get(a.id));
  t.is(b.held, undefined);
  t.is(a.id, b.id);
  t.is(await store.countHeld(), 1);
  t.deepEqual(await store.raw(a.id), input().raw);
  await store.close();
});

test('the blacklist wins over the whitelist, and adding to one list removes from the other', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  await store.addPatterns('white', [parsePattern('@example.com')]);
  await store.addPatterns('black', [parsePattern('bob@example.com')]);
  t.deepEqual(await store.lookup('bob@example.com'), { list: 'black', pattern: 'bob@example.com' });
  t.deepEqual(await store.lookup('carol@example.com'), { list: 'white', pattern: '@example.com' });
  await store.addPatterns('white', [parsePattern('bob@example.com')]);
  t.deepEqual(await store.lookup('bob@example.com'), { list: 'white', pattern: 'bob@example.com' });
  t.is(await store.countPatterns('black'), 0);
  await store.close();
});

test('the list lookup uses the index, not a scan', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const plan = await store.db.all<{ detail: string }>("EXPLAIN QUERY PLAN SELECT list, pattern FROM lists WHERE key IN ('a:x', 'd:y')");
  t.true(plan.some((p) => /USING PRIMARY KEY|USING INDEX/.test(p.detail)), JSON.stringify(plan));
  t.false(plan.some((p) => /^SCAN/.test(p.detail)), JSON.stringify(plan));
  await store.close();
});

test('the held list is newest first, searchable and never needs a body', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  await store.hold(input({ digest: 'a', received: 1000, subject: 'first' }));
  await store.hold(input({ digest: 'b', received: 2000, subject: 'second 100%', sender: 'carol@x.org' }));
  t.deepEqual((await store.list()).map((m) => m.subject), ['second 100%', 'first']);
  t.deepEqual((await store.list({ search: '100%' })).map((m) => m.subject), ['second 100%']);
  t.deepEqual((await store.list({ search: 'carol' })).map((m) => m.subject), ['second 100%']);
  t.deepEqual((await store.list({ limit: 1, offset: 1 })).map((m) => m.subject), ['first']);
  await store.close();
});

test('rate limits suppress a second challenge to the same sender within the window', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const rate = { domain: 'example.com', window: 86_400_000, perDomainHourly: 10, globalHourly: 60 };
  const a = await store.hold(input({ digest: 'a', challenge: 'pending', challengeNote: '' }), rate);
  const b = await store.hold(input({ digest: 'b', challenge: 'pending', challengeNote: '' }), rate);
  t.is(a.challenge, 'pending');
  t.is(b.challenge, 'suppressed');
  t.is(b.note, 'sender already challenged recently');
  await store.close();
});

test('a corrupt database file is refused, not overwritten', async (t) => {
  const path = dbPath();
  writeFileSync(path, Buffer.alloc(8192, 0x41));
  await t.throwsAsync(Store.open(path));
});

test('a store written by a newer vouch is refused', async (t) => {
  const path = dbPath();
  const s = await Store.open(path, { create: true });
  await s.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  await s.close();
  await t.throwsAsync(Store.open(path), { message: /newer vouch/ });
});

test('a held message and a sent challenge are counted once each, on the day the message came', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  t.teardown(() => store.close());
  const a = await store.hold(input({ challenge: 'pending', challengeNote: '' }));
  await store.hold(input({ challenge: 'pending', challengeNote: '' })); // a retry: not counted again
  await store.hold(input({ digest: 'd2', received: Date.UTC(2026, 10, 24, 1) }));
  await store.setChallenge(a.id, 'sent', '');
  await store.setChallenge(a.id, 'sent', ''); // marking it again is no second challenge
  const rows = await store.activity('2026-11-01');
  const n = (day: string, kind: string) => rows.filter((r) => r.day === day && r.kind === kind).reduce((x, r) => x + r.n, 0);
  t.is(n('2026-11-23', 'held'), 1);
  t.is(n('2026-11-24', 'held'), 1);
  t.is(n('2026-11-23', 'challenged'), 1);
});

test('two different messages under one digest are both held; each again is recognised as held', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  t.teardown(() => store.close());
  const a = await store.hold(input({ digest: 'same', raw: Buffer.from('Subject: a\n\nfirst\n') }));
  const b = await store.hold(input({ digest: 'same', raw: Buffer.from('Subject: b\n\nsecond\n') }));
  const c = await store.hold(input({ digest: 'same', sender: 'carol@example.net', raw: Buffer.from('Subject: a\n\nfirst\n') }));
  t.true(a.fresh && b.fresh && c.fresh);
  t.is(new Set([a.id, b.id, c.id]).size, 3);
  const again = await store.hold(input({ digest: 'same', raw: Buffer.from('Subject: b\n\nsecond\n') }));
  t.deepEqual([again.id, again.fresh], [b.id, false]);
  t.is(await store.countHeld(), 3);
  t.deepEqual(await store.raw(b.id), Buffer.from('Subject: b\n\nsecond\n'));
});

test('marking a challenge sent counts it once, and leaves every later commit fully synchronous', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  t.teardown(() => store.close());
  const a = await store.hold(input({ challenge: 'pending', challengeNote: '' }));
  await store.challengeSent(a.id);
  t.is((await store.get(a.id))?.challenge, 'sent');
  t.is((await store.db.get<{ synchronous: number }>('PRAGMA synchronous'))?.synchronous, 2);
  t.is((await store.activity('2026-11-01')).find((r) => r.kind === 'challenged')?.n, 1);
  await t.throwsAsync(store.challengeSent("x'; DROP TABLE messages; --"));
  t.is(await store.countHeld(), 1);
});

test('transactions on one store take turns: concurrent list changes and holds all land', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  t.teardown(() => store.close());
  await Promise.all([
    ...Array.from({ length: 10 }, (_, i) => store.addPatterns('white', [parsePattern(`user${i}@example.com`)])),
    ...Array.from({ length: 10 }, (_, i) => store.hold(input({ digest: `c${i}` }))),
    store.removePatterns('white', [parsePattern('user0@example.com')]),
  ]);
  t.is(await store.countHeld(), 10);
  t.true((await store.countPatterns('white')) >= 9);
});

test('a new store (made at schema 3 and brought forward step by step) has the learning queue; held bytes are queued in the same transaction as the decision', async (t) => {
  const path = dbPath();
  const s = await Store.open(path, { create: true });
  await s.close();
  const store = await Store.open(path);
  try {
    t.is((await store.db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, SCHEMA_VERSION);
    const a = await store.hold(input({ digest: 'a', raw: Buffer.from('Subject: a\n\nfirst body\n') }));
    const b = await store.hold(input({ digest: 'b', sender: 'c@example.net', senderKey: 'c@example.net', raw: Buffer.from('Subject: b\n\nsecond body\n') }));
    const c = await store.hold(input({ digest: 'c', sender: 'd@example.net', senderKey: 'd@example.net', raw: Buffer.from('Subject: c\n\nthird\n') }));
    await store.delete([a.id], 10, 'deleted', { verdict: 'spam', maxBytes: 12 });
    await store.delete([b.id], 11, 'expired', { verdict: 'spam', maxBytes: 100, only: (h) => h.challenge === 'sent' });
    await store.delete([c.id], 12, 'deleted');
    const due = await store.learningDue(10);
    // Cut to maxBytes; the expired one was never challenged, the plain delete teaches nothing.
    t.deepEqual(due.map((d) => [d.key, d.verdict, d.learned, d.bytes?.toString()]), [[`held:${a.id}`, 'spam', null, 'Subject: a\n\n']]);
    await store.markLearned([{ key: `held:${a.id}`, verdict: 'spam' }], 20);
    t.deepEqual(await store.learningDue(10), []);
    t.deepEqual([...(await store.learnedAs([`held:${a.id}`, 'sha256:none']))], [[`held:${a.id}`, 'spam']]);
    // The learning queue's due rows are found through its partial index.
    const plan = await store.db.all<{ detail: string }>(`EXPLAIN QUERY PLAN SELECT key FROM learning INDEXED BY learning_due WHERE learned IS NULL OR learned <> verdict ORDER BY queued`);
    t.true(plan.some((p) => /learning_due/.test(p.detail)), JSON.stringify(plan));
  } finally {
    await store.close();
  }
});
