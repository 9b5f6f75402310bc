// `vouch send` as a mail client runs it, in front of a fake real sendmail that records its argv and
// stdin: what it passes on, what it whitelists (and not after a failed send), and the replies it
// then lets through.
import test from 'ava';
import { join } from 'node:path';
import { deliverQmail, makeHome, maildirFiles, pendingList, setConfig, vouch, type TestHome } from './helpers.js';
import { fakeSendmail, type FakeSendmail } from './fake-sendmail.js';
import { parseSendArgs, passThrough, qmailInjectArgs } from '../agent/send/argv.js';

const outgoing = (extra: string[] = [], id = '<m1.abc@example.org>') =>
  [
    'From: Alice <alice@example.org>',
    'To: Bob <bob@example.com>, "Team" <team@example.net>',
    'Cc: carol@example.net',
    'Bcc: dave@example.com',
    'Subject: Lunch?',
    'Date: Mon, 23 Nov 2026 09:00:00 +0000',
    ...(id ? [`Message-ID: ${id}`] : []),
    ...extra,
    '',
    'Shall we?',
    '.',
    'A line with a dot above.',
    '',
  ].join('\n');

async function setup(name = 'sendmail'): Promise<{ h: TestHome; sm: FakeSendmail }> {
  const h = await makeHome({ config: { challenge: { enabled: false } } });
  return { h, sm: fakeSendmail(h, name) };
}

async function whitelist(h: TestHome): Promise<string[]> {
  const r = await vouch(['whitelist', 'list'], { env: h.env });
  return r.stdout.split('\n').filter((l) => l !== '');
}

const reply = (opts: { from: string; inReplyTo?: string; references?: string; subject?: string }) =>
  [
    `From: ${opts.from}`,
    'To: alice@example.org',
    `Subject: ${opts.subject ?? 'Re: Lunch?'}`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <r${Math.random().toString(36).slice(2)}@example.com>`,
    ...(opts.inReplyTo ? [`In-Reply-To: ${opts.inReplyTo}`] : []),
    ...(opts.references ? [`References: ${opts.references}`] : []),
    '',
    'Sure.',
    '',
  ].join('\n');

test('mutt style: the argv and the message reach the real sendmail unchanged, and every recipient is whitelisted exactly', async (t) => {
  const { h, sm } = await setup();
  const msg = outgoing();
  const r = await vouch(['send', '-oem', '-oi', '--', 'bob@example.com', 'team@example.net', 'carol@example.net', 'dave@example.com'], { env: h.env, input: msg });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '');
  t.is(r.stderr, '');
  const sent = sm.sent();
  t.is(sent.length, 1);
  t.deepEqual(sent[0]?.argv, ['-oem', '-oi', '--', 'bob@example.com', 'team@example.net', 'carol@example.net', 'dave@example.com']);
  t.is(sent[0]?.raw.toString(), msg);
  t.deepEqual(await whitelist(h), ['bob@example.com', 'carol@example.net', 'dave@example.com', 'team@example.net']);
});

test('-t: the recipients come from To, Cc and Bcc, flags pass through as given, and the user is never whitelisted', async (t) => {
  const { h, sm } = await setup();
  const msg = outgoing(['Reply-To: alice-lists@example.org']).replace('Cc: carol@example.net', 'Cc: carol@example.net, Alice <ALICE@example.org>');
  const r = await vouch(['send', '-ti', '-F', 'Alice A', '-fother@example.org'], { env: h.env, input: msg });
  t.is(r.code, 0, r.stderr);
  t.deepEqual(sm.sent()[0]?.argv, ['-ti', '-F', 'Alice A', '-fother@example.org']);
  t.deepEqual(await whitelist(h), ['bob@example.com', 'carol@example.net', 'dave@example.com', 'team@example.net']);
});

test('a failed send exits with the real sendmail\'s code and whitelists nobody', async (t) => {
  const { h, sm } = await setup();
  sm.exitWith(75);
  const r = await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() });
  t.is(r.code, 75);
  t.is(sm.sent().length, 1);
  t.deepEqual(await whitelist(h), []);
  // And a reply to it is not recognised: the Message-ID was not recorded.
  const d = await deliverQmail(h, 'bob@example.com', reply({ from: 'bob@example.com', inReplyTo: '<m1.abc@example.org>' }));
  t.regex(d.stdout, /held/);
});

test('a real sendmail that cannot be run is EX_UNAVAILABLE, and nothing is whitelisted', async (t) => {
  const { h } = await setup();
  setConfig(h.dir, { send: { sendmail: '/nonexistent/sendmail' } });
  const r = await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() });
  t.is(r.code, 69);
  t.regex(r.stderr, /cannot run/);
  t.deepEqual(await whitelist(h), []);
});

test('a message without a Message-ID gets one in front (the only change), and replies to it are known', async (t) => {
  const { h, sm } = await setup();
  const msg = outgoing([], '');
  const r = await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: msg });
  t.is(r.code, 0, r.stderr);
  const raw = sm.sent()[0]?.raw.toString() ?? '';
  const m = /^Message-ID: <([^>]+@example\.org)>\n/.exec(raw);
  t.truthy(m);
  t.is(raw.slice(m?.[0].length), msg);
  const d = await deliverQmail(h, 'erin@example.com', reply({ from: 'erin@example.com', inReplyTo: `<${m?.[1]}>` }));
  t.regex(d.stdout, /delivered: reply to your mail erin@example.com/);
});

test('qmail-inject as the real sendmail gets the flags it knows: -f, -a or -h/-H, and --', async (t) => {
  const { h, sm } = await setup('qmail-inject');
  t.is((await vouch(['send', '-oi', '-oem', '-f', 'alice@example.org', '--', 'bob@example.com'], { env: h.env, input: outgoing() })).code, 0);
  t.is((await vouch(['send', '-t', '-i'], { env: h.env, input: outgoing() })).code, 0);
  t.is((await vouch(['send', '-bp'], { env: h.env })).code, 64);
  t.deepEqual(
    sm.sent().map((s) => s.argv),
    [['-f', 'alice@example.org', '-a', '--', 'bob@example.com'], ['-h', '--']],
  );
});

test('a mode that sends nothing of the user\'s (-bp) is passed to the real sendmail and learns nothing', async (t) => {
  const { h, sm } = await setup();
  const r = await vouch(['send', '-bp'], { env: h.env });
  t.is(r.code, 0);
  t.deepEqual(sm.sent()[0]?.argv, ['-bp']);
  t.deepEqual(await whitelist(h), []);
});

test('a reply naming a recorded Message-ID is delivered from an unknown sender; one naming an unknown id is held', async (t) => {
  const { h } = await setup();
  t.is((await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() })).code, 0);
  // A colleague's other address, replying in the thread.
  const a = await deliverQmail(h, 'bob.private@mail.example', reply({ from: 'Bob <bob.private@mail.example>', inReplyTo: '<m1.abc@example.org>' }));
  t.is(a.code, 99);
  t.regex(a.stdout, /delivered: reply to your mail bob\.private@mail\.example/);
  // References only, deep in a thread.
  const refs = Array.from({ length: 60 }, (_, i) => `<t${i}@lists.example>`);
  refs.splice(40, 0, '<m1.abc@example.org>');
  const b = await deliverQmail(h, 'frank@lists.example', reply({ from: 'frank@lists.example', references: refs.join(' ') }));
  t.regex(b.stdout, /delivered: reply to your mail/);
  const c = await deliverQmail(h, 'mallory@example.net', reply({ from: 'mallory@example.net', inReplyTo: '<never-sent@example.org>' }));
  t.regex(c.stdout, /held .*unknown sender/);
  t.is(maildirFiles(h.maildir).length, 2);
  t.is((await pendingList(h)).length, 1);
  // Not whitelisted by default.
  t.false((await whitelist(h)).includes('bob.private@mail.example'));
});

test('a blacklisted sender replying to your mail is delivered (step 3 comes before the blacklist), even with blacklist = "junk"', async (t) => {
  const { h } = await setup();
  setConfig(h.dir, { delivery: { blacklist: 'junk' } });
  await vouch(['blacklist', 'add', '@noisy.example'], { env: h.env });
  t.is((await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() })).code, 0);
  const a = await deliverQmail(h, 'gil@noisy.example', reply({ from: 'gil@noisy.example', inReplyTo: '<m1.abc@example.org>' }));
  t.regex(a.stdout, /delivered: reply to your mail gil@noisy\.example/);
  const b = await deliverQmail(h, 'gil@noisy.example', reply({ from: 'gil@noisy.example', subject: 'spam' }));
  t.regex(b.stdout, /filed to \.Junk: blacklisted sender/);
  // Still blacklisted: a reply never lifts the blacklist.
  t.true((await vouch(['blacklist', 'list'], { env: h.env })).stdout.includes('@noisy.example'));
});

test('with send.whitelist_replies the replier is whitelisted, but never an automatic reply', async (t) => {
  const { h } = await setup();
  setConfig(h.dir, { send: { whitelist_replies: true } });
  t.is((await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() })).code, 0);
  const a = await deliverQmail(h, 'hana@example.net', reply({ from: 'hana@example.net', inReplyTo: '<m1.abc@example.org>' }));
  t.regex(a.stdout, /delivered: reply to your mail hana@example\.net, sender whitelisted/);
  const auto = reply({ from: 'ivan@example.net', inReplyTo: '<m1.abc@example.org>' }).replace('Subject:', 'Auto-Submitted: auto-replied\nSubject:');
  const b = await deliverQmail(h, 'ivan@example.net', auto);
  t.regex(b.stdout, /delivered: reply to your mail ivan@example\.net \(/);
  const list = await whitelist(h);
  t.true(list.includes('hana@example.net'));
  t.false(list.includes('ivan@example.net'));
});

test('send.tag_sender: one recipient gets a sender- envelope, several a dated- one; "from" puts it in From: too', async (t) => {
  const { h, sm } = await setup();
  setConfig(h.dir, { send: { tag_sender: 'envelope' } });
  const one = outgoing().replace(/^To: .*\n/m, 'To: bob@example.com\n').replace(/^Cc: .*\n/m, '').replace(/^Bcc: .*\n/m, '');
  t.is((await vouch(['send', '-i', '-f', 'alice@example.org', 'bob@example.com'], { env: h.env, input: one })).code, 0);
  t.is((await vouch(['send', '-t'], { env: h.env, input: outgoing() })).code, 0);
  setConfig(h.dir, { send: { tag_sender: 'from' } });
  t.is((await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: one })).code, 0);
  const [a, b, c] = sm.sent();
  t.deepEqual(a?.argv.slice(0, 2), ['-i', '-f']);
  t.regex(a?.argv[2] ?? '', /^alice-sender-[a-z2-7]{16}@example\.org$/);
  t.is(a?.raw.toString(), one);
  t.is(b?.argv[0], '-f');
  t.regex(b?.argv[1] ?? '', /^alice-dated-\d+\.[a-z2-7]{16}@example\.org$/);
  t.deepEqual(b?.argv.slice(2), ['-t']);
  const tagged = c?.argv[1] ?? '';
  t.regex(tagged, /^alice-sender-/);
  t.is(c?.raw.toString(), one.replace('From: Alice <alice@example.org>', `From: Alice <${tagged}>`));
  // Bob's reply to the tagged address is accepted by the tag itself.
  const ext = tagged.slice('alice-'.length, tagged.indexOf('@'));
  const d = await deliverQmail(h, 'bob@example.com', reply({ from: 'bob@example.com' }), ext);
  t.regex(d.stdout, /delivered: (valid sender address|whitelisted sender)/);
});

// The argv reader, as a table: argv → what vouch learns from it.
const table: [string, string[], Partial<ReturnType<typeof parseSendArgs>>][] = [
  ['mutt', ['-oem', '-oi', '--', 'a@x.org', 'b@y.org'], { mode: 'send', extract: false, recipients: ['a@x.org', 'b@y.org'] }],
  ['git send-email', ['-i', 'a@x.org'], { extract: false, recipients: ['a@x.org'] }],
  ['-t clustered with -i', ['-ti'], { extract: true, recipients: [] }],
  ['-f separate', ['-f', 'me@x.org', 'a@x.org'], { sender: { value: 'me@x.org', index: 1, attached: false }, recipients: ['a@x.org'] }],
  ['-f attached', ['-fme@x.org', 'a@x.org'], { sender: { value: 'me@x.org', index: 0, attached: true } }],
  ['-r is -f', ['-r', 'me@x.org'], { sender: { value: 'me@x.org', index: 1, attached: false } }],
  ['-F takes a value', ['-F', 'Alice A', 'a@x.org'], { fullName: 'Alice A', recipients: ['a@x.org'] }],
  ['-bm is sending', ['-bm', 'a@x.org'], { mode: 'send' }],
  ['-bs is another mode', ['-bs'], { mode: 'other' }],
  ['-q is another mode', ['-q1h'], { mode: 'other' }],
  ['-N and -R take values', ['-N', 'never', '-R', 'hdrs', 'a@x.org'], { recipients: ['a@x.org'] }],
  ['an option after the recipients stays where it is', ['a@x.org', '-oi'], { recipients: ['a@x.org'], late: ['-oi'] }],
  ['after -- a dash is a recipient', ['--', '-weird@x.org'], { recipients: ['-weird@x.org'] }],
];
for (const [what, argv, want] of table) {
  test(`send argv: ${what}`, (t) => {
    const got = parseSendArgs(argv);
    for (const [k, v] of Object.entries(want)) t.deepEqual(got[k as keyof typeof got], v, k);
  });
}

test('send argv: an option missing its value is a usage error (64)', async (t) => {
  t.throws(() => parseSendArgs(['-i', '-f']), { message: /-f needs a value/ });
  const { h, sm } = await setup();
  const r = await vouch(['send', '-i', '-f'], { env: h.env, input: outgoing() });
  t.is(r.code, 64);
  t.is(sm.sent().length, 0);
});

test('send argv: the tagged sender replaces -f in place, or comes first', (t) => {
  t.deepEqual(passThrough(['-i', '-f', 'a@x', 'b@y'], parseSendArgs(['-i', '-f', 'a@x', 'b@y']), 'T@x'), ['-i', '-f', 'T@x', 'b@y']);
  t.deepEqual(passThrough(['-ifa@x', 'b@y'], parseSendArgs(['-ifa@x', 'b@y']), 'T@x'), ['-ifT@x', 'b@y']);
  t.deepEqual(passThrough(['-i', 'b@y'], parseSendArgs(['-i', 'b@y']), 'T@x'), ['-f', 'T@x', '-i', 'b@y']);
  t.deepEqual(passThrough(['-i', 'b@y'], parseSendArgs(['-i', 'b@y']), undefined), ['-i', 'b@y']);
  t.deepEqual(qmailInjectArgs(parseSendArgs(['-t', '-F', 'A B', 'c@z']), undefined), { argv: ['-H', '--', 'c@z'], env: { QMAILNAME: 'A B' } });
});

test('recorded Message-IDs expire after send.reply_lifetime: expire forgets them, and a late reply is held', async (t) => {
  const { h } = await setup();
  t.is((await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() })).code, 0);
  const { Store } = await import('../agent/store/store.js');
  const { loadConfig } = await import('../agent/home/config.js');
  const { expire } = await import('../agent/release/actions.js');
  const config = loadConfig(h.dir, h.env);
  const store = await Store.open(join(h.dir, 'vouch.db'));
  try {
    t.deepEqual(await store.knownOutgoing(['m1.abc@example.org', 'other@x']), [{ id: 'm1.abc@example.org', kind: 'sent' }]);
    // Within the lifetime (180 days by default) it stays.
    t.is(await expire(store, config, Date.now() + 179 * 86_400_000), '0 expired');
    t.is((await store.knownOutgoing(['m1.abc@example.org'])).length, 1);
    t.is(await expire(store, config, Date.now() + 181 * 86_400_000), '0 expired, 1 sent Message-ID(s) forgotten');
    t.deepEqual(await store.knownOutgoing(['m1.abc@example.org']), []);
  } finally {
    await store.close();
  }
  const d = await deliverQmail(h, 'bob.private@mail.example', reply({ from: 'bob.private@mail.example', inReplyTo: '<m1.abc@example.org>' }));
  t.regex(d.stdout, /held .*unknown sender/);
});

test('recipients are whitelisted as exact addresses, never as patterns: *@domain and prefix- forms stay literal', async (t) => {
  const { h } = await setup();
  const msg = outgoing().replace(/^To: .*$/m, 'To: "*"@example.com, team-@example.net').replace(/^Cc: .*\n/m, '').replace(/^Bcc: .*\n/m, '');
  t.is((await vouch(['send', '-t'], { env: h.env, input: msg })).code, 0);
  const a = await deliverQmail(h, 'anyone@example.com', reply({ from: 'anyone@example.com' }));
  t.regex(a.stdout, /held .*unknown sender anyone@example\.com/);
  const b = await deliverQmail(h, 'team-x@example.net', reply({ from: 'team-x@example.net' }));
  t.regex(b.stdout, /held .*unknown sender team-x@example\.net/);
  const c = await deliverQmail(h, 'team-@example.net', reply({ from: 'team-@example.net' }));
  t.regex(c.stdout, /delivered: whitelisted sender team-@example\.net/);
});

test('the added Message-ID follows the message\'s own line ends; an existing one is kept as it is', async (t) => {
  const { ensureMessageId } = await import('../agent/send/send.js');
  const { readHeaders } = await import('../agent/mail/header.js');
  const crlf = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const a = ensureMessageId(crlf, readHeaders(crlf), 'example.org', 0);
  t.regex(a.raw.toString(), /^Message-ID: <0\.[0-9a-f]{18}@example\.org>\r\nSubject: x\r\n/);
  const have = Buffer.from('Message-ID:\n <kept@x.org>\nSubject: x\n\nbody\n');
  const b = ensureMessageId(have, readHeaders(have), 'example.org', 0);
  t.is(b.raw, have);
  t.is(b.id, 'kept@x.org');
});

test('From: is rewritten only where it holds the user\'s own address, case-insensitively, folded lines too', async (t) => {
  const { rewriteFrom } = await import('../agent/send/send.js');
  const T = 'alice-sender-abc@example.org';
  const cases: [string, string][] = [
    ['From: Alice <Alice@Example.org>\nTo: bob@x\n\nFrom: alice@example.org in the body\n', `From: Alice <${T}>\nTo: bob@x\n\nFrom: alice@example.org in the body\n`],
    ['From: "Alice"\n <alice@example.org>\n\nb\n', `From: "Alice"\n <${T}>\n\nb\n`],
    ['From: malice@example.org\nReply-To: alice@example.org\n\nb\n', 'From: malice@example.org\nReply-To: alice@example.org\n\nb\n'],
    ['From: alice@example.org.evil\n\nb\n', 'From: alice@example.org.evil\n\nb\n'],
  ];
  for (const [input, want] of cases) t.is(rewriteFrom(Buffer.from(input), 'alice@example.org', T).toString(), want);
});

test('--home works before and right after `send`, as for every command', async (t) => {
  const { h, sm } = await setup();
  const env = { HOME: h.env['HOME'] ?? '', USER: 'alice' };
  t.is((await vouch(['--home', h.dir, 'send', '-i', 'bob@example.com'], { env, input: outgoing() })).code, 0);
  t.is((await vouch(['send', `--home=${h.dir}`, '-i', 'carol@example.net'], { env, input: outgoing() })).code, 0);
  t.deepEqual(sm.sent().map((s) => s.argv), [['-i', 'bob@example.com'], ['-i', 'carol@example.net']]);
});

test('send.sendmail pointing back at vouch send is refused (EX_CONFIG), not run in a loop', async (t) => {
  const { h } = await setup();
  const { writeFileSync, chmodSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  const { CLI } = await import('./helpers.js');
  const wrapper = join(dirname(h.dir), 'bin', 'vouch-sendmail');
  writeFileSync(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${CLI}' send "$@"\n`);
  chmodSync(wrapper, 0o755);
  setConfig(h.dir, { send: { sendmail: wrapper } });
  const r = await vouch(['send', '-i', 'bob@example.com'], { env: h.env, input: outgoing() });
  t.is(r.code, 78);
  t.regex(r.stderr, /send\.sendmail runs vouch send again/);
  t.deepEqual(await whitelist(h), []);
});
