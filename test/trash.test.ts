// Undo and the trash below the page: deleted mail kept for pending.trash and restored by the CLI,
// expire emptying it, the undo of a release taking unread mail back out of the Maildir, the undo
// log and the event log; the parser pool; sessions' absolute lifetime; a stale session's way back.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../agent/home/config.js';
import { defaultLatin1, parseAttachment, parseMessage, parserStats } from '../agent/mail/parse.js';
import { decideHeld, expire, undoAction } from '../agent/release/actions.js';
import { Store } from '../agent/store/store.js';
import { Sessions } from '../web/auth.js';
import { buildApp } from '../web/server.js';
import { holdInput, maildirFiles, makeHome, pendingList, vouch, type TestHome } from './helpers.js';

const T0 = Date.UTC(2026, 10, 23, 8);
const DAY = 86_400_000;

async function withStore<T>(home: TestHome, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(join(home.dir, 'vouch.db'));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function holdSome(store: Store, senders: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, s] of senders.entries()) {
    const raw = Buffer.from(`From: ${s}\nSubject: m${i}\n\nbody ${i}\n`);
    ids.push((await store.hold(holdInput({ digest: `x${i}`, received: T0 + i * 1000, sender: s, senderKey: s, subject: `m${i}`, rpline: `Return-Path: <${s}>\n`, raw }))).id);
  }
  return ids;
}

test('deleted mail waits in the trash: pending list --trash shows it and pending restore brings it back', async (t) => {
  const home = await makeHome();
  const [a, b] = await withStore(home, (s) => holdSome(s, ['a@example.com', 'b@example.com']));
  const del = await vouch(['pending', 'delete', a ?? ''], { env: home.env });
  t.is(del.code, 0, del.stderr);
  t.deepEqual((await pendingList(home)).map((m) => m.id), [b]);
  const trash = await vouch(['pending', 'list', '--trash', '--json'], { env: home.env });
  const rows = JSON.parse(trash.stdout) as { id: string; sender: string }[];
  t.deepEqual(rows.map((r) => [r.id, r.sender]), [[a, 'a@example.com']]);
  const restore = await vouch(['pending', 'restore', a ?? '', b ?? ''], { env: home.env });
  t.is(restore.stdout.trim(), `1 restored; not in the trash: ${b}`);
  t.is(restore.code, 1, 'an id that was not in the trash is an error');
  t.deepEqual((await pendingList(home)).map((m) => m.id).sort(), [a, b].sort());
  t.regex((await vouch(['pending', 'list', '--trash'], { env: home.env })).stdout, /the trash is empty/);
  const raw = await vouch(['pending', 'show', '--raw', a ?? ''], { env: home.env });
  t.is(raw.stdout, 'From: a@example.com\nSubject: m0\n\nbody 0\n', 'byte for byte');
});

test('expire empties the trash of mail deleted more than pending.trash ago, and forgets old undos', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  t.is(config.pending.trash, 7 * DAY, 'the default is 7 days');
  await withStore(home, async (store) => {
    const [old, recent] = await holdSome(store, ['old@example.com', 'new@example.com']);
    const first = await decideHeld(store, config, [old ?? ''], 'delete', T0 + DAY);
    await decideHeld(store, config, [recent ?? ''], 'delete', T0 + 5 * DAY);
    t.is(await expire(store, config, T0 + 9 * DAY), '0 expired, 1 emptied from the trash');
    t.deepEqual((await store.trash()).map((h) => h.id), [recent]);
    t.is(await store.raw(old ?? ''), undefined);
    t.truthy(await store.raw(recent ?? ''));
    t.is(await store.action(first.undo ?? 0), undefined, 'the undo of an action older than the trash is gone');
    t.regex(await undoAction(store, config, first.undo ?? 0, T0 + 9 * DAY), /nothing to undo/);
  });
});

test('the undo of release + whitelist takes unread mail back out of the Maildir, and the list entry off', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    const [a, b] = await holdSome(store, ['carol@example.net', 'carol@example.net']);
    const res = await decideHeld(store, config, [a ?? '', b ?? ''], 'release-whitelist', T0 + 1000);
    t.is(res.summary, '2 released, 1 sender(s) whitelisted: carol@example.net');
    t.is(maildirFiles(home.maildir).length, 2);
    t.deepEqual((await store.listPatterns('white')).map((p) => p.pattern), ['carol@example.net']);
    const said = await undoAction(store, config, res.undo ?? 0, T0 + 2000);
    t.is(said, 'Undone: 2 back in the held mail, 1 list entry removed');
    t.deepEqual(maildirFiles(home.maildir), []);
    t.deepEqual(await store.listPatterns('white'), []);
    const held = await store.list();
    t.deepEqual(held.map((h) => h.id).sort(), [a, b].sort());
    t.is((await store.raw(a ?? ''))?.toString(), 'From: carol@example.net\nSubject: m0\n\nbody 0\n');
    // Released again, one file read by the mail program (moved to cur/): that one stays there.
    const again = await decideHeld(store, config, [a ?? '', b ?? ''], 'release', T0 + 3000);
    const files = maildirFiles(home.maildir);
    const { renameSync } = await import('node:fs');
    renameSync(join(home.maildir, 'new', files[0]?.name ?? ''), join(home.maildir, 'cur', `${files[0]?.name ?? ''}:2,S`));
    t.is(await undoAction(store, config, again.undo ?? 0, T0 + 4000), 'Undone: 1 back in the held mail, 1 already read in your mailbox, left there');
    t.is((await store.list()).length, 1);
  });
});

test('block replaces a whitelist entry, and its undo puts the whitelist entry back as it was', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    await store.addPatterns('white', [{ key: 'a:dave@example.com', text: 'dave@example.com' }], T0 - DAY, { source: 'confirmation', note: 'x' });
    const [id] = await holdSome(store, ['dave@example.com']);
    const res = await decideHeld(store, config, [id ?? ''], 'delete-blacklist', T0);
    t.deepEqual((await store.listEntries('black')).map((e) => [e.pattern, e.source]), [['dave@example.com', 'block']]);
    t.deepEqual(await store.listEntries('white'), []);
    await undoAction(store, config, res.undo ?? 0, T0 + 1);
    t.deepEqual(await store.listEntries('black'), []);
    t.deepEqual((await store.listEntries('white')).map((e) => [e.pattern, e.added, e.source, e.note]), [['dave@example.com', T0 - DAY, 'confirmation', 'x']]);
  });
});

test('a list entry made from mail is the exact address, even one that reads like a pattern', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    const [id] = await holdSome(store, ['list-default@example.com']);
    await decideHeld(store, config, [id ?? ''], 'delete-blacklist', T0);
    t.deepEqual((await store.listEntries('black')).map((e) => e.key), ['a:list-default@example.com']);
  });
});

test('the event log keeps what happened to held mail, newest first, at most 500', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    const [a, b] = await holdSome(store, ['a@example.com', 'b@example.com']);
    await decideHeld(store, config, [a ?? ''], 'delete', T0 + 5000);
    await store.restore([a ?? ''], T0 + 6000);
    await decideHeld(store, config, [b ?? ''], 'release', T0 + 7000);
    const kinds = (await store.events()).map((e) => `${e.kind} ${e.sender}`);
    t.deepEqual(kinds, ['released b@example.com', 'restored a@example.com', 'deleted a@example.com', 'challenge suppressed b@example.com', 'held b@example.com', 'challenge suppressed a@example.com', 'held a@example.com']);
    for (let i = 0; i < 300; i++) await store.hold(holdInput({ digest: `many${i}`, received: T0 + i, raw: Buffer.from(`Subject: ${i}\n\n${i}\n`) }));
    const events = await store.events(10_000);
    t.is(events.length, 500);
    t.is(events[0]?.kind, 'challenge suppressed');
  });
});

test('the parser pool reuses its workers, and 8-bit text without a charset reads as Latin-1', async (t) => {
  const before = parserStats().spawned;
  for (let i = 0; i < 6; i++) {
    const v = await parseMessage(Buffer.from(`Subject: ${i}\n\nhello ${i}\n`), { maxBytes: 10_000 });
    t.is(v.text?.trim(), `hello ${i}`);
  }
  t.true(parserStats().spawned - before <= 2, `at most two workers for six parses (${parserStats().spawned - before})`);
  const latin1 = Buffer.concat([Buffer.from('Subject: caf\xe9\n\n', 'latin1'), Buffer.from('Caf\xe9 cr\xe8me, \xe0 bient\xf4t\n', 'latin1')]);
  t.is((await parseMessage(latin1, { maxBytes: 10_000 })).text?.trim(), 'Café crème, à bientôt');
  const typed = Buffer.concat([Buffer.from('Content-Type: text/plain; format=flowed\n\n'), Buffer.from('na\xefve\n', 'latin1')]);
  t.is((await parseMessage(typed, { maxBytes: 10_000 })).text?.trim(), 'naïve');
  const utf8 = Buffer.from('Subject: x\n\nCafé in UTF-8\n');
  t.is((await parseMessage(utf8, { maxBytes: 10_000 })).text?.trim(), 'Café in UTF-8');
  const declared = Buffer.concat([Buffer.from('Content-Type: text/plain; charset=iso-8859-2\n\n'), Buffer.from([0xb1, 0x0a])]);
  t.is((await parseMessage(declared, { maxBytes: 10_000 })).text?.trim(), 'ą', 'a declared charset is kept');
});

test('8-bit text without a charset reads as Latin-1 in every part of a multipart message, HTML included, and UTF-8 stays UTF-8', async (t) => {
  const l1 = (text: string) => Buffer.from(text, 'latin1');
  const raw = Buffer.concat([
    Buffer.from('From: x@example.com\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="out"\n\n--out\nContent-Type: multipart/alternative; boundary="in"\n\n--in\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\n'),
    l1('Caf\xe9 cr\xe8me\n'),
    Buffer.from('--in\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<p>Caf=E9 cr=E8me</p>\n--in--\n--out\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n'),
    Buffer.from(Buffer.from('Déjà vu in UTF-8\n').toString('base64') + '\n'),
    Buffer.from('--out\nContent-Type: text/plain; charset=iso-8859-2\n\n'),
    Buffer.from([0xb1, 0x0a]),
    Buffer.from('--out\nContent-Type: text/plain; name="notes.txt"\nContent-Disposition: attachment; filename="notes.txt"\n\n'),
    l1('na\xefve\n'),
    Buffer.from('--out--\n'),
  ]);
  const v = await parseMessage(raw, { maxBytes: 100_000 });
  t.regex(v.text ?? '', /Café crème/);
  t.regex(v.text ?? '', /Déjà vu in UTF-8/);
  t.regex(v.text ?? '', /ą/, 'a declared charset is kept');
  t.false((v.text ?? '').includes('\ufffd'), 'no replacement characters');
  t.regex(v.html ?? '', /<p>Café crème<\/p>/);
  t.deepEqual(v.attachments.map((a) => a.filename), ['notes.txt']);
  const bytes = await parseAttachment(raw, 0, { maxBytes: 100_000 });
  // (the line end before a boundary belongs to the boundary)
  t.true(Buffer.from(bytes?.content ?? []).equals(l1('na\xefve')), 'an attachment keeps its bytes');
  const clean = Buffer.from('Subject: x\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain ASCII\n--b--\n');
  t.is(await defaultLatin1(clean), clean, 'a message no part of which needs it is passed on as it came');
});

test('a session ends at its absolute lifetime however busy it is', (t) => {
  let now = T0;
  const sessions = new Sessions({ idleMs: 3_600_000, lifeMs: 8 * 3_600_000, now: () => now });
  const s = sessions.create();
  for (let half = 1; half < 16; half++) {
    now = T0 + half * 1_800_000;
    t.truthy(sessions.get(s.id), `alive after ${half / 2} hours`);
  }
  now = T0 + 8 * 3_600_000;
  t.is(sessions.get(s.id), undefined);
  const idle = sessions.create();
  now += 3_600_000;
  t.is(sessions.get(idle.id), undefined, 'the idle limit still holds');
});

test('a stale session lands on the login page and comes back to where it was; oversize posts get a styled error', async (t) => {
  const home = await makeHome();
  const app = await buildApp({ home: home.dir, listen: '127.0.0.1:8025' });
  const token = readFileSync(join(home.dir, 'web-token'), 'utf8').trim();
  const host = { host: '127.0.0.1:8025' };
  const first = await app.inject({ method: 'GET', url: '/messages?q=invoice&size=25', headers: { ...host, cookie: 'vouch_session_8025=stale' } });
  t.is(first.statusCode, 303);
  t.is(first.headers['location'], '/login');
  const next = [first.headers['set-cookie']].flat().find((c) => String(c).startsWith('vouch_next_8025='));
  t.regex(String(next), /HttpOnly/);
  const login = await app.inject({ method: 'GET', url: '/login', headers: { ...host, cookie: String(next).split(';')[0] ?? '' } });
  t.is(login.statusCode, 200);
  t.regex(login.body, /Log in/);
  t.regex(login.body, /<link rel="stylesheet" href="\/static\/style.css">/, 'the login page is the styled one');
  const csrfCookie = [login.headers['set-cookie']].flat().map((c) => String(c).split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(login.body)?.[1] ?? '';
  const post = await app.inject({
    method: 'POST', url: '/login', payload: `_csrf=${encodeURIComponent(csrf)}&secret=${encodeURIComponent(token)}`,
    headers: { ...host, origin: 'http://127.0.0.1:8025', 'content-type': 'application/x-www-form-urlencoded', cookie: `${String(next).split(';')[0]}; ${csrfCookie}` },
  });
  t.is(post.statusCode, 303);
  t.is(post.headers['location'], '/messages?q=invoice&size=25');
  const session = [post.headers['set-cookie']].flat().map((c) => String(c).split(';')[0]).find((c) => c?.startsWith('vouch_session_8025=')) ?? '';
  const big = await app.inject({
    method: 'POST', url: '/act', payload: `ids=${'a'.repeat(3 * 1024 * 1024)}`,
    headers: { ...host, origin: 'http://127.0.0.1:8025', 'content-type': 'application/x-www-form-urlencoded', cookie: session },
  });
  t.is(big.statusCode, 413);
  t.regex(String(big.headers['content-type']), /^text\/html/);
  t.regex(big.body, /<link rel="stylesheet"/);
  await app.close();
});

test('the counts the triggers keep by reason and by sender always equal a fresh count of the held mail', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    const fresh = async () => ({
      why: await store.db.all(`SELECT reason, challenge, challenge_note AS note, count(*) AS n FROM messages WHERE state IN ('held', 'releasing') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`),
      senders: await store.db.all(`SELECT sender_key, count(*) AS n, max(received) AS last FROM messages WHERE state IN ('held', 'releasing') GROUP BY 1 ORDER BY 1`),
    });
    const kept = async () => ({
      why: await store.db.all('SELECT reason, challenge, note, n FROM held_why ORDER BY 1, 2, 3'),
      senders: await store.db.all('SELECT sender_key, n, last FROM held_senders ORDER BY 1'),
    });
    const ids = await holdSome(store, ['a@example.com', 'a@example.com', 'b@example.com', 'c@example.com', 'a@example.com']);
    t.deepEqual(await kept(), await fresh(), 'after holding');
    await store.challengeSent(ids[1] ?? '');
    await store.setChallenge(ids[2] ?? '', 'failed', 'ECONNREFUSED');
    t.deepEqual(await kept(), await fresh(), 'after challenges changed');
    const del = await decideHeld(store, config, [ids[4] ?? '', ids[2] ?? ''], 'delete', T0 + 10_000);
    t.deepEqual(await kept(), await fresh(), 'after deleting the newest of a sender');
    await decideHeld(store, config, [ids[0] ?? ''], 'release', T0 + 11_000);
    t.deepEqual(await kept(), await fresh(), 'after a release');
    await undoAction(store, config, del.undo ?? 0, T0 + 12_000);
    t.deepEqual(await kept(), await fresh(), 'after a restore');
    await expire(store, config, T0 + 30 * DAY);
    t.deepEqual(await kept(), await fresh(), 'after expiry and pruning');
    t.deepEqual((await kept()).senders, []);
  });
});

test('the sender view of one reason, and of a search, lists the same senders, counts and order as grouping all of the mail', async (t) => {
  const home = await makeHome();
  await withStore(home, async (store) => {
    await store.ensureReviewIndexes();
    // 53 senders, 4,000 messages (more than one batch of the walk), many at the same moment
    // (ties), three reasons interleaved; written in one statement (the triggers keep the counts).
    await store.db.run(
      `WITH RECURSIVE x(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM x WHERE i < 4000)
       INSERT INTO messages (id, digest, received, sender, sender_key, recipient, from_header, subject, date_header, message_id, size, reason, challenge, challenge_note, rpline, dtline)
       SELECT printf('t%012d', i), 'k' || i, ? + ((i * 101) % 700) * 1000, 's' || ((i * 37) % 53) || '@example.com', 's' || ((i * 37) % 53) || '@example.com',
         'alice@example.org', '', 'm' || i, '', '<' || i || '@x>', 10, 'unknown sender', CASE WHEN i % 3 = 0 THEN 'sent' ELSE 'suppressed' END,
         CASE WHEN i % 3 = 0 THEN '' WHEN i % 3 = 1 THEN 'mailing list' ELSE 'marked as spam' END, '', '' FROM x`,
      [T0],
    );
    for (const why of await store.heldWhy()) {
      const all = await store.db.all<{ key: string; n: number }>(
        `SELECT sender_key AS key, count(*) AS n FROM messages WHERE state = 'held' AND reason = ? AND challenge = ? AND challenge_note = ?
           GROUP BY sender_key ORDER BY max(received) DESC, sender_key DESC`,
        [why.reason, why.challenge, why.note],
      );
      t.true(all.length > 40);
      for (const [offset, limit] of [[0, 5], [5, 7], [12, 50], [50, 50], [0, 1000]] as const) {
        const got = await store.senders({ why: [why], limit, offset });
        t.deepEqual(got.map((g) => ({ key: g.senderKey, n: g.n })), all.slice(offset, offset + limit), `${why.challenge} ${why.note} ${offset}+${limit}`);
      }
    }
    // A message's neighbours under a search (one trigram lookup for both) are the messages just
    // before and after it in the search's list.
    for (const search of ['s17@example', 'm12']) {
      const ids = (await store.heldPage({ search, limit: 10_000, offset: 0 })).map((h) => h.id);
      for (const i of [0, 1, Math.floor(ids.length / 2), ids.length - 1]) {
        const h = await store.get(ids[i] ?? '');
        if (!h) continue;
        t.deepEqual(await store.neighbours(h, { search }), { prev: ids[i - 1], next: ids[i + 1] }, `${search} #${i}`);
      }
    }
    // A search's one-pass summary agrees with counting, grouping and paging separately.
    for (const search of ['s1', 's17@example', 'example.com']) {
      for (const [offset, limit] of [[0, 5], [10, 20]] as const) {
        const sum = await store.senderSummary({ search, limit, offset });
        t.is(sum.matching, await store.countHeld({ search }), search);
        t.is(sum.senderCount, await store.countSenders({ search }), search);
        const apart = await store.senders({ search, limit, offset });
        t.deepEqual(sum.groups.map((g) => [g.senderKey, g.n, g.newest.received]), apart.map((g) => [g.senderKey, g.n, g.newest.received]), `${search} ${offset}+${limit}`);
      }
    }
  });
});

test('search finds held mail by any part of the sender, From or Subject, in any case, and forgets mail that leaves', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await withStore(home, async (store) => {
    const [a, b] = await holdSome(store, ['Carol.Jones@example.net', 'dave@example.com']);
    const ids = async (search: string) => (await store.list({ search })).map((h) => h.id).sort();
    t.deepEqual(await ids('jones@EXAMPLE'), [a]);
    t.deepEqual(await ids('example'), [a, b].sort());
    t.deepEqual(await ids('m1'), [b], 'two characters: by LIKE');
    t.deepEqual(await ids('"quoted'), []);
    t.is(await store.countHeld({ search: 'dave@' }), 1);
    await decideHeld(store, config, [b ?? ''], 'delete', T0 + 1);
    t.deepEqual(await ids('dave@'), []);
    await store.restore([b ?? ''], T0 + 2);
    t.deepEqual(await ids('dave@'), [b]);
  });
});

test('a form sent with an ended session gets the styled login page and changes nothing', async (t) => {
  const home = await makeHome();
  const app = await buildApp({ home: home.dir, listen: '127.0.0.1:8025' });
  const r = await app.inject({
    method: 'POST', url: '/act', payload: 'action=delete&ids=aaaaaaaaaaaaa',
    headers: { host: '127.0.0.1:8025', origin: 'http://127.0.0.1:8025', 'content-type': 'application/x-www-form-urlencoded', cookie: 'vouch_session_8025=stale' },
  });
  t.is(r.statusCode, 401);
  t.regex(String(r.headers['content-type']), /^text\/html/);
  t.regex(r.body, /Your session has ended, so that was not done/);
  t.regex(r.body, /<link rel="stylesheet" href="\/static\/style.css">/);
  await app.close();
});
