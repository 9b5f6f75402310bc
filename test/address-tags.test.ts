// Tagged addresses the user hands out (`vouch address dated|sender|keyword|revoke`): accepted while
// valid, treated as bare (held) when expired, revoked, tampered or used by the wrong sender.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { datedTag } from '../agent/tags/tags.js';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, postfixEnv, vouch, type TestHome } from './helpers.js';
import { fakeSendmail, type FakeSendmail } from './fake-sendmail.js';

async function setup(): Promise<{ h: TestHome; sm: FakeSendmail }> {
  const h = await makeHome();
  return { h, sm: fakeSendmail(h) };
}

/** Runs `vouch address …` and returns the extension of the printed address. */
async function address(h: TestHome, args: string[], delimiter = '-'): Promise<string> {
  const r = await vouch(['address', ...args], { env: h.env });
  if (r.code !== 0) throw new Error(`vouch address ${args.join(' ')}: ${r.stderr}`);
  const printed = r.stdout.trim();
  const m = new RegExp(`^alice\\${delimiter}(.+)@example\\.org$`).exec(printed);
  if (!m?.[1]) throw new Error(`unexpected address ${printed}`);
  return m[1];
}

test('a dated address is accepted from anyone, and nothing is sent', async (t) => {
  const { h, sm } = await setup();
  const ext = await address(h, ['dated']);
  t.regex(ext, /^dated-\d+\.[a-z2-7]{16}$/);
  const expiry = Number(/^dated-(\d+)/.exec(ext)?.[1]) * 1000;
  t.true(expiry > Date.now() + 4 * 86_400_000 && expiry <= Date.now() + 5 * 86_400_000);
  const msg = message({ from: 'carol@example.net' });
  const r = await deliverQmail(h, 'carol@example.net', msg, ext);
  t.is(r.code, 99);
  t.regex(r.stdout, /^vouch: delivered: valid dated address carol@example.net \(qmail\)\n$/);
  t.is(maildirFiles(h.maildir)[0]?.bytes.toString(), `Return-Path: <carol@example.net>\nDelivered-To: alice-${ext}@example.org\n${msg}`);
  t.deepEqual(sm.sent(), []);
});

test('a dated address past its expiry is treated as bare: held and challenged', async (t) => {
  const { h, sm } = await setup();
  const key = readFileSync(join(h.dir, 'secret'));
  const ext = datedTag(key, Date.now() - 60_000);
  const r = await deliverQmail(h, 'carol@example.net', message(), ext);
  t.regex(r.stdout, /held [a-z2-7]{13}: unknown sender carol@example.net; challenge sent/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is(sm.sent().length, 1);
});

test('a dated address with its date pushed forward is refused (the MAC covers the date)', async (t) => {
  const { h } = await setup();
  const ext = await address(h, ['dated', '1d']);
  const forged = ext.replace(/^dated-(\d+)/, (_m, d: string) => `dated-${Number(d) + 86_400 * 365}`);
  const r = await deliverQmail(h, 'carol@example.net', message(), forged);
  t.regex(r.stdout, /held /);
  t.deepEqual(maildirFiles(h.maildir), []);
});

test('vouch address dated takes a duration and refuses nonsense', async (t) => {
  const { h } = await setup();
  const ext = await address(h, ['dated', '2w']);
  const expiry = Number(/^dated-(\d+)/.exec(ext)?.[1]) * 1000;
  t.true(expiry > Date.now() + 13 * 86_400_000);
  const bad = await vouch(['address', 'dated', 'soon'], { env: h.env });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^vouch: "soon" is not a duration/);
});

test('a sender address is accepted only from that sender (any case, BATV-signed too)', async (t) => {
  const { h, sm } = await setup();
  const ext = await address(h, ['sender', 'Bob@Example.com']);
  t.regex(ext, /^sender-[a-z2-7]{16}$/);
  for (const sender of ['bob@example.com', 'BOB@EXAMPLE.COM', 'prvs=0123abcd=bob@example.com']) {
    const r = await deliverQmail(h, sender, message({ subject: sender }), ext);
    t.regex(r.stdout, /delivered: valid sender address/, sender);
  }
  t.is(maildirFiles(h.maildir).length, 3);
  const other = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }), ext);
  t.regex(other.stdout, /held [a-z2-7]{13}: unknown sender carol@example.net/);
  t.is(maildirFiles(h.maildir).length, 3);
  t.is(sm.sent().length, 1);
});

test('a sender address made with --domain is accepted from the whole domain, not from others', async (t) => {
  const { h } = await setup();
  const ext = await address(h, ['sender', '--domain', 'bob@example.com']);
  t.regex((await deliverQmail(h, 'dave@example.com', message({ from: 'dave@example.com' }), ext)).stdout, /delivered: valid sender address/);
  t.regex((await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net' }), ext)).stdout, /held /);
});

test('vouch address sender refuses what is not a plain address', async (t) => {
  const { h } = await setup();
  const r = await vouch(['address', 'sender', 'bob smith@example.com'], { env: h.env });
  t.is(r.code, 2);
  t.regex(r.stderr, /is not a plain address/);
});

test('a keyword address works until the keyword is revoked, then it is bare', async (t) => {
  const { h, sm } = await setup();
  const ext = await address(h, ['keyword', 'Shop']);
  t.regex(ext, /^keyword-shop\.[a-z2-7]{16}$/);
  t.regex((await deliverQmail(h, 'orders@store.example', message({ from: 'orders@store.example' }), ext)).stdout, /delivered: valid keyword address/);
  const revoke = await vouch(['address', 'revoke', 'shop'], { env: h.env });
  t.is(revoke.code, 0);
  t.is(revoke.stdout, 'keyword shop revoked\n');
  const after = await deliverQmail(h, 'orders@store.example', message({ from: 'orders@store.example', subject: 'later' }), ext);
  t.regex(after.stdout, /held [a-z2-7]{13}: unknown sender orders@store.example/);
  t.is(maildirFiles(h.maildir).length, 1);
  t.is(sm.sent().length, 1);
  const again = await vouch(['address', 'keyword', 'shop'], { env: h.env });
  t.is(again.code, 2);
  t.regex(again.stderr, /revoked/);
});

test('a keyword address with another word under the same MAC is refused', async (t) => {
  const { h } = await setup();
  const ext = await address(h, ['keyword', 'shop']);
  const r = await deliverQmail(h, 'x@store.example', message(), ext.replace('keyword-shop.', 'keyword-shoe.'));
  t.regex(r.stdout, /held /);
});

test('vouch address keyword refuses a word that is not one', async (t) => {
  const { h } = await setup();
  for (const word of ['two words', '-dash', 'x'.repeat(25), 'dot.ted']) {
    const r = await vouch(['address', 'keyword', word], { env: h.env });
    t.not(r.code, 0, word);
    t.is(r.stdout, '', word);
  }
});

test('a valid tagged address wins over the blacklist; a bare one does not', async (t) => {
  const { h } = await setup();
  await vouch(['blacklist', 'add', '@spam.example'], { env: h.env });
  const ext = await address(h, ['keyword', 'signup']);
  t.regex((await deliverQmail(h, 'news@spam.example', message(), ext)).stdout, /delivered: valid keyword address/);
  t.regex((await deliverQmail(h, 'news@spam.example', message({ subject: 'again' }))).stdout, /dropped: blacklisted sender/);
});

test('an unknown extension that is not a tag is delivered as bare mail', async (t) => {
  const { h } = await setup();
  const r = await deliverQmail(h, 'carol@example.net', message(), 'lists');
  t.regex(r.stdout, /held [a-z2-7]{13}: unknown sender/);
  t.is((await pendingList(h)).length, 1);
});

test('Postfix: addresses use the "+" delimiter and work through EXTENSION', async (t) => {
  const h = await makeHome({ config: { identity: { delimiter: '+' } } });
  fakeSendmail(h);
  const ext = await address(h, ['keyword', 'conf'], '+');
  const r = await vouch(['deliver'], { env: postfixEnv(h, 'carol@example.net', ext), input: message() });
  t.is(r.code, 0);
  t.regex(r.stdout, /delivered: valid keyword address carol@example.net \(postfix\)/);
});
