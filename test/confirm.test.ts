// The confirmation loop end to end through the built `vouch deliver`: unknown sender, challenge
// through a fake sendmail, reply to the confirm address, release, whitelist.
import test from 'ava';
import { deliverQmail, fixture, makeHome, maildirFiles, message, pendingList, postfixEnv, setConfig, vouch, type TestHome } from './helpers.js';
import { confirmExt, fakeSendmail, parseMail, reply, type FakeSendmail } from './fake-sendmail.js';

const RP_BOB = 'Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n';

async function setup(name = 'sendmail'): Promise<{ h: TestHome; sm: FakeSendmail }> {
  const h = await makeHome();
  const sm = fakeSendmail(h, name);
  return { h, sm };
}

/** Bob writes, is held and challenged; returns his message and the confirm extension. */
async function challenged(h: TestHome, sm: FakeSendmail, sender = 'bob@example.com'): Promise<{ msg: string; ext: string }> {
  const msg = message({ subject: 'Lunch?' });
  const r = await deliverQmail(h, sender, msg);
  if (r.code !== 99 || !/challenge sent/.test(r.stdout)) throw new Error(`not challenged: ${r.stdout}`);
  const last = sm.sent().at(-1);
  if (!last) throw new Error('nothing was sent');
  return { msg, ext: await confirmExt(last.raw) };
}

test('the whole loop: held, challenged, confirmed by a reply, released byte-exact, whitelisted', async (t) => {
  const { h, sm } = await setup();
  const first = message({ subject: 'Lunch?' });
  const r1 = await deliverQmail(h, 'bob@example.com', first);
  t.is(r1.code, 99);
  t.regex(r1.stdout, /^vouch: held [a-z2-7]{13}: unknown sender bob@example.com; challenge sent \(qmail\)\n$/);
  t.deepEqual(maildirFiles(h.maildir), []);

  const sent = sm.sent();
  t.is(sent.length, 1);
  t.deepEqual(sent[0]?.argv, ['-i', '-f', '', '--', 'bob@example.com']);

  // A second message before the reply: held, challenge suppressed by the rate limit, reason recorded.
  const second = message({ subject: 'And dinner?', body: 'Also dinner.\n' });
  const r2 = await deliverQmail(h, 'bob@example.com', second);
  t.regex(r2.stdout, /challenge suppressed \(sender already challenged recently\)/);
  t.is(sm.sent().length, 1);
  const held = await pendingList(h);
  t.is(held.length, 2);
  t.deepEqual(held.map((m) => m.challenge).sort(), ['sent', 'suppressed']);
  t.true(held.some((m) => m.challenge_note === 'sender already challenged recently'));

  const raw = sent[0]?.raw ?? Buffer.alloc(0);
  const challenge = await parseMail(raw);
  const ext = await confirmExt(raw);
  t.regex(ext, /^confirm-[a-z2-7]{13}\.[a-z2-7]{16}$/);
  const answer = reply({ to: challenge.replyTo?.text ?? '', inReplyTo: challenge.messageId ?? '' });
  const r3 = await deliverQmail(h, 'bob@example.com', answer, ext);
  t.is(r3.code, 99);
  t.regex(r3.stdout, /^vouch: confirmed [a-z2-7]{13}: released 2 from bob@example.com, sender whitelisted \(qmail\)\n$/);

  // Both held messages, exactly as they came, after Return-Path/Delivered-To; the reply is consumed.
  const files = maildirFiles(h.maildir).map((f) => f.bytes.toString());
  t.is(files.length, 2);
  t.deepEqual(files.sort(), [`${RP_BOB}${first}`, `${RP_BOB}${second}`].sort());
  t.false(files.some((f) => f.includes('Yes, that was me')));
  t.deepEqual(await pendingList(h), []);
  const wl = await vouch(['whitelist', 'list'], { env: h.env });
  t.is(wl.stdout, 'bob@example.com\n');
  // The entry says how it came: the sender confirmed (the review page's Lists shows it).
  const { Store } = await import('../agent/store/store.js');
  const store = await Store.open(`${h.dir}/vouch.db`);
  t.deepEqual((await store.listEntries('white')).map((e) => e.source), ['confirmation']);
  await store.close();

  // From now on Bob's mail is delivered directly, and nothing more is sent.
  const third = message({ subject: 'Thanks' });
  const r4 = await deliverQmail(h, 'bob@example.com', third);
  t.regex(r4.stdout, /delivered: whitelisted sender bob@example.com/);
  t.is(maildirFiles(h.maildir).length, 3);
  t.is(sm.sent().length, 1);
});

test('a whitelisted sender writing again to a used confirm address is delivered, not dropped', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const ok = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.regex(ok.stdout, /confirmed/);
  const before = maildirFiles(h.maildir).length;
  // Bob's mail program kept the request's Reply-To: his next message goes to the used address.
  const later = message({ subject: 'Next week', body: 'See you next week.\n' });
  const again = await deliverQmail(h, 'bob@example.com', later, ext);
  t.is(again.code, 99);
  t.regex(again.stdout, /^vouch: delivered: whitelisted sender bob@example.com \(qmail\)\n$/);
  const files = maildirFiles(h.maildir);
  t.is(files.length, before + 1);
  t.true(files.some((f) => f.bytes.toString().endsWith(later)));
  t.is(sm.sent().length, 1);
});

test('an unknown sender writing to a used confirm address is held and challenged as at the bare address', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  t.regex((await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext)).stdout, /confirmed/);
  const carol = message({ from: 'Carol <carol@example.net>', subject: 'Hi from Carol' });
  const r = await deliverQmail(h, 'carol@example.net', carol, ext);
  t.is(r.code, 99);
  t.regex(r.stdout, /^vouch: held [a-z2-7]{13}: unknown sender carol@example.net; challenge sent \(qmail\)\n$/);
  t.deepEqual(sm.sent().map((m) => m.argv.at(-1)), ['bob@example.com', 'carol@example.net']);
  t.deepEqual((await pendingList(h)).map((m) => m.sender), ['carol@example.net']);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, 'bob@example.com\n');
});

test('a tampered confirm is dropped silently and releases nothing', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const last = ext.at(-1) === 'a' ? 'b' : 'a';
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext.slice(0, -1) + last);
  t.is(r.code, 99);
  t.regex(r.stdout, /dropped: confirmation refused: not from the challenged sender/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await pendingList(h)).length, 1);
  t.is(sm.sent().length, 1);
});

test('a confirm sent from a different sender is dropped: the address is bound to the one challenged', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const r = await deliverQmail(h, 'mallory@example.net', reply({ from: 'Mallory <mallory@example.net>', to: 'x' }), ext);
  t.is(r.code, 99);
  t.regex(r.stdout, /dropped: confirmation refused: not from the challenged sender mallory@example.net/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await pendingList(h)).length, 1);
  const wl = await vouch(['whitelist', 'list'], { env: h.env });
  t.is(wl.stdout, '');
  t.is(sm.sent().length, 1);
});

test('a confirm for a message deleted meanwhile confirms nothing: the reply is held as at the bare address', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const id = (await pendingList(h))[0]?.id ?? '';
  t.is((await vouch(['pending', 'delete', id], { env: h.env })).code, 0);
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.is(r.code, 99);
  t.regex(r.stdout, /held [a-z2-7]{13}: unknown sender bob@example.com; challenge suppressed \(sender already challenged recently\)/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
  t.deepEqual((await pendingList(h)).map((m) => m.subject), ['Re: Please confirm your message']);
});

const malformed: [string, (ext: string) => string][] = [
  ['one character too long', (ext) => `${ext}a`],
  ['base32 padding', (ext) => `${ext}==`],
  ['trailing text', (ext) => `${ext}-please`],
  ['a short id', (ext) => ext.replace(/^confirm-[a-z2-7]/, 'confirm-')],
  ['no MAC at all', () => 'confirm-'],
  ['characters base32 does not use', (ext) => ext.replace(/\.[a-z2-7]/, '.1')],
];

for (const [what, bad] of malformed) {
  test(`a confirm- extension with ${what} is dropped silently: not held, not challenged`, async (t) => {
    const { h, sm } = await setup();
    const { ext } = await challenged(h, sm);
    const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }), bad(ext));
    t.is(r.code, 99);
    t.regex(r.stdout, /^vouch: dropped: malformed confirmation address carol@example.net \(qmail\)\n$/);
    t.is((await pendingList(h)).length, 1);
    t.is(sm.sent().length, 1);
    t.deepEqual(maildirFiles(h.maildir), []);
  });
}

test('an automatic reply to the challenge (Auto-Submitted, or the null sender) does not confirm', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const vacation = await deliverQmail(h, 'bob@example.com', reply({ to: 'x', headers: ['Auto-Submitted: auto-replied'], body: 'I am away.\n' }), ext);
  t.is(vacation.code, 99);
  t.regex(vacation.stdout, /dropped: confirmation refused: automatic reply/);
  const bounce = await deliverQmail(h, '', reply({ to: 'x', body: 'Delivery failed.\n' }), ext);
  t.regex(bounce.stdout, /dropped: confirmation refused: automatic reply/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await pendingList(h)).length, 1);
  // The address still works for Bob himself.
  const ok = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.regex(ok.stdout, /confirmed/);
});

const automatic: [string, string[]][] = [
  ['Precedence: bulk', ['Precedence: bulk']],
  ['Precedence: junk with a parameter', ['Precedence: junk; x']],
  ['Precedence: list', ['Precedence: list']],
  ['X-Autoreply', ['X-Autoreply: yes']],
  ['X-Autorespond', ['X-Autorespond: Out of office']],
  ['a List-Id header', ['List-Id: <dev.lists.example>']],
  ['a List-Unsubscribe header', ['List-Unsubscribe: <mailto:leave@lists.example>']],
  ['a Mailing-List header', ['Mailing-List: contact dev-help@lists.example']],
  ['a delivery status report', ['MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=delivery-status; boundary="b"']],
  ['a read receipt', ['MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"']],
];

test('no kind of automatic answer confirms, whatever its sender; the address still works for the person', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  for (const [what, headers] of automatic) {
    const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x', headers, body: `${what}\n` }), ext);
    t.is(r.code, 99, what);
    t.regex(r.stdout, /^vouch: dropped: confirmation refused: automatic reply \(.+\) bob@example.com \(qmail\)\n$/, what);
  }
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await pendingList(h)).length, 1);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
  t.is(sm.sent().length, 1);
  t.regex((await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext)).stdout, /confirmed/);
});

// ---- what a confirmation may release and list

test('a confirm reply from a sender blacklisted by domain releases nothing and changes no list', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  t.is((await vouch(['blacklist', 'add', '@example.com'], { env: h.env })).code, 0);
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.is(r.code, 99);
  t.regex(r.stdout, /^vouch: dropped: blacklisted sender bob@example.com \(qmail\)\n$/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await pendingList(h)).length, 1);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
  t.is((await vouch(['blacklist', 'list'], { env: h.env })).stdout, '@example.com\n');
});

test('a confirm reply from a sender blacklisted exactly releases nothing, and the address still is not used', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  t.is((await vouch(['blacklist', 'add', 'bob@example.com'], { env: h.env })).code, 0);
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.regex(r.stdout, /dropped: blacklisted sender/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
  t.is((await vouch(['blacklist', 'list'], { env: h.env })).stdout, 'bob@example.com\n');
  // Unblocked again, Bob's reply confirms as it would have.
  t.is((await vouch(['blacklist', 'remove', 'bob@example.com'], { env: h.env })).code, 0);
  t.regex((await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext)).stdout, /confirmed .*released 1/);
});

test('a confirm reply through a forwarder never unblocks a held sender whose domain is blacklisted', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm, 'bob+news@example.com');
  t.is((await vouch(['blacklist', 'add', 'bob@example.com'], { env: h.env })).code, 0);
  // The reply's envelope is not blacklisted itself; the sender it confirms (bound as bob@example.com) is.
  const r = await deliverQmail(h, 'SRS0=HHH=TT=example.com=bob@forwarder.example', reply({ to: 'x' }), ext);
  t.regex(r.stdout, /dropped: blacklisted sender/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
});

test('a confirmation releases only what the sender could have sent: mail held from that key as spam or forged stays', async (t) => {
  const { h, sm } = await setup();
  const spam = message({ subject: 'Cheap pills', headers: ['X-Spam-Flag: YES'] });
  t.regex((await deliverQmail(h, 'bob@example.com', spam)).stdout, /challenge suppressed \(marked as spam\)/);
  const forged = message({ subject: 'Invoice', headers: ['Received-SPF: fail (mx.example.org: domain of bob@example.com does not designate 192.0.2.1)'] });
  t.regex((await deliverQmail(h, 'bob@example.com', forged)).stdout, /challenge suppressed \(SPF fail\)/);
  const { msg, ext } = await challenged(h, sm);
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.regex(r.stdout, /^vouch: confirmed [a-z2-7]{13}: released 1 from bob@example.com, sender whitelisted; 2 held as spam or forged kept \(qmail\)\n$/);
  const files = maildirFiles(h.maildir);
  t.is(files.length, 1);
  t.is(files[0]?.bytes.toString(), `${RP_BOB}${msg}`);
  t.deepEqual((await pendingList(h)).map((m) => m.subject).sort(), ['Cheap pills', 'Invoice']);
  // The user still decides on them.
  for (const m of await pendingList(h)) t.is((await vouch(['pending', 'release', m.id], { env: h.env })).code, 0);
  t.is(maildirFiles(h.maildir).length, 3);
});

// ---- the binding, both ways

const bindings: [string, string, string][] = [
  ['a challenge to a +tag address is confirmed from the plain address', 'carol+news@example.net', 'carol@example.net'],
  ['a challenge to an SRS0-forwarded sender is confirmed from the address inside', 'SRS0=HHH=TT=example.net=carol@forwarder.example', 'carol@example.net'],
  ['a challenge to an SRS1-forwarded sender is confirmed from the address inside', 'SRS1=HHH=fwd1.example==HHH=TT=example.net=carol@fwd2.example', 'carol@example.net'],
  ['a challenge to a +tag address is confirmed from another +tag', 'carol+news@example.net', 'carol+home@example.net'],
  ['a challenge to a plain address is still confirmed from it', 'carol@example.net', 'carol@example.net'],
];

for (const [what, challengedAs, repliesAs] of bindings) {
  test(what, async (t) => {
    const { h, sm } = await setup();
    const msg = message({ from: 'Carol <carol@example.net>', subject: 'Hello from Carol' });
    const r1 = await deliverQmail(h, challengedAs, msg);
    t.regex(r1.stdout, /challenge sent/);
    t.is(sm.sent()[0]?.argv.at(-1), challengedAs);
    const ext = await confirmExt(sm.sent()[0]?.raw ?? Buffer.alloc(0));
    const r2 = await deliverQmail(h, repliesAs, reply({ from: `Carol <${repliesAs}>`, to: 'x' }), ext);
    t.regex(r2.stdout, /confirmed [a-z2-7]{13}: released 1 from /);
    t.is(maildirFiles(h.maildir).length, 1);
    t.deepEqual(await pendingList(h), []);
  });
}

test('a confirmation from a +tag sender whitelists the address as held and its plain form, exactly', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm, 'bob+news@example.com');
  t.regex((await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext)).stdout, /confirmed/);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, 'bob+news@example.com\nbob@example.com\n');
});

// ---- list entries from mail are exact

test('a confirmed sender that looks like a pattern is whitelisted as that one address', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm, 'x-default@lists.example');
  t.regex((await deliverQmail(h, 'x-default@lists.example', reply({ to: 'x', from: 'x-default@lists.example' }), ext)).stdout, /confirmed/);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, 'x-default@lists.example\n');
  // Not every x-… sender of lists.example: another one is held as before.
  t.regex((await deliverQmail(h, 'x-other@lists.example', message({ from: 'x-other@lists.example' }))).stdout, /held .*unknown sender x-other@lists.example/);
  // The sender itself is found by its entry.
  t.regex((await deliverQmail(h, 'x-default@lists.example', message({ from: 'x-default@lists.example' }))).stdout, /delivered: whitelisted sender x-default@lists.example/);
});

// ---- real replies

/** Replies as mail programs write them (test/fixtures/challenge-replies/), and envelope senders
 * as the sender's MTA may rewrite them. */
const variants: [string, string, string][] = [
  ['a reply quoting the whole request', 'bob@example.com', 'reply-quoted.eml'],
  ['a reply with a changed subject and no quote', 'bob@example.com', 'reply-new-subject.eml'],
  ['a reply-all with Cc to the bare address and a third person', 'bob@example.com', 'reply-all.eml'],
  ['an HTML-only reply', 'bob@example.com', 'reply-html-only.eml'],
  ['a reply from a differently-cased sender', 'Bob@EXAMPLE.com', 'reply-quoted.eml'],
  ['a reply with a BATV-signed sender', 'prvs=1234abcd=bob@example.com', 'reply-quoted.eml'],
  ['a reply with an SRS-rewritten sender', 'SRS0=HHH=TT=example.com=bob@forwarder.example', 'reply-quoted.eml'],
  ['a reply from a +extension of the sender', 'bob+lists@example.com', 'reply-new-subject.eml'],
];

for (const [what, sender, file] of variants) {
  test(`${what} confirms and releases`, async (t) => {
    const { h, sm } = await setup();
    const { msg, ext } = await challenged(h, sm);
    const r = await deliverQmail(h, sender, fixture(`challenge-replies/${file}`), ext);
    t.is(r.code, 99);
    t.regex(r.stdout, /confirmed [a-z2-7]{13}: released 1 from bob@example.com, sender whitelisted/);
    const files = maildirFiles(h.maildir);
    t.is(files.length, 1);
    t.is(files[0]?.bytes.toString(), `${RP_BOB}${msg}`);
  });
}

test('reply-all: the copy that reaches the bare address first is held silently, then released with the rest', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm);
  const copy = fixture('challenge-replies/reply-all.eml');
  const bare = await deliverQmail(h, 'bob@example.com', copy);
  t.regex(bare.stdout, /held .*challenge suppressed \(sender already challenged recently\)/);
  const confirm = await deliverQmail(h, 'bob@example.com', copy, ext);
  t.regex(confirm.stdout, /released 2 from bob@example.com/);
  t.is(maildirFiles(h.maildir).length, 2);
  t.is(sm.sent().length, 1);
});

test('a BATV sender is challenged at the address it gave, and its plain form confirms', async (t) => {
  const { h, sm } = await setup();
  const { ext } = await challenged(h, sm, 'prvs=0123abcd=bob@example.com');
  t.deepEqual(sm.sent()[0]?.argv.at(-1), 'prvs=0123abcd=bob@example.com');
  const r = await deliverQmail(h, 'bob@example.com', reply({ to: 'x' }), ext);
  t.regex(r.stdout, /released 1 from bob@example.com/);
});

test('qmail-inject is run without -i (it knows no such option), with the null sender and --', async (t) => {
  const { h, sm } = await setup('qmail-inject');
  await challenged(h, sm);
  t.deepEqual(sm.sent()[0]?.argv, ['-f', '', '--', 'bob@example.com']);
});

test('Postfix: the loop works with "+" as the delimiter and exit 0', async (t) => {
  const h = await makeHome({ config: { identity: { delimiter: '+' } } });
  const sm = fakeSendmail(h, 'sendmail');
  const msg = message();
  const r = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com'), input: msg });
  t.is(r.code, 0);
  t.regex(r.stdout, /challenge sent \(postfix\)/);
  const raw = sm.sent()[0]?.raw ?? Buffer.alloc(0);
  const to = (await parseMail(raw)).replyTo?.value[0]?.address ?? '';
  t.regex(to, /^alice\+confirm-[a-z2-7]{13}\.[a-z2-7]{16}@example\.org$/);
  const ext = await confirmExt(raw, '+');
  const c = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com', ext), input: reply({ to }) });
  t.is(c.code, 0);
  t.regex(c.stdout, /confirmed .*released 1/);
  t.is(maildirFiles(h.maildir)[0]?.bytes.toString(), `${RP_BOB}${msg}`);
});

test('a sendmail failure leaves the message held and recorded as failed: no bounce, exit 99', async (t) => {
  const { h, sm } = await setup();
  sm.exitWith(111);
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 99);
  t.regex(r.stdout, /; challenge failed \(ESENDMAIL\) \(qmail\)\n$/);
  const held = await pendingList(h);
  t.is(held.length, 1);
  t.is(held[0]?.challenge, 'failed');
  t.is(held[0]?.challenge_note, 'ESENDMAIL');
});

test('a sendmail program that does not exist leaves the message held, never lost', async (t) => {
  const h = await makeHome();
  setConfig(h.dir, { send: { transport: 'sendmail', sendmail: '/nonexistent/qmail-inject' } });
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 99);
  t.regex(r.stdout, /challenge failed \(ESENDMAIL\)/);
  t.is((await pendingList(h)).length, 1);
});

test('the same message delivered twice (an MTA retry) is challenged once', async (t) => {
  const { h, sm } = await setup();
  const msg = message();
  await deliverQmail(h, 'bob@example.com', msg);
  const again = await deliverQmail(h, 'bob@example.com', msg);
  t.regex(again.stdout, /already held/);
  t.is(sm.sent().length, 1);
});

// ---- rate limits (the reason is recorded with the held message)

test('the per-domain hourly cap suppresses challenges to further senders of that domain', async (t) => {
  const { h, sm } = await setup();
  setConfig(h.dir, { challenge: { per_domain_hourly: 1 } });
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /challenge sent/);
  t.regex((await deliverQmail(h, 'carol@example.com', message({ from: 'carol@example.com' }))).stdout, /challenge suppressed \(hourly cap for the sender domain\)/);
  t.regex((await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net' }))).stdout, /challenge sent/);
  t.deepEqual(sm.sent().map((s) => s.argv.at(-1)), ['bob@example.com', 'dave@example.net']);
  const carol = (await pendingList(h)).find((m) => m.sender === 'carol@example.com');
  t.is(carol?.challenge, 'suppressed');
  t.is(carol?.challenge_note, 'hourly cap for the sender domain');
  const listed = await vouch(['pending', 'list'], { env: h.env });
  t.regex(listed.stdout, /carol@example\.com .*challenge suppressed: hourly cap for the sender domain/);
});

test('the global hourly cap suppresses challenges to everyone past it', async (t) => {
  const { h, sm } = await setup();
  setConfig(h.dir, { challenge: { global_hourly: 2 } });
  const senders = ['a@one.example', 'b@two.example', 'c@three.example'];
  const lines: string[] = [];
  for (const s of senders) lines.push((await deliverQmail(h, s, message({ from: s }))).stdout);
  t.regex(lines[0] ?? '', /challenge sent/);
  t.regex(lines[1] ?? '', /challenge sent/);
  t.regex(lines[2] ?? '', /challenge suppressed \(global hourly cap\)/);
  t.is(sm.sent().length, 2);
  t.is((await pendingList(h)).length, 3);
});

test('suppressed mail is still held, and a suppression rule beats the rate limit count', async (t) => {
  const { h, sm } = await setup();
  setConfig(h.dir, { challenge: { global_hourly: 1 } });
  const list = await deliverQmail(h, 'news@lists.example', message({ from: 'news@lists.example', headers: ['List-Id: <news.lists.example>'] }));
  t.regex(list.stdout, /challenge suppressed \(mailing list\)/);
  // The list message took no challenge slot: the next person is still challenged.
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /challenge sent/);
  t.is(sm.sent().length, 1);
  t.is((await pendingList(h)).length, 2);
});
