// `vouch whitelist learn` on a Maildir and an mbox of sent mail: recipients whitelisted exactly,
// with counts; only header blocks read; the user's own addresses and blacklisted ones left alone.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeHome, vouch } from './helpers.js';
import { progressBar } from '../agent/send/learn.js';

const sent = (to: string, extra: string[] = [], body = 'Hello.\n') =>
  ['From: Alice <alice@example.org>', `To: ${to}`, ...extra, 'Subject: hi', 'Message-ID: <x@example.org>', '', body].join('\n');

async function whitelist(env: NodeJS.ProcessEnv): Promise<string[]> {
  return (await vouch(['whitelist', 'list'], { env })).stdout.split('\n').filter((l) => l !== '');
}

test('a Maildir of sent mail: every To, Cc and Bcc recipient whitelisted exactly, with counts, never the user', async (t) => {
  const h = await makeHome();
  const md = join(h.user, 'Maildir', '.Sent');
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
  writeFileSync(join(md, 'cur', '1.a:2,S'), sent('Bob <Bob@Example.com>', ['Cc: carol@example.net, alice@example.org']));
  writeFileSync(join(md, 'cur', '2.a:2,S'), sent('bob@example.com', ['Bcc: "Dave D." <dave@example.com>']));
  writeFileSync(join(md, 'new', '3.a'), sent('undisclosed-recipients:;', ['Bcc: bob@example.com, alice-lists@example.org'], 'To: eve@evil.example\n'));
  writeFileSync(join(md, 'tmp', '4.a'), sent('tmp@example.com'));
  const r = await vouch(['whitelist', 'learn', md], { env: h.env });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^ {5}3 {2}bob@example\.com$/m);
  t.regex(r.stdout, /^ {5}1 {2}carol@example\.net$/m);
  t.regex(r.stdout, /3 message\(s\) read; 3 recipient\(s\) whitelisted: 3 new, 0 already there/);
  t.is(r.stderr, '');
  t.deepEqual(await whitelist(h.env), ['bob@example.com', 'carol@example.net', 'dave@example.com']);
  // Again: nothing new.
  const again = await vouch(['whitelist', 'learn', md], { env: h.env });
  t.regex(again.stdout, /3 new|0 new, 3 already there/);
  t.regex(again.stdout, /0 new, 3 already there/);
});

test('an mbox of sent mail: split at From lines after an empty line, bodies never read as headers; a blacklisted recipient stays blacklisted', async (t) => {
  const h = await makeHome();
  await vouch(['blacklist', 'add', 'mallory@example.net'], { env: h.env });
  const mbox = join(h.user, 'sent.mbox');
  const msgs = [
    sent('frank@example.com', [], 'Hi,\nFrom here on,\n\n>From the top\nTo: nobody@evil.example\n'),
    sent('grace@example.com, mallory@example.net'),
    sent('frank@example.com', ['Cc: heidi@example.com']),
  ];
  writeFileSync(mbox, msgs.map((m) => `From alice@example.org Mon Nov 23 09:00:00 2026\n${m}\n`).join(''));
  const dry = await vouch(['whitelist', 'learn', '--dry-run', mbox], { env: h.env });
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, /3 message\(s\) read; 3 recipient\(s\) would be whitelisted \(dry run: nothing changed\); 1 blacklisted, left so/);
  t.deepEqual(await whitelist(h.env), []);
  const r = await vouch(['whitelist', 'learn', mbox], { env: h.env });
  t.regex(r.stdout, /^ {5}2 {2}frank@example\.com$/m);
  t.deepEqual(await whitelist(h.env), ['frank@example.com', 'grace@example.com', 'heidi@example.com']);
  t.true((await vouch(['blacklist', 'list'], { env: h.env })).stdout.includes('mallory@example.net'));
});

test('a path that is not there is a usage error naming it', async (t) => {
  const h = await makeHome();
  const r = await vouch(['whitelist', 'learn', join(h.user, 'nope')], { env: h.env });
  t.is(r.code, 2);
  t.regex(r.stderr, /cannot read .*nope: ENOENT/);
});

test('the progress bar draws at most every 100 ms, always the last step, and clears itself', (t) => {
  const out: string[] = [];
  let clock = 0;
  const bar = progressBar((s) => out.push(s), () => clock);
  bar.progress(10, 100);
  clock = 50;
  bar.progress(20, 100);
  clock = 60;
  bar.progress(100, 100);
  bar.end();
  t.deepEqual(out, [`\r[###${'.'.repeat(27)}]  10%`, `\r[${'#'.repeat(30)}] 100%`, '\r\x1b[K']);
});
