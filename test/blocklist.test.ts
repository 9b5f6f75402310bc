// The local aged blocklist: its schedule (a table, injected clock), the store's entries (IPv4 and
// IPv6 networks, whitelisted and released clients never listed), what feeds it (expiry of
// unconfirmed mail, delete + blacklist), the CLI, and the exports read by their real consumers:
// tcprules/tcprulescheck (ucspi-tcp), postmap (Postfix), rbldnsd answering DNS queries.

import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { promises as dnsPromises } from 'node:dns';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Config } from '../agent/home/config.js';
import { exactPattern } from '../agent/mail/address.js';
import { netsHolding, parseNet, reversedName } from '../agent/mail/ip.js';
import { blocklistHold, dnsblStatus, isListed, recordBad, type Aging, type BlockEntry } from '../agent/policy/blocklist.js';
import { deliverMessage } from '../agent/deliver/deliver.js';
import { readEnvelope } from '../agent/deliver/envelope.js';
import { loadConfig } from '../agent/home/config.js';
import { decideHeld, expire, undoAction } from '../agent/release/actions.js';
import { exportText, foldWhitelistedClients, recordBadClients, recordSpamClient, whitelistedClients } from '../agent/release/blocklist.js';
import { Store } from '../agent/store/store.js';
import { holdInput, makeHome, message, qmailEnv, setConfig, vouch } from './helpers.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);
const AGING: Aging = { period: 7 * DAY, maxPeriod: 180 * DAY };

// ---- the schedule

test('the aging schedule: 7 days, not stretched while listed, doubled per repeat, capped, then off', (t) => {
  const steps: [number, number | null, number, string][] = [
    // [day of the bad message, listed until (day) afterwards, repeats, …]
    [0, 7, 0, 'a first bad message lists for the period'],
    [3, 7, 0, 'another while listed counts but does not stretch the listing'],
    [10, 10 + 14, 1, 'after the listing ran out: listed again for twice as long'],
    [30, 30 + 28, 2, 'and again: four times'],
    [100, 100 + 56, 3, 'eight times'],
    [200, 200 + 112, 4, 'sixteen times'],
    [400, 400 + 180, 5, 'never longer than max_period'],
  ];
  let e: BlockEntry | undefined;
  for (const [day, until, repeats, why] of steps) {
    e = recordBad(e, '192.0.2.1/32', T0 + day * DAY, 'test', AGING);
    t.is(e.listedUntil, until === null ? null : T0 + until * DAY, why);
    t.is(e.repeats, repeats, why);
  }
  t.is(e?.count, steps.length);
  t.is(e?.firstSeen, T0);
  t.true(isListed(e, T0 + 579 * DAY));
  t.false(isListed(e, T0 + 580 * DAY), 'then it drops off');
  t.true(isListed({ ...(e as BlockEntry), listedUntil: null }, T0 + 10_000 * DAY), 'an entry added by hand stays');
});

test('DNSBL answers: 127.0.0.x lists, NXDOMAIN clears, 127.255.255.x and answers outside 127/8 are errors', (t) => {
  const table: [string[], 'listed' | 'clear' | 'error'][] = [
    [['127.0.0.2'], 'listed'],
    [['127.0.0.10', '127.0.0.4'], 'listed'],
    [[], 'clear'],
    [['127.255.255.254'], 'error'],
    [['10.0.0.1'], 'error'],
  ];
  for (const [answers, status] of table) t.is(dnsblStatus(answers), status, answers.join(','));
  t.is(blocklistHold([{ zone: 'a.test', status: 'error' }, { zone: 'b.test', status: 'listed', answer: '127.0.0.3' }], undefined, T0), 'client listed in b.test (127.0.0.3)');
  t.is(blocklistHold([{ zone: 'a.test', status: 'clear' }], undefined, T0), undefined);
});

test('networks: canonical forms, IPv6 by nibbles, every network that holds an address', (t) => {
  t.is(parseNet('192.0.2.77/24')?.text, '192.0.2.0/24');
  t.is(parseNet('2001:DB8:0:0:1::5')?.text, '2001:db8::1:0:0:5/128');
  t.is(parseNet('2001:db8:5:6:7::1/64')?.text, '2001:db8:5:6::/64');
  t.is(parseNet('::ffff:192.0.2.1')?.text, '192.0.2.1/32');
  for (const bad of ['192.0.2', '192.0.2.1/33', '192.0.2.1/4', '0x7f.1', '1.2.3.4/abc', 'example.com', '']) t.is(parseNet(bad), undefined, bad);
  t.is(reversedName('192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
  t.is(reversedName('2001:db8::1', 'bl.test'), `1.${'0.'.repeat(23)}8.b.d.0.1.0.0.2.bl.test`);
  const nets = netsHolding('192.0.2.1');
  t.is(nets.length, 25);
  t.true(nets.includes('192.0.2.0/24') && nets.includes('192.0.0.0/16'));
});

// ---- the store and what feeds it

function config(extra = ''): Config {
  return parseConfig(`[identity]\naddress = "alice@example.org"\n[challenge]\nrequire = "none"\n${extra}`, mkdtempSync(join(tmpdir(), 'vouch-bl-')));
}

async function store(): Promise<Store> {
  return Store.open(join(mkdtempSync(join(tmpdir(), 'vouch-bl-')), 'vouch.db'), { create: true });
}

const client = (ip: string) => ({ client: { ip, helo: 'x', source: 'received' } });

test('the store lists IPv4 clients by address and IPv6 clients by their /64, and finds them by any address inside', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  const a = await s.hold(holdInput({ digest: 'a', signals: client('192.0.2.9'), challenge: 'sent' }));
  const b = await s.hold(holdInput({ digest: 'b', sender: 'x@spam.example', senderKey: 'x@spam.example', signals: client('2001:db8:7:8:aaaa::1') }));
  const held = (await Promise.all([s.get(a.id), s.get(b.id)])).filter((h) => h !== undefined);
  t.is(await recordBadClients(s, c, held, T0, 'test'), 2);
  t.is((await s.blockedClient('192.0.2.9', T0 + DAY))?.net, '192.0.2.9/32');
  t.is(await s.blockedClient('192.0.2.10', T0 + DAY), undefined);
  t.is((await s.blockedClient('2001:db8:7:8:ffff::99', T0 + DAY))?.net, '2001:db8:7:8::/64');
  t.is(await s.blockedClient('2001:db8:7:9::1', T0 + DAY), undefined);
  t.is(await s.blockedClient('192.0.2.9', T0 + 8 * DAY), undefined, 'off after the period');
  await s.addBlock('198.51.100.0/24', T0);
  t.is((await s.blockedClient('198.51.100.200', T0 + 1000 * DAY))?.why, 'added by hand');
  t.deepEqual((await s.blockEntries({ now: T0 + DAY })).map((e) => e.net), ['192.0.2.9/32', '198.51.100.0/24', '2001:db8:7:8::/64']);
});

test('undoing a block takes its clients off the local blocklist, and puts an entry it renewed back as it was', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  // 198.51.100.7 was listed once already (an earlier expiry); 192.0.2.9 never.
  const old = await s.hold(holdInput({ digest: 'o', sender: 'old@spam.example', senderKey: 'old@spam.example', signals: client('198.51.100.7'), challenge: 'sent' }));
  await recordBadClients(s, c, (await s.getMany([old.id])), T0 - DAY, 'held mail expired unconfirmed');
  const before = await s.blockEntries({ now: T0, all: true });
  const a1 = await s.hold(holdInput({ digest: 'a1', signals: client('192.0.2.9') }));
  const a2 = await s.hold(holdInput({ digest: 'a2', messageId: '<2@example.com>', signals: client('192.0.2.9') }));
  const b1 = await s.hold(holdInput({ digest: 'b1', sender: 'x@spam.example', senderKey: 'x@spam.example', signals: client('198.51.100.7') }));
  const res = await decideHeld(s, c, [a1.id, a2.id, b1.id], 'delete-blacklist', T0);
  const m = /^3 deleted, 2 sender\(s\) blacklisted: (.+), 2 client network\(s\) put on the local blocklist: (.+)$/.exec(res.summary);
  t.deepEqual(m?.[1]?.split(', ').sort(), ['bob@example.com', 'x@spam.example'], res.summary);
  t.deepEqual(m?.[2]?.split(', ').sort(), ['192.0.2.9/32', '198.51.100.7/32'], res.summary);
  t.is((await s.blockedClient('192.0.2.9', T0 + 1))?.count, 2);
  t.is((await s.blockedClient('198.51.100.7', T0 + 1))?.count, 2);
  const text = await undoAction(s, c, res.undo ?? 0, T0 + 1000);
  t.is(text, 'Undone: 3 restored, 2 list entries removed, 3 local blocklist entries taken back');
  t.deepEqual(await s.blockEntries({ now: T0, all: true }), before, 'the blocklist is as it was before the block');
  t.is((await s.heldIds({}, 10)).length, 4, 'the three blocked held again, beside the old one');
});

test('undoing a block keeps later evidence against a client', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  const a = await s.hold(holdInput({ digest: 'a', signals: client('192.0.2.9') }));
  const res = await decideHeld(s, c, [a.id], 'delete-blacklist', T0);
  const later = await s.hold(holdInput({ digest: 'l', sender: 'y@spam.example', senderKey: 'y@spam.example', signals: client('192.0.2.9'), challenge: 'sent' }));
  await recordBadClients(s, c, await s.getMany([later.id]), T0 + DAY, 'held mail expired unconfirmed');
  const text = await undoAction(s, c, res.undo ?? 0, T0 + DAY + 1);
  t.is(text, 'Undone: 1 restored, 1 list entry removed');
  t.is((await s.blockedClient('192.0.2.9', T0 + DAY + 2))?.count, 2, 'the later listing stays');
});

test('a client whose mail was released, or whose sender is whitelisted, is never listed', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  await s.markGoodClient('192.0.2.20', 64, T0);
  await s.addPatterns('white', [exactPattern('friend@example.com')], T0);
  const r1 = await s.hold(holdInput({ digest: 'g1', signals: client('192.0.2.20'), challenge: 'sent' }));
  const r2 = await s.hold(holdInput({ digest: 'g2', sender: 'friend@example.com', senderKey: 'friend@example.com', signals: client('192.0.2.21') }));
  const r3 = await s.hold(holdInput({ digest: 'g3', signals: client('127.0.0.1') }));
  const held = (await Promise.all([r1, r2, r3].map((r) => s.get(r.id)))).filter((h) => h !== undefined);
  t.is(await recordBadClients(s, c, held, T0, 'test'), 0);
  t.deepEqual(await s.blockEntries({ now: T0, all: true }), []);
});

test('expiry lists the clients of mail whose sender was asked and never answered, not of mail held silently', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  await s.hold(holdInput({ digest: 'e1', received: T0, signals: client('192.0.2.30'), challenge: 'sent' }));
  await s.hold(holdInput({ digest: 'e2', received: T0, sender: 'list@lists.example', senderKey: 'list@lists.example', signals: client('192.0.2.31'), challenge: 'suppressed', challengeNote: 'mailing list' }));
  await s.hold(holdInput({ digest: 'e3', received: T0, sender: 'f@forged.example', senderKey: 'f@forged.example', signals: client('192.0.2.32'), suspect: true }));
  t.is(await expire(s, c, T0 + 15 * DAY), '3 expired, 2 client(s) blocklisted');
  t.deepEqual((await s.blockEntries({ now: T0 + 15 * DAY })).map((e) => [e.net, e.why]), [
    ['192.0.2.30/32', 'held mail expired unconfirmed'],
    ['192.0.2.32/32', 'held mail expired unconfirmed'],
  ]);
  // Long after the listing ran out (past max_period), expire forgets the entry.
  await expire(s, c, T0 + 15 * DAY + 7 * DAY + 181 * DAY);
  t.deepEqual(await s.blockEntries({ now: T0, all: true }), []);
});

test('delete with blacklist lists the client; a later release of mail from it takes it off for good', async (t) => {
  const h = await makeHome();
  const s = await Store.open(join(h.dir, 'vouch.db'));
  t.teardown(() => s.close());
  const c = config(`[delivery]\nmaildir = ${JSON.stringify(h.maildir)}\n`);
  const bad = await s.hold(holdInput({ digest: 'd1', signals: client('192.0.2.40') }));
  await decideHeld(s, c, [bad.id], 'delete-blacklist', T0);
  t.truthy(await s.blockedClient('192.0.2.40', T0 + DAY));
  const good = await s.hold(holdInput({ digest: 'd2', sender: 'ok@example.net', senderKey: 'ok@example.net', signals: client('192.0.2.40') }));
  await decideHeld(s, c, [good.id], 'release', T0 + DAY);
  t.is(await s.blockedClient('192.0.2.40', T0 + DAY), undefined);
  const again = await s.hold(holdInput({ digest: 'd3', sender: 'z@example.net', senderKey: 'z@example.net', signals: client('192.0.2.40') }));
  await decideHeld(s, c, [again.id], 'delete-blacklist', T0 + 2 * DAY);
  t.is(await s.blockedClient('192.0.2.40', T0 + 2 * DAY), undefined, 'never listed again');
});

test('undoing an allow whose mail is still unread takes back what it did to the client: the listing it ended returns', async (t) => {
  const h = await makeHome();
  const s = await Store.open(join(h.dir, 'vouch.db'));
  t.teardown(() => s.close());
  const c = config(`[delivery]\nmaildir = ${JSON.stringify(h.maildir)}\n`);
  const bad = await s.hold(holdInput({ digest: 'u1', signals: client('192.0.2.70') }));
  await decideHeld(s, c, [bad.id], 'delete-blacklist', T0);
  const listed = await s.blockEntries({ now: T0, all: true });
  t.is(listed.length, 1);
  const good = await s.hold(holdInput({ digest: 'u2', sender: 'ok@example.net', senderKey: 'ok@example.net', signals: client('192.0.2.70') }));
  const res = await decideHeld(s, c, [good.id], 'release-whitelist', T0 + DAY);
  t.is(await s.blockedClient('192.0.2.70', T0 + DAY), undefined, 'released mail took its client off the list');
  t.is(await undoAction(s, c, res.undo ?? 0, T0 + DAY + 1), 'Undone: 1 back in the held mail, 1 list entry removed, 1 client network(s) back on the local blocklist');
  t.deepEqual(await s.blockEntries({ now: T0, all: true }), listed, 'the listing is back as it was');
  t.truthy(await s.blockedClient('192.0.2.70', T0 + DAY + 2));
  const again = await s.hold(holdInput({ digest: 'u3', sender: 'z@example.net', senderKey: 'z@example.net', signals: client('192.0.2.70') }));
  await decideHeld(s, c, [again.id], 'delete-blacklist', T0 + 2 * DAY);
  t.is((await s.blockedClient('192.0.2.70', T0 + 2 * DAY))?.count, 2, 'and the network can be listed again: the release no longer vouches for it');
});

test('the classifier, calling held mail spam later, lists its client (a repeat doubles the listing)', async (t) => {
  const s = await store();
  const c = config();
  t.teardown(() => s.close());
  const r = await s.hold(holdInput({ digest: 'c1', signals: client('198.51.100.60') }));
  const held = await s.get(r.id);
  if (held === undefined) return t.fail();
  t.is(await recordSpamClient(s, c, held, T0), 1);
  t.like(await s.blockedClient('198.51.100.60', T0), { why: 'classifier: spam', listedUntil: T0 + 7 * DAY });
  await recordSpamClient(s, c, held, T0 + 8 * DAY);
  t.like(await s.blockedClient('198.51.100.60', T0 + 8 * DAY), { repeats: 1, count: 2, listedUntil: T0 + 8 * DAY + 14 * DAY });
});

test('a network whitelisted mail came from is never listed: by expiry, by delete with blacklist, nor in the export', async (t) => {
  const h = await makeHome();
  setConfig(h.dir, { trust: { mta_names: ['mx.example.org'] } });
  await vouch(['whitelist', 'add', 'friend@friends.example', 'pal@friends.example'], { env: h.env });
  const now = T0 + 3 * DAY;
  // Whitelisted mail from two servers: one named by the MTA's Received: line (below a forged one
  // and above a content filter's loopback line), one by TCPREMOTEIP; the forged line names nobody.
  const viaReceived = message({
    from: 'friend@friends.example',
    headers: [
      'Received: from localhost (localhost [127.0.0.1]) by mx.example.org (Postfix) with ESMTP id B; Sun, 1 Nov 2026 10:00:01 +0000',
      'Received: from out.friends.example (out.friends.example [192.0.2.80]) by mx.example.org (Postfix) with ESMTPS id A; Sun, 1 Nov 2026 10:00:00 +0000',
      'Received: from forged (forged [203.0.113.99]) by elsewhere.example with SMTP',
    ],
  });
  const deliver = async (sender: string, raw: string, vars: NodeJS.ProcessEnv) => {
    const env = { ...qmailEnv(h, sender), ...vars };
    const r = await deliverMessage({ home: h.dir, envelope: readEnvelope(env, undefined, 'alice@example.org'), raw: Buffer.from(raw), now }, { env });
    t.regex(r.line, /delivered: whitelisted sender/);
  };
  await deliver('friend@friends.example', viaReceived, {});
  await deliver('pal@friends.example', message({ from: 'pal@friends.example' }), { TCPREMOTEIP: '198.51.100.81' });
  // A hostile line whose text holds U+010A (0x0A in its low byte) where a newline would start a
  // note line of its own: it names no "good" network but its own.
  const hostile = message({
    from: 'friend@friends.example',
    subject: 'again',
    headers: ['Received: from out2.friends.example (out2.friends.example [192.0.2.82]) by mx.example.org (Postfix) with ESMTPS id C (caf\u010aip 203.0.113.66\u010a); Sun, 1 Nov 2026 10:00:00 +0000'],
  });
  await deliver('friend@friends.example', hostile, {});
  const config = loadConfig(h.dir);
  t.deepEqual(whitelistedClients(h.dir, config, now).sort(), ['192.0.2.80', '192.0.2.82', '198.51.100.81']);
  t.deepEqual(whitelistedClients(h.dir, config, now + 9 * DAY), [], 'a week on, the journal no longer speaks for them');

  const s = await Store.open(join(h.dir, 'vouch.db'));
  t.teardown(() => s.close());
  // Listed before the whitelisted mail was seen: the export (as `vouch blocklist export` does it:
  // the whitelisted servers taken in first) leaves it out.
  await recordBadClients(s, config, [{ sender: 'x@spam.example', signals: client('192.0.2.80') }, { sender: 'x@spam.example', signals: client('203.0.113.99') }], now, 'test');
  await foldWhitelistedClients(s, config, now);
  const listed = exportText(await s.blockEntries({ now }), 'plain', now).split('\n').filter((l) => !l.startsWith('#') && l !== '');
  t.false(listed.includes('192.0.2.80'));
  t.true(listed.includes('203.0.113.99'), 'the forged Received: line is not believed');
  // Expiry of an unanswered request, and delete with blacklist, from those servers list nothing.
  const a = await s.hold(holdInput({ digest: 'w1', received: now, signals: client('198.51.100.81'), challenge: 'sent' }));
  t.truthy(a.id);
  t.is(await expire(s, config, now + 15 * DAY), '1 expired', 'the good mark outlives the journal');
  const b = await s.hold(holdInput({ digest: 'w2', sender: 'y@spam.example', senderKey: 'y@spam.example', received: now, signals: client('192.0.2.80') }));
  await decideHeld(s, config, [b.id], 'delete-blacklist', now);
  t.is(await s.blockedClient('192.0.2.80', now), undefined);
  t.is(await s.blockedClient('198.51.100.81', now), undefined);
});

// ---- the CLI and the exports, read by their consumers

const ENTRIES: BlockEntry[] = ['192.0.2.1/32', '198.51.100.0/24', '203.0.112.0/23', '2001:db8:7:8::/64'].map((net) => ({
  net, count: 1, firstSeen: T0, lastSeen: T0, listedUntil: null, repeats: 0, why: 'test',
}));

test('vouch blocklist add, list, remove and export (atomic, to a file)', async (t) => {
  const h = await makeHome();
  t.is((await vouch(['blocklist', 'add', '192.0.2.1', '198.51.100.7/24', '2001:db8:7:8::1/64'], { env: h.env })).stdout, '3 listed\n');
  const bad = await vouch(['blocklist', 'add', '192.0.2.300'], { env: h.env });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /not an IP address or network/);
  const list = await vouch(['blocklist', 'list'], { env: h.env });
  t.regex(list.stdout, /^192\.0\.2\.1\/32 +until removed/m);
  t.regex(list.stdout, /^198\.51\.100\.0\/24 /m);
  const out = join(h.dir, 'blocklist.txt');
  const e = await vouch(['blocklist', 'export', '--format', 'plain', '--output', out], { env: h.env });
  t.is(e.code, 0, e.stderr);
  t.deepEqual(readFileSync(out, 'utf8').split('\n').filter((l) => !l.startsWith('#') && l !== ''), ['192.0.2.1', '198.51.100.0/24', '2001:db8:7:8::/64']);
  t.false(readdirSync(h.dir).some((n) => n.endsWith('.tmp')));
  t.is(statSync(out).mode & 0o777, 0o644);
  t.is((await vouch(['blocklist', 'remove', '198.51.100.0/24'], { env: h.env })).stdout, '1 removed\n');
  t.is((await vouch(['blocklist', 'export', '--format', 'nonsense'], { env: h.env })).code, 2);
});

test('tcprules compiles the tcprules export, and tcprulescheck finds a listed IP and a listed network', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-tcprules-'));
  const cdb = join(dir, 'tcp.smtp.cdb');
  const text = `${exportText(ENTRIES, 'tcprules', T0)}:allow\n`;
  const r = spawnSync('tcprules', [cdb, join(dir, 'tcp.smtp.tmp')], { input: text, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const check = (ip: string) => spawnSync('tcprulescheck', [cdb], { env: { TCPREMOTEIP: ip, PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' }).stdout;
  t.regex(check('192.0.2.1'), /set environment variable RBLSMTPD=-listed by vouch/);
  t.regex(check('198.51.100.99'), /RBLSMTPD=-listed by vouch/);
  t.regex(check('203.0.113.4'), /RBLSMTPD=-listed by vouch/, 'the /23 as two /24s');
  t.notRegex(check('192.0.2.2'), /RBLSMTPD/);
});

test('postmap compiles the Postfix export, and postmap -q finds a listed IP and network', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-postmap-'));
  const map = join(dir, 'vouch_clients');
  writeFileSync(map, exportText(ENTRIES, 'postfix', T0));
  const r = spawnSync('postmap', [`hash:${map}`], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const q = (key: string) => spawnSync('postmap', ['-q', key, `hash:${map}`], { encoding: 'utf8' });
  t.regex(q('192.0.2.1').stdout, /^REJECT listed by vouch/);
  t.regex(q('198.51.100').stdout, /^REJECT/, 'the /24 as Postfix looks up a network');
  t.is(q('192.0.2.2').status, 1, 'an unlisted IP is not found');
  writeFileSync(join(dir, 'cidr'), exportText(ENTRIES, 'postfix-cidr', T0));
  t.regex(spawnSync('postmap', ['-q', '2001:db8:7:8::99', `cidr:${join(dir, 'cidr')}`], { encoding: 'utf8' }).stdout, /^REJECT/);
  t.regex(spawnSync('postmap', ['-q', '198.51.100.5', `cidr:${join(dir, 'cidr')}`], { encoding: 'utf8' }).stdout, /^REJECT/);
});


async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

test('rbldnsd serves the exported zones: a listed IPv4 or IPv6 client answers 127.0.0.2, an unlisted one nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-rbldnsd-'));
  chmodSync(dir, 0o755);
  const h = await makeHome();
  await vouch(['blocklist', 'add', '192.0.2.1', '198.51.100.0/24', '2001:db8:7:8::/64'], { env: h.env });
  t.is((await vouch(['blocklist', 'export', '--format', 'rbldnsd', '--output', join(dir, 'v4')], { env: h.env })).code, 0);
  t.is((await vouch(['blocklist', 'export', '--format', 'rbldnsd6', '--output', join(dir, 'v6')], { env: h.env })).code, 0);
  const port = await freePort();
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const d = spawn('rbldnsd', ['-n', '-b', `127.0.0.1/${port}`, '-w', dir, ...user, 'bl.vouch.test:ip4set:v4', 'bl.vouch.test:ip6trie:v6'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => d.kill());
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (b: Buffer) => {
      log += b.toString();
      if (log.includes('started')) resolve();
    };
    d.stdout.on('data', onData);
    d.stderr.on('data', onData);
    d.on('exit', () => reject(new Error(`rbldnsd exited: ${log}`)));
  });
  const r = new dnsPromises.Resolver({ timeout: 2000, tries: 2 });
  r.setServers([`127.0.0.1:${port}`]);
  const ask = (ip: string) => r.resolve4(reversedName(ip, 'bl.vouch.test')).catch((e: { code: string }) => e.code);
  t.deepEqual(await ask('192.0.2.1'), ['127.0.0.2']);
  t.deepEqual(await ask('198.51.100.77'), ['127.0.0.2']);
  t.deepEqual(await ask('2001:db8:7:8::42'), ['127.0.0.2']);
  t.is(await ask('192.0.2.2'), 'ENOTFOUND');
  t.is(await ask('2001:db8:7:9::1'), 'ENOTFOUND');
});

test('vouch check says what would happen and why, and stores nothing', async (t) => {
  const h = await makeHome();
  await vouch(['blocklist', 'add', '192.0.2.50'], { env: h.env });
  const msg = 'Received: from unknown (HELO spam.example) (192.0.2.50)\n  by mx.example.org with SMTP; 23 Nov 2026 10:00:01 -0000\nFrom: x@spam.example\nTo: alice@example.org\nSubject: hi\n\nbody\n';
  const { setConfig } = await import('./helpers.js');
  setConfig(h.dir, { trust: { mta_names: ['mx.example.org'] } });
  const r = await vouch(['check', '--sender', 'x@spam.example'], { env: h.env, input: msg });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^Verdict: +hold \(unknown sender\)$/m);
  t.regex(r.stdout, /^Challenge: none: client on the local blocklist \(192\.0\.2\.50\/32\)$/m);
  t.regex(r.stdout, /Client: 192\.0\.2\.50 HELO spam\.example \(Received: by mx\.example\.org\)/);
  const j = JSON.parse((await vouch(['check', '--json', '--sender', 'x@spam.example'], { env: h.env, input: msg })).stdout) as { action: string; suspect: boolean };
  t.is(j.action, 'hold');
  t.true(j.suspect);
  await vouch(['whitelist', 'add', 'x@spam.example'], { env: h.env });
  t.regex((await vouch(['check', '--sender', 'x@spam.example'], { env: h.env, input: msg })).stdout, /^Verdict: +deliver \(whitelisted sender\)$/m);
  t.is((await vouch(['pending', 'list'], { env: h.env })).stdout, 'no held messages\n');
});
