// Schema 9: a hold no longer writes the search index or trims the event log. The index takes new
// messages when a search needs them (Store.indexText), rows leave it when they go, and what a
// search finds is what it found when every hold wrote the index.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_KEEP, SCHEMA_VERSION, Store } from '../agent/store/store.js';
import { holdInput } from './helpers.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'vouch-search-')), 'vouch.db');
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 23, 10);

let serial = 0;
function held(subject: string, sender = `s${++serial}@example.net`, received = T0 + serial) {
  return holdInput({ digest: `d${++serial}`, subject, sender, senderKey: sender, fromHeader: `Someone <${sender}>`, received });
}

async function found(store: Store, search: string): Promise<string[]> {
  return (await store.list({ search })).map((h) => h.subject).sort();
}

/** FTS5's own check of an external-content index against its table. */
async function indexIntact(store: Store): Promise<void> {
  await store.db.exec(`INSERT INTO held_text (held_text) VALUES ('integrity-check')`);
}

async function indexed(store: Store): Promise<number> {
  return (await store.db.get<{ upto: number }>('SELECT upto FROM held_text_mark'))?.upto ?? -1;
}

test('a hold leaves the search index alone; the next search finds the message all the same', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  await store.hold(held('quarterly invoice'));
  t.is(await indexed(store), 0);
  t.deepEqual(await found(store, 'invoice'), ['quarterly invoice']);
  t.true((await indexed(store)) > 0);
  await store.hold(held('another invoice'));
  await store.hold(held('lunch on friday'));
  // Every way a search reaches the rows brings the index up to date first.
  t.is(await store.countHeld({ search: 'INVOICE' }), 2);
  t.deepEqual(await found(store, 'invoice'), ['another invoice', 'quarterly invoice']);
  t.deepEqual((await store.senders({ search: 'friday' })).map((g) => g.newest.subject), ['lunch on friday']);
  // Short searches never used the index (LIKE), and still find new mail.
  await store.hold(held('ok'));
  t.deepEqual(await found(store, 'ok'), ['ok']);
  await indexIntact(store);
  await store.close();
});

test('searches running at once each see every message, and the index takes each one once', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  for (let i = 0; i < 20; i++) await store.hold(held(`report number ${i}`));
  const counts = await Promise.all([store.countHeld({ search: 'report' }), store.countHeld({ search: 'number' }), store.countSenders({ search: 'report' })]);
  t.deepEqual(counts, [20, 20, 20]);
  const rows = await store.db.get<{ n: number }>(`SELECT count(*) AS n FROM held_text WHERE held_text MATCH '"report"'`);
  t.is(rows?.n, 20);
  await indexIntact(store);
  await store.close();
});

test('pruned messages leave the index, and messages that take their rowids are found', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const a = await store.hold(held('keep me around'));
  const b = await store.hold(held('gone tomorrow one'));
  const c = await store.hold(held('gone tomorrow two'));
  t.is((await found(store, 'tomorrow')).length, 2);
  // b and c (the highest rows) are settled and pruned: their rowids become free again.
  await store.db.run(`UPDATE messages SET state = 'deleted', settled = ? WHERE id IN (?, ?)`, [T0, b.id, c.id]);
  await store.prune(T0 + DAY);
  t.truthy(await store.get(a.id));
  t.deepEqual(await found(store, 'tomorrow'), []);
  await indexIntact(store);
  // New messages reuse those rowids: they are not in the index yet, and the next search takes them.
  await store.hold(held('tomorrow again'));
  await store.hold(held('gone tomorrow three'));
  t.deepEqual(await found(store, 'tomorrow'), ['gone tomorrow three', 'tomorrow again']);
  t.deepEqual(await found(store, 'keep'), ['keep me around']);
  await indexIntact(store);
  await store.close();
});

test('rows pruned before the index took them never touch it', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  await store.hold(held('first letter'));
  t.deepEqual(await found(store, 'letter'), ['first letter']);
  const late = await store.hold(held('second letter'));
  await store.db.run(`UPDATE messages SET state = 'deleted', settled = ? WHERE id = ?`, [T0, late.id]);
  await store.prune(T0 + DAY);
  await indexIntact(store);
  t.deepEqual(await found(store, 'letter'), ['first letter']);
  await store.close();
});

test('a schema 8 store is upgraded in place: its index is kept whole and searches go on finding everything', async (t) => {
  const path = dbPath();
  const store = await Store.open(path, { create: true });
  await store.hold(held('old invoice'));
  await store.hold(held('old newsletter'));
  // Back to schema 8 as it was: every hold wrote the index, the log was trimmed at each event.
  await store.db.exec(`
    DROP TRIGGER held_text_out; DROP TABLE held_text_mark; DROP TRIGGER log_keep;
    INSERT INTO held_text (rowid, sender, from_header, subject) SELECT rowid, sender, from_header, subject FROM messages;
    CREATE TRIGGER held_text_in AFTER INSERT ON messages BEGIN
      INSERT INTO held_text (rowid, sender, from_header, subject) VALUES (NEW.rowid, NEW.sender, NEW.from_header, NEW.subject);
    END;
    CREATE TRIGGER held_text_out AFTER DELETE ON messages BEGIN
      INSERT INTO held_text (held_text, rowid, sender, from_header, subject) VALUES ('delete', OLD.rowid, OLD.sender, OLD.from_header, OLD.subject);
    END;
    CREATE TRIGGER log_keep AFTER INSERT ON log BEGIN DELETE FROM log WHERE id <= NEW.id - ${LOG_KEEP}; END;
    PRAGMA user_version = 8;`);
  await store.hold(held('invoice held under schema 8'));
  await indexIntact(store);
  await store.close();
  const again = await Store.open(path);
  t.is((await again.db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, SCHEMA_VERSION);
  t.is(await indexed(again), 3);
  await again.hold(held('new invoice'));
  t.deepEqual(await found(again, 'invoice'), ['invoice held under schema 8', 'new invoice', 'old invoice']);
  await indexIntact(again);
  await again.close();
});

test('the event log keeps the newest LOG_KEEP events, trimmed every 64th', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  for (let i = 0; i < LOG_KEEP + 100; i++) await store.db.run(`INSERT INTO log (at, kind, detail) VALUES (?, 'dropped', ?)`, [T0 + i, String(i)]);
  const n = (await store.db.get<{ n: number }>('SELECT count(*) AS n FROM log'))?.n ?? 0;
  t.true(n >= LOG_KEEP && n < LOG_KEEP + 64, String(n));
  const events = await store.events();
  t.is(events.length, LOG_KEEP);
  t.is(events[0]?.detail, String(LOG_KEEP + 99));
  t.is(events.at(-1)?.detail, '100');
  await store.close();
});

test('the review page, as it starts (ensureReviewIndexes), takes what was held since the last search into the index', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  for (let i = 0; i < 5; i++) await store.hold(held(`backlog ${i}`));
  t.is(await indexed(store), 0);
  await store.ensureReviewIndexes();
  const top = await store.db.get<{ n: number }>('SELECT max(rowid) AS n FROM messages');
  t.is(await indexed(store), top?.n ?? -1);
  t.is(await store.countHeld({ search: 'backlog' }), 5);
  await indexIntact(store);
  await store.close();
});
