// Message bodies in the store: kept in pieces of at most BODY_CHUNK bytes (so holding a big message
// never copies all of it at once), read back byte for byte; the one-statement delivery claim; and a
// version 1 store upgraded in place.

import test from 'ava';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db } from '../agent/store/db.js';
import { BODY_CHUNK, SCHEMA_VERSION, Store } from '../agent/store/store.js';
import { deliverQmail, holdInput, makeHome, maildirFiles, pendingList, vouch } from './helpers.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'vouch-bodies-')), 'vouch.db');

const input = (raw: Buffer, digest = 'd1') => holdInput({ raw, digest });

async function pieces(store: Store, id: string): Promise<number[]> {
  const rows = await store.db.all<{ n: number }>('SELECT length(bytes) AS n FROM bodies WHERE id = ? ORDER BY seq', [id]);
  return rows.map((r) => r.n);
}

test('a body bigger than one piece is stored in pieces and read back byte for byte', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const raw = randomBytes(Math.floor(2.5 * BODY_CHUNK));
  const { id } = await store.hold(input(raw));
  t.deepEqual(await pieces(store, id), [BODY_CHUNK, BODY_CHUNK, raw.length - 2 * BODY_CHUNK]);
  t.true((await store.raw(id))?.equals(raw));
  await store.close();
});

test('bodies of exactly one piece, of one byte more, and empty all read back as they were', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  for (const [n, expected] of [[BODY_CHUNK, [BODY_CHUNK]], [BODY_CHUNK + 1, [BODY_CHUNK, 1]], [0, [0]]] as const) {
    const raw = randomBytes(n);
    const { id } = await store.hold(input(raw, `d${n}`));
    t.deepEqual(await pieces(store, id), [...expected]);
    const back = await store.raw(id);
    t.true(back !== undefined && back.equals(raw), `${n} bytes`);
  }
  await store.close();
});

test('a deleted message keeps its body in the trash, and emptying the trash removes every piece of it', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const { id } = await store.hold(input(randomBytes(BODY_CHUNK * 2 + 10)));
  const at = Date.UTC(2026, 10, 23);
  await store.delete([id], at);
  t.deepEqual(await pieces(store, id), [BODY_CHUNK, BODY_CHUNK, 10]);
  t.is(await store.emptyTrash(at), 0, 'nothing deleted before the cut-off');
  t.is(await store.emptyTrash(at + 1), 1);
  t.deepEqual(await pieces(store, id), []);
  t.is(await store.raw(id), undefined);
  await store.close();
});

test('a version 1 store is upgraded on open: its bodies survive byte for byte and new ones go in pieces', async (t) => {
  const path = dbPath();
  const old = await Db.open(path, { create: true });
  const body = Buffer.concat([Buffer.from('Subject: old\n\n'), randomBytes(3000), Buffer.from('\0\r\n')]);
  await old.exec(`PRAGMA journal_mode = WAL; ${SCHEMA_V1} PRAGMA user_version = 1;`);
  await old.run(
    `INSERT INTO messages (id, digest, received, sender, sender_key, recipient, from_header, subject, date_header, message_id, size,
       reason, challenge, rpline, dtline) VALUES ('old1', 'dold', 1, 'bob@example.com', 'bob@example.com', 'alice@example.org', '', 'old', '', '', ?,
       'unknown sender', 'sent', '', '')`,
    [body.length],
  );
  await old.run('INSERT INTO bodies (id, bytes) VALUES (?, ?)', ['old1', body]);
  await old.close();

  const store = await Store.open(path);
  t.is((await store.db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version, SCHEMA_VERSION);
  t.true((await store.raw('old1'))?.equals(body));
  t.deepEqual(await store.integrityCheck(), ['ok']);
  t.deepEqual(await store.db.all('PRAGMA foreign_key_check'), []);
  const big = randomBytes(BODY_CHUNK + 5);
  const { id } = await store.hold(input(big, 'dnew'));
  t.deepEqual(await pieces(store, id), [BODY_CHUNK, 5]);
  await store.delete(['old1'], 1000);
  await store.emptyTrash(1001);
  t.is(await store.raw('old1'), undefined);
  // Deliveries are counted by the trigger the upgrade adds.
  const at = Date.UTC(2026, 10, 23, 23, 59);
  await store.claimDelivery('dig', 'name1', at);
  t.deepEqual((await store.activity('2026-11-23')).filter((e) => e.kind === 'delivered'), [{ day: '2026-11-23', kind: 'delivered', n: 1 }]);
  await store.close();
  // A second open finds the current version and changes nothing.
  const again = await Store.open(path);
  t.true((await again.raw(id))?.equals(big));
  await again.close();
});

test('a held message of several pieces is released into the Maildir byte for byte', async (t) => {
  const h = await makeHome();
  const head = 'From: carol@example.net\nTo: alice@example.org\nSubject: big\nMessage-ID: <big@example.net>\n\n';
  // Text lines with every byte value but LF, so that nothing in the path could normalise them.
  const line = Buffer.from(Array.from({ length: 255 }, (_, i) => (i === 10 ? 0x20 : i)));
  const lines = Array.from({ length: Math.ceil((2.3 * BODY_CHUNK) / 256) }, () => Buffer.concat([line, Buffer.from('\n')]));
  const msg = Buffer.concat([Buffer.from(head), ...lines]);
  const r = await deliverQmail(h, 'carol@example.net', msg);
  t.is(r.code, 99, r.stdout);
  const [held] = await pendingList(h);
  t.truthy(held);
  const rel = await vouch(['pending', 'release', held?.id ?? ''], { env: h.env });
  t.is(rel.code, 0, rel.stderr);
  const files = maildirFiles(h.maildir);
  t.is(files.length, 1);
  const expected = Buffer.concat([Buffer.from('Return-Path: <carol@example.net>\nDelivered-To: alice@example.org\n'), msg]);
  t.true(files[0]?.bytes.equals(expected));
});

test('a delivery claim fixes one name: a retry gets it back and is not counted again', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const at = Date.UTC(2026, 10, 23, 0, 0, 1);
  t.deepEqual(await store.claimDelivery('d1', 'first', at), { name: 'first', fresh: true });
  t.deepEqual(await store.claimDelivery('d1', 'second', at + 1000), { name: 'first', fresh: false });
  t.deepEqual(await store.claimDelivery('d2', 'third', at + 86_400_000), { name: 'third', fresh: true });
  t.deepEqual(await store.activity('2026-11-01'), [
    { day: '2026-11-23', kind: 'delivered', n: 1 },
    { day: '2026-11-24', kind: 'delivered', n: 1 },
  ]);
  await store.close();
});

/** The schema of version 1, as vouch 0.1 wrote it (one row per body). */
const SCHEMA_V1 = `
CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  received INTEGER NOT NULL,
  sender TEXT NOT NULL,
  sender_key TEXT NOT NULL,
  recipient TEXT NOT NULL,
  from_header TEXT NOT NULL,
  subject TEXT NOT NULL,
  date_header TEXT NOT NULL,
  message_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  reason TEXT NOT NULL,
  challenge TEXT NOT NULL,
  challenge_note TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'held',
  maildir_name TEXT,
  rpline TEXT NOT NULL,
  dtline TEXT NOT NULL,
  settled INTEGER
);
CREATE INDEX messages_state_received ON messages(state, received);
CREATE INDEX messages_sender_key ON messages(sender_key, state);
CREATE TABLE bodies (
  id TEXT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
  bytes BLOB NOT NULL
);
CREATE TABLE lists (
  key TEXT NOT NULL,
  list TEXT NOT NULL CHECK (list IN ('white', 'black')),
  pattern TEXT NOT NULL,
  added INTEGER NOT NULL,
  PRIMARY KEY (key, list)
) WITHOUT ROWID;
CREATE INDEX lists_list_pattern ON lists(list, pattern);
CREATE TABLE deliveries (
  digest TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
  day TEXT NOT NULL,
  kind TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (day, kind)
) WITHOUT ROWID;
CREATE TABLE challenges (
  id INTEGER PRIMARY KEY,
  sender_key TEXT NOT NULL,
  domain TEXT NOT NULL,
  sent INTEGER NOT NULL
);
CREATE INDEX challenges_sender ON challenges(sender_key, sent);
CREATE INDEX challenges_domain ON challenges(domain, sent);
CREATE INDEX challenges_sent ON challenges(sent);
CREATE TABLE confirms (
  id TEXT PRIMARY KEY,
  used INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE keywords (
  word TEXT PRIMARY KEY,
  revoked INTEGER NOT NULL
) WITHOUT ROWID;
`;
