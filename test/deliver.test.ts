// `vouch deliver` spawned as qmail-local and Postfix local(8) would spawn it, in temp homes.
import test from 'ava';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  deliverQmail, makeHome, maildirFiles, message, pendingList, postfixEnv, qmailEnv, setConfig, vouch, type TestHome,
} from './helpers.js';

async function home(): Promise<TestHome> {
  const h = await makeHome({ config: { challenge: { enabled: false } } });
  const r = await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  if (r.code !== 0) throw new Error(r.stderr);
  await vouch(['blacklist', 'add', '@spam.test'], { env: h.env });
  return h;
}

test('qmail: a whitelisted sender is delivered with RPLINE and DTLINE in front, exit 99', async (t) => {
  const h = await home();
  const msg = message();
  const r = await deliverQmail(h, 'bob@example.com', msg);
  t.is(r.code, 99);
  t.regex(r.stdout, /^vouch: delivered: whitelisted sender bob@example.com \(qmail\)\n$/);
  const files = maildirFiles(h.maildir);
  t.is(files.length, 1);
  t.is(files[0]?.bytes.toString(), `Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n${msg}`);
  t.deepEqual(await pendingList(h), []);
});

test('qmail: an unknown sender is held, not delivered, exit 99', async (t) => {
  const h = await home();
  const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'Who am I' }));
  t.is(r.code, 99);
  t.regex(r.stdout, /^vouch: held [a-z2-7]{13}: unknown sender carol@example.net; challenge suppressed \(challenges are turned off\) \(qmail\)\n$/);
  t.deepEqual(maildirFiles(h.maildir), []);
  const held = await pendingList(h);
  t.is(held.length, 1);
  t.is(held[0]?.subject, 'Who am I');
  t.is(held[0]?.sender, 'carol@example.net');
});

test('qmail: a blacklisted sender is dropped; with blacklist = "junk" it is filed to .Junk', async (t) => {
  const h = await home();
  const r = await deliverQmail(h, 'x@spam.test', message());
  t.is(r.code, 99);
  t.regex(r.stdout, /dropped: blacklisted sender x@spam.test/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.deepEqual(await pendingList(h), []);
  setConfig(h.dir, { delivery: { blacklist: 'junk' } });
  const j = await deliverQmail(h, 'x@spam.test', message());
  t.is(j.code, 99);
  t.is(maildirFiles(join(h.maildir, '.Junk')).length, 1);
  t.is(readFileSync(join(h.maildir, '.Junk', 'maildirfolder'), 'utf8'), '');
});

test('the same message delivered twice (an MTA retry) is held once', async (t) => {
  const h = await home();
  const msg = message({ from: 'carol@example.net' });
  const a = await deliverQmail(h, 'carol@example.net', msg);
  const b = await deliverQmail(h, 'carol@example.net', msg);
  t.is(a.code, 99);
  t.is(b.code, 99);
  t.regex(b.stdout, /already held/);
  t.is((await pendingList(h)).length, 1);
});

test('a whitelisted message delivered twice with the same bytes is in the Maildir once', async (t) => {
  const h = await home();
  const msg = message();
  await deliverQmail(h, 'bob@example.com', msg);
  await deliverQmail(h, 'bob@example.com', msg);
  t.is(maildirFiles(h.maildir).length, 1);
});

test('a message that already carries our Delivered-To line is a loop: held silently', async (t) => {
  const h = await home();
  const r = await deliverQmail(h, 'bob@example.com', `Delivered-To: alice@example.org\n${message()}`);
  t.is(r.code, 99);
  t.regex(r.stdout, /held [a-z2-7]+: mail loop .*challenge suppressed \(mail loop\)/);
  t.deepEqual(maildirFiles(h.maildir), []);
});

test('Postfix: the environment is recognised, the lines are built, and success is exit 0', async (t) => {
  const h = await home();
  const msg = message();
  const r = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com'), input: msg });
  t.is(r.code, 0);
  t.regex(r.stdout, /delivered: whitelisted sender bob@example.com \(postfix\)/);
  t.is(maildirFiles(h.maildir)[0]?.bytes.toString(), `Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n${msg}`);
});

test('Postfix: a leading From_ line is dropped and lines Postfix prepended are not doubled', async (t) => {
  const h = await home();
  const msg = message();
  const input = `From bob@example.com  Mon Nov 23 10:00:00 2026\nDelivered-To: alice@example.org\n${msg}`;
  const r = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com'), input });
  t.is(r.code, 0);
  t.is(maildirFiles(h.maildir)[0]?.bytes.toString(), `Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n${msg}`);
});

test('--mta forces the exit codes of the MTA named', async (t) => {
  const h = await home();
  const r = await vouch(['deliver', '--mta', 'postfix'], { env: qmailEnv(h, 'bob@example.com'), input: message() });
  t.is(r.code, 0);
  t.regex(r.stdout, /\(postfix\)/);
});

test('a corrupt store is a temporary failure with one line and no path: 111 for qmail, 75 for Postfix', async (t) => {
  const h = await home();
  writeFileSync(join(h.dir, 'vouch.db'), Buffer.alloc(4096, 0x42));
  rmSync(join(h.dir, 'vouch.db-wal'), { force: true });
  rmSync(join(h.dir, 'vouch.db-shm'), { force: true });
  // An unknown sender: a whitelisted one is delivered from the lists map without the store.
  const q = await deliverQmail(h, 'carol@example.net', message());
  t.is(q.code, 111);
  t.is(q.stdout, 'vouch: cannot open the pending store (#4.3.0)\n');
  t.is(q.stderr, '');
  const p = await vouch(['deliver'], { env: postfixEnv(h, 'carol@example.net'), input: message() });
  t.is(p.code, 75);
  t.false(p.stdout.includes(h.dir));
  t.deepEqual(maildirFiles(h.maildir), []);
});

test('a broken config is a temporary failure naming no path or key', async (t) => {
  const h = await home();
  writeFileSync(join(h.dir, 'config.toml'), '[identity\naddress = "x"');
  const q = await deliverQmail(h, 'bob@example.com', message());
  t.is(q.code, 111);
  t.is(q.stdout, 'vouch: the configuration is not valid (#4.3.5)\n');
  const p = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com'), input: message() });
  t.is(p.code, 75);
});

test('a missing config is a temporary failure', async (t) => {
  const h = await home();
  rmSync(join(h.dir, 'config.toml'));
  const q = await deliverQmail(h, 'bob@example.com', message());
  t.is(q.code, 111);
  t.regex(q.stdout, /^vouch: .*\(#4\.3\.\d\)\n$/);
});

test('no delivery environment at all is a temporary failure, not a crash', async (t) => {
  const h = await home();
  const r = await vouch(['deliver'], { env: h.env, input: message() });
  t.is(r.code, 111);
  t.regex(r.stdout, /no qmail or Postfix delivery environment/);
});

test('a bad --mta value under Postfix still exits 75, never 1', async (t) => {
  const h = await home();
  const r = await vouch(['deliver', '--mta', 'exim'], { env: postfixEnv(h, 'bob@example.com'), input: message() });
  t.is(r.code, 75);
});

test('a missing Maildir is created on delivery', async (t) => {
  const h = await home();
  rmSync(h.maildir, { recursive: true, force: true });
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 99);
  t.is(maildirFiles(h.maildir).length, 1);
});

// ---- bad input: none of it may lose the message, exit 100 or crash

const oddMessages: [string, Buffer][] = [
  ['empty stdin', Buffer.alloc(0)],
  ['no header/body separator', Buffer.from('From: carol@example.net\nSubject: no body')],
  ['a 200 KB header line', Buffer.from(`Subject: ${'x'.repeat(200_000)}\nFrom: carol@example.net\n\nbody\n`)],
  ['NUL bytes and bare CR', Buffer.from('Subject: a\0b\rc\r\n\r\nbody\0\r\rend\n')],
  ['invalid UTF-8 and 8-bit headers', Buffer.concat([Buffer.from('Subject: '), Buffer.from([0xc3, 0x28, 0xe9, 0xff]), Buffer.from('\nFrom: '), Buffer.from([0xfe]), Buffer.from('\n\n'), Buffer.from([0x80, 0x81])])],
];

for (const [what, bytes] of oddMessages) {
  test(`bad input (${what}) from an unknown sender is held byte for byte`, async (t) => {
    const h = await home();
    const r = await deliverQmail(h, 'carol@example.net', bytes);
    t.is(r.code, 99, r.stdout);
    const held = await pendingList(h);
    t.is(held.length, 1);
    const raw = await vouch(['pending', 'show', '--raw', held[0]?.id ?? ''], { env: h.env });
    t.deepEqual(Buffer.from(raw.stdout, 'latin1').length, bytes.length);
    const shown = await vouch(['pending', 'show', held[0]?.id ?? ''], { env: h.env });
    t.is(shown.code, 0, shown.stderr);
  });

  test(`bad input (${what}) from a whitelisted sender is delivered byte for byte`, async (t) => {
    const h = await home();
    const r = await deliverQmail(h, 'bob@example.com', bytes);
    t.is(r.code, 99, r.stdout);
    const files = maildirFiles(h.maildir);
    t.deepEqual(files[0]?.bytes, Buffer.concat([Buffer.from('Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n'), bytes]));
  });
}

for (const sender of ['bob smith@example.com', '"bob"@example.com', 'bob@example.com\r\nX: y', '-oQ/tmp@example.com', '$(touch /tmp/pwned)@x.org']) {
  test(`a sender like ${JSON.stringify(sender)} is treated as unknown and held without a challenge`, async (t) => {
    const h = await home();
    setConfig(h.dir, { challenge: { enabled: true }, send: { transport: 'sendmail', sendmail: '/bin/false' } });
    const r = await deliverQmail(h, sender, message());
    t.is(r.code, 99);
    t.regex(r.stdout, /challenge suppressed/);
    t.false(r.stdout.includes('\r'));
    t.is(r.stdout.split('\n').length, 2);
    t.deepEqual(maildirFiles(h.maildir), []);
    t.is((await pendingList(h)).length, 1);
  });
}

test('procmail: the sender comes from the From_ line, the line is not stored, success is exit 0', async (t) => {
  const h = await home();
  const msg = message();
  const r = await vouch(['deliver', '--mta', 'procmail'], { env: h.env, input: `From bob@example.com  Mon Nov 23 10:00:00 2026\n${msg}` });
  t.is(r.code, 0);
  t.regex(r.stdout, /delivered: whitelisted sender bob@example.com \(procmail\)/);
  t.is(maildirFiles(h.maildir)[0]?.bytes.toString(), `Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n${msg}`);
});
