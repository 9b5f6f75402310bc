// The classifier with Debian's real bogofilter: trained from generated mailboxes through
// `vouch learn`, then asked by `vouch deliver` before a challenge; the learning queue the user's
// decisions fill; and stand-ins for a classifier that hangs, crashes or prints garbage.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { corpus, mbox, type Generated } from './corpus.js';
import { fakeSendmail } from './fake-sendmail.js';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, qmailEnv, setConfig, vouch, type TestHome } from './helpers.js';
import { Store } from '../agent/store/store.js';
import { applyQueue } from '../agent/classify/learn.js';
import { loadConfig } from '../agent/home/config.js';

// Debian's bogofilter is a need of the suite (test/needs.txt): never skipped for want of it.
const real = test;

/** The word list's message counts (bogoutil), spam and ham. */
function counts(wordlists: string): { spam: number; ham: number } {
  const r = spawnSync('bogoutil', ['-w', wordlists, '.MSG_COUNT'], { encoding: 'utf8' });
  const m = /\.MSG_COUNT\s+(\d+)\s+(\d+)/.exec(r.stdout);
  return { spam: Number(m?.[1] ?? 0), ham: Number(m?.[2] ?? 0) };
}

function writeMaildir(dir: string, messages: readonly Generated[]): void {
  for (const s of ['cur', 'new', 'tmp']) mkdirSync(join(dir, s), { recursive: true });
  messages.forEach((m, i) => writeFileSync(join(dir, i % 3 === 0 ? 'new' : 'cur', `${1_700_000_000 + i}.M${i}P7.test${i % 3 === 0 ? '' : ':2,S'}`), m.bytes));
}

async function trained(h: TestHome, n = 150): Promise<string> {
  const all = corpus(3, n);
  const inbox = join(h.user, 'inbox');
  writeMaildir(inbox, all.filter((m) => m.kind === 'ham'));
  const junk = join(h.user, 'junk.mbox');
  writeFileSync(junk, mbox(all.filter((m) => m.kind === 'spam')));
  const r = await vouch(['learn', '--ham', inbox, '--spam', junk], { env: h.env, timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`vouch learn failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

real('trained on generated ham and spam, spam-like mail from an unknown sender is held without a challenge and ham-like mail is challenged', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  const out = await trained(h);
  t.regex(out, /^bootstrap: 150 ham, 150 spam learned \([\d.]+ s\)$/m);
  const wl = join(h.dir, 'bogofilter');
  t.deepEqual(counts(wl), { spam: 150, ham: 150 });
  // The word list is private, as everything in the home.
  t.is(statSync(wl).mode & 0o777, 0o700);
  for (const f of readdirSync(wl)) t.is(statSync(join(wl, f)).mode & 0o777, 0o600, f);

  // New mail, none of it seen in training (another seed), none of it disguised.
  const fresh = corpus(41, 6, 0);
  // Each from a server of its own (TCPREMOTEIP, as tcpserver sets it); the first spam's server
  // also carried a whitelisted friend's mail before.
  const ipOf = (i: number) => `192.0.2.${100 + i}`;
  const shared = fresh.findIndex((m) => m.kind === 'spam');
  await vouch(['whitelist', 'add', 'friend@friends.example'], { env: h.env });
  const friendly = await vouch(['deliver'], { env: { ...qmailEnv(h, 'friend@friends.example'), TCPREMOTEIP: ipOf(shared) }, input: message({ from: 'friend@friends.example' }) });
  t.regex(friendly.stdout, /delivered: whitelisted sender/);
  for (const [i, m] of fresh.entries()) {
    const r = await vouch(['deliver'], { env: { ...qmailEnv(h, m.sender), TCPREMOTEIP: ipOf(i) }, input: m.bytes });
    t.is(r.code, 99, r.stdout);
    if (m.kind === 'spam') t.regex(r.stdout, /; challenge suppressed \(classifier: spam (0\.9\d|1\.00)\)/);
    else t.regex(r.stdout, /; challenge sent/);
  }
  t.is(sm.sent().length, 6, 'one challenge per ham message, none for spam');
  t.deepEqual(sm.sent().map((s) => s.argv[s.argv.length - 1]).sort(), fresh.filter((m) => m.kind === 'ham').map((m) => m.sender).sort());
  const held = await pendingList(h);
  t.is(held.length, 12, 'spam is held, never dropped');
  for (const m of held as unknown as { sender: string; challenge: string; challenge_note: string; classifier: { verdict: string; score: number } }[]) {
    const kind = fresh.find((f) => f.sender === m.sender)?.kind ?? 'none';
    t.is(m.classifier.verdict, kind, m.sender);
    t.is(m.challenge, kind === 'spam' ? 'suppressed' : 'sent');
    if (kind === 'spam') t.true(m.classifier.score >= 0.99);
  }
  // pending list and show name the verdict and score.
  const spamId = (held as { id: string; challenge: string }[]).find((m) => m.challenge === 'suppressed')?.id ?? '';
  const show = await vouch(['pending', 'show', spamId], { env: h.env });
  t.regex(show.stdout, /^Classifier: spam (0\.9\d|1\.00)$/m);
  const list = await vouch(['pending', 'list'], { env: h.env });
  t.regex(list.stdout, /challenge suppressed: classifier: spam/);
  t.regex(list.stdout, /challenge sent; classifier ham 0\.\d\d\]/);
  // The spam verdict is a late verdict: the spam's servers, and only theirs, are on the local blocklist.
  const blocked = (await vouch(['blocklist', 'list'], { env: h.env })).stdout;
  for (const [i, m] of fresh.entries()) {
    if (i === shared) t.false(blocked.includes(`${ipOf(i)}/`), 'a server whitelisted mail came from');
    else if (m.kind === 'spam') t.regex(blocked, new RegExp(`^${ipOf(i).replace(/\./g, '\\.')}/32 .*classifier: spam`, 'm'));
    else t.false(blocked.includes(`${ipOf(i)}/`), m.sender);
  }
});

real('spam held by the classifier is not released by a confirmation from its sender; the rest of that sender is', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  await trained(h);
  const spam = corpus(41, 6, 0).find((m) => m.kind === 'spam');
  if (!spam) throw new Error('no spam');
  const a = await deliverQmail(h, spam.sender, spam.bytes);
  t.regex(a.stdout, /classifier: spam/);
  // The same sender then writes like a person and is challenged; the reply confirms.
  const b = await deliverQmail(h, spam.sender, message({ from: spam.sender, subject: 'Re: meeting on Monday', body: 'Hi Anna,\nCan we move our meeting on Monday to the afternoon?\nThanks for the notes from yesterday.\n' }));
  t.regex(b.stdout, /challenge sent/);
  const { confirmExt, reply } = await import('./fake-sendmail.js');
  const ext = await confirmExt(sm.sent()[0]?.raw ?? Buffer.alloc(0));
  const c = await deliverQmail(h, spam.sender, reply({ from: spam.sender, to: 'x' }), ext);
  t.regex(c.stdout, /confirmed .*: released 1 from/);
  t.is(maildirFiles(h.maildir).length, 1);
  const left = await pendingList(h);
  t.is(left.length, 1);
  t.regex(left[0]?.challenge_note ?? '', /^classifier: spam/);
});

real('each decision is learned once: release teaches ham, delete with blacklist spam, a second run nothing', async (t) => {
  const h = await makeHome();
  fakeSendmail(h);
  const wl = join(h.dir, 'bogofilter');
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'lunch', body: 'Lunch on Friday?\n' }));
  await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net', subject: 'prize', body: 'You won a prize, send your bank details.\n' }));
  await deliverQmail(h, 'erin@example.net', message({ from: 'erin@example.net', subject: 'hello', body: 'Just deleted, no opinion.\n' }));
  const held = await pendingList(h);
  const id = (s: string) => held.find((m) => m.sender === s)?.id ?? '';
  t.is((await vouch(['pending', 'release', id('carol@example.net')], { env: h.env })).code, 0);
  t.is((await vouch(['pending', 'delete', '--blacklist', id('dave@example.net')], { env: h.env })).code, 0);
  t.is((await vouch(['pending', 'delete', id('erin@example.net')], { env: h.env })).code, 0);
  // Nothing is learned inside a decision: only `vouch learn` runs bogofilter.
  t.false(existsSync(join(wl, 'wordlist.db')));
  const first = await vouch(['learn'], { env: h.env });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /^learning queue: 1 ham, 1 spam learned \([\d.]+ s\)\n$/);
  t.deepEqual(counts(wl), { spam: 1, ham: 1 });
  const again = await vouch(['learn'], { env: h.env });
  t.regex(again.stdout, /^learning queue: 0 ham, 0 spam learned/);
  t.deepEqual(counts(wl), { spam: 1, ham: 1 }, 'never learned twice');
});

real('a later decision that contradicts an earlier one unlearns it first, in the queue and in a bootstrap', async (t) => {
  const h = await makeHome();
  const config = loadConfig(h.dir, h.env);
  const wl = config.classifier.wordlists;
  const bytes = Buffer.from(message({ from: 'frank@example.net', subject: 'both ways', body: 'Ambiguous words here.\n' }));
  const store = await Store.open(join(h.dir, 'vouch.db'));
  try {
    await store.queueLearning('held:test', 'spam', bytes, 1);
    t.like(await applyQueue(store, config.classifier, h.dir, 2), { ham: 0, spam: 1, unlearned: 0 });
    t.deepEqual(counts(wl), { spam: 1, ham: 0 });
    await store.queueLearning('held:test', 'ham', bytes, 3);
    t.like(await applyQueue(store, config.classifier, h.dir, 4), { ham: 1, spam: 0, unlearned: 1 });
    t.deepEqual(counts(wl), { spam: 0, ham: 1 });
    // The same decision again changes nothing.
    await store.queueLearning('held:test', 'ham', bytes, 5);
    t.like(await applyQueue(store, config.classifier, h.dir, 6), { ham: 0, spam: 0, unlearned: 0 });
    t.deepEqual(counts(wl), { spam: 0, ham: 1 });
  } finally {
    await store.close();
  }
  // A bootstrap: the folder learned as ham, then named as spam, then as spam again.
  const dir = join(h.user, 'eml');
  mkdirSync(dir);
  corpus(5, 3).forEach((m, i) => writeFileSync(join(dir, `${i}.eml`), m.bytes));
  const a = await vouch(['learn', '--ham', dir], { env: h.env });
  t.regex(a.stdout, /^bootstrap: 6 ham, 0 spam learned/m);
  t.deepEqual(counts(wl), { spam: 0, ham: 7 });
  const b = await vouch(['learn', '--spam', dir], { env: h.env });
  t.regex(b.stdout, /^bootstrap: 0 ham, 6 spam learned, 6 earlier verdict\(s\) unlearned/m);
  t.deepEqual(counts(wl), { spam: 6, ham: 1 });
  const c = await vouch(['learn', '--spam', dir], { env: h.env });
  t.regex(c.stdout, /^bootstrap: 0 ham, 0 spam learned, 6 already learned/m);
  t.deepEqual(counts(wl), { spam: 6, ham: 1 });
});

real('expired mail whose challenge went unanswered is learned as spam by vouch expire; silently held mail is not', async (t) => {
  const h = await makeHome({ config: { pending: { lifetime: '1s' } } });
  fakeSendmail(h);
  await deliverQmail(h, 'gina@example.net', message({ from: 'gina@example.net' }));
  await deliverQmail(h, 'noreply@example.net', message({ from: 'noreply@example.net' }));
  await new Promise((r) => setTimeout(r, 1100));
  const r = await vouch(['expire'], { env: h.env });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^2 expired\nlearning queue: 0 ham, 1 spam learned/);
  t.deepEqual(counts(join(h.dir, 'bogofilter')), { spam: 1, ham: 0 });
  setConfig(h.dir, { classifier: { learn_expired: false } });
  await deliverQmail(h, 'hank@example.net', message({ from: 'hank@example.net' }));
  await new Promise((res) => setTimeout(res, 1100));
  t.is((await vouch(['expire'], { env: h.env })).stdout, '1 expired\n');
});

real('whitelisted deliveries leave ham samples in the home (never the store) when configured, learned by vouch learn', async (t) => {
  const h = await makeHome({ config: { classifier: { learn_whitelisted: 1 } } });
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.regex(r.stdout, /delivered: whitelisted/);
  const q = join(h.dir, 'learn.queue');
  const files = readdirSync(q);
  t.is(files.length, 1);
  t.is(statSync(join(q, files[0] ?? '')).mode & 0o777, 0o600);
  const l = await vouch(['learn'], { env: h.env });
  t.regex(l.stdout, /^learning queue: 1 ham, 0 spam learned/);
  t.deepEqual(readdirSync(q), []);
  t.deepEqual(counts(join(h.dir, 'bogofilter')), { spam: 0, ham: 1 });
  // Off by default.
  const d = await makeHome();
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: d.env });
  await deliverQmail(d, 'bob@example.com', message());
  t.false(existsSync(join(d.dir, 'learn.queue')));
});

real('an mbox, a Maildir and a folder of .eml files are all read, and From_ lines in bodies survive', async (t) => {
  const h = await makeHome();
  const msgs = corpus(9, 4);
  const box = join(h.user, 'box.mbox');
  const tricky = Buffer.from('From: x@example.net\nSubject: quoting\n\nFrom here on the line starts with From.\n>From quoted already.\n');
  writeFileSync(box, mbox([...msgs.slice(0, 4), { kind: 'ham', sender: 'x@example.net', bytes: tricky }]));
  const md = join(h.user, 'Maildir2');
  writeMaildir(md, msgs.slice(4, 6));
  const eml = join(h.user, 'emls');
  mkdirSync(eml);
  writeFileSync(join(eml, 'a.eml'), msgs[6]?.bytes ?? '');
  writeFileSync(join(eml, 'b.eml'), msgs[7]?.bytes ?? '');
  const r = await vouch(['learn', '--ham', box, md, '--spam', eml], { env: h.env });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^bootstrap: 7 ham, 2 spam learned/m);
  // The bootstrap keyed the mbox's messages by their own bytes: the tricky one, given again as an
  // .eml file, is recognised (its >From line unquoted exactly once).
  const again = join(h.user, 'again');
  mkdirSync(again);
  writeFileSync(join(again, 'x.eml'), tricky);
  t.regex((await vouch(['learn', '--ham', again], { env: h.env })).stdout, /0 ham, 0 spam learned, 1 already learned/);
});

real('vouch learn refuses a path that does not exist and says which', async (t) => {
  const h = await makeHome();
  const r = await vouch(['learn', '--ham', '/nonexistent/Maildir'], { env: h.env });
  t.is(r.code, 1);
  t.regex(r.stderr, /cannot read \/nonexistent\/Maildir: ENOENT/);
});

// ---- a classifier that misbehaves: the timeout is honoured, the normal rules apply, nothing is lost

const FAKES: [string, string, RegExp][] = [
  ['hangs', '#!/bin/sh\nsleep 30\n', /classifier timed out/],
  ['hangs with a child holding its output', '#!/bin/sh\n(sleep 30; echo S 1) &\nsleep 30\n', /classifier timed out/],
  ['crashes', '#!/bin/sh\nkill -SEGV $$\n', /classifier killed by SIGSEGV/],
  ['prints garbage', '#!/bin/sh\ncat >/dev/null\necho "Spam? maybe!"\nexit 0\n', /classifier unreadable answer/],
  ['prints without end', '#!/bin/sh\nexec yes "S 1"\n', /classifier unreadable answer \(too long\)/],
  ['exits with an error', '#!/bin/sh\necho "S 1"\nexit 3\n', /classifier error \(exit 3\)/],
  ['is missing', '', /classifier program not found/],
];

for (const [what, script, why] of FAKES) {
  test(`a classifier that ${what} costs at most its timeout; the message is held and challenged as usual`, async (t) => {
    const h = await makeHome();
    const sm = fakeSendmail(h);
    const bin = join(h.user, 'fake-bogofilter');
    if (script !== '') writeFileSync(bin, script, { mode: 0o755 });
    // A word list exists, so the program is really asked.
    mkdirSync(join(h.dir, 'bogofilter'), { recursive: true });
    writeFileSync(join(h.dir, 'bogofilter', 'wordlist.db'), '');
    setConfig(h.dir, { classifier: { enabled: true, command: bin, timeout: '1s' } });
    const t0 = Date.now();
    const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'Lunch' }));
    const ms = Date.now() - t0;
    t.is(r.code, 99, r.stdout);
    t.regex(r.stdout, why);
    t.regex(r.stdout, /usual rules; challenge sent/);
    // The stand-ins that hang would take 30 s: the delivery ends long before (the bound is loose
    // for a machine busy with other work, where a delivery alone can take seconds).
    t.true(ms < 20_000, `${ms} ms`);
    t.is(sm.sent().length, 1);
    const held = await pendingList(h);
    t.is(held.length, 1);
    t.like((held[0] as unknown as { classifier: unknown }).classifier, { verdict: 'error', score: null });
  });
}

test('without a word list the classifier is not run and changes nothing', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  // A program that would say "spam" to everything, were it asked.
  const bin = join(h.user, 'says-spam');
  writeFileSync(bin, '#!/bin/sh\necho "S 1"\nexit 0\n', { mode: 0o755 });
  setConfig(h.dir, { classifier: { enabled: true, command: bin } });
  const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }));
  t.regex(r.stdout, /held .*: unknown sender carol@example\.net; challenge sent/);
  t.is(sm.sent().length, 1);
  t.like((await pendingList(h))[0] as unknown as { classifier: unknown }, { classifier: { verdict: 'unsure', score: null } });
  // With one, it is.
  mkdirSync(join(h.dir, 'bogofilter'), { recursive: true });
  writeFileSync(join(h.dir, 'bogofilter', 'wordlist.db'), '');
  const s = await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net' }));
  t.regex(s.stdout, /challenge suppressed \(classifier: spam 1\.00\)/);
  t.is(sm.sent().length, 1);
});

test('mail the never-challenge rules already hold silently is not classified', async (t) => {
  const h = await makeHome();
  const log = join(h.user, 'asked');
  const bin = join(h.user, 'records');
  writeFileSync(bin, `#!/bin/sh\ncat >/dev/null\necho asked >> ${log}\necho "H 0.01"\nexit 1\n`, { mode: 0o755 });
  mkdirSync(join(h.dir, 'bogofilter'), { recursive: true });
  writeFileSync(join(h.dir, 'bogofilter', 'wordlist.db'), '');
  setConfig(h.dir, { classifier: { enabled: true, command: bin } });
  fakeSendmail(h);
  const r = await deliverQmail(h, 'list-bounces@example.net', message({ from: 'list@example.net', headers: ['List-Id: <x.example.net>'] }));
  t.regex(r.stdout, /challenge suppressed/);
  t.false(existsSync(log));
  const s = await deliverQmail(h, 'ivan@example.net', message({ from: 'ivan@example.net' }));
  t.regex(s.stdout, /challenge sent/);
  t.true(existsSync(log));
});

test('a disabled classifier is never asked', async (t) => {
  const h = await makeHome();
  const bin = join(h.user, 'says-spam');
  writeFileSync(bin, '#!/bin/sh\necho "S 1"\nexit 0\n', { mode: 0o755 });
  mkdirSync(join(h.dir, 'bogofilter'), { recursive: true });
  writeFileSync(join(h.dir, 'bogofilter', 'wordlist.db'), '');
  setConfig(h.dir, { classifier: { enabled: false, command: bin } });
  const sm = fakeSendmail(h);
  const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }));
  t.regex(r.stdout, /unknown sender carol@example\.net; challenge sent \(qmail\)$/m);
  t.is(sm.sent().length, 1);
  t.is((await pendingList(h) as unknown as { classifier: unknown }[])[0]?.classifier, null);
  const l = await vouch(['learn'], { env: h.env });
  t.is(l.code, 2);
  t.regex(l.stderr, /classifier is disabled/);
});

test('vouch init enables the classifier when it finds bogofilter on PATH, and says so; otherwise disables it', async (t) => {
  const { mkdtempSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const base = mkdtempSync(join(tmpdir(), 'vouch-init-'));
  const bin = join(base, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'bogofilter'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  const on = await vouch(['init', '--address', 'alice@example.org'], { env: { VOUCH_HOME: join(base, 'on'), HOME: base, PATH: bin } });
  t.regex(on.stdout, new RegExp(`classifier enabled: ${bin}/bogofilter`));
  const cfgOn = readFileSync(join(base, 'on', 'config.toml'), 'utf8');
  t.regex(cfgOn, new RegExp(`^command = "${bin}/bogofilter"$`, 'm'));
  t.regex(cfgOn, /^\[classifier\][\s\S]*?^enabled = true$/m);
  const off = await vouch(['init', '--address', 'alice@example.org'], { env: { VOUCH_HOME: join(base, 'off'), HOME: base, PATH: '/nonexistent' } });
  t.regex(off.stdout, /classifier disabled: no bogofilter found/);
  t.regex(readFileSync(join(base, 'off', 'config.toml'), 'utf8'), /^\[classifier\][\s\S]*?^enabled = false$/m);
});

real('two learners never run at once: a live one holds learn.lock, a dead one\'s lock is taken over', async (t) => {
  const h = await makeHome();
  // This test's own process is alive.
  writeFileSync(join(h.dir, 'learn.lock'), `${process.pid}\n`);
  const busy = await vouch(['learn'], { env: h.env });
  t.is(busy.code, 1);
  t.regex(busy.stderr, /another vouch learn is at work/);
  // vouch expire leaves the queue to the learner at work, without an error.
  const expire = await vouch(['expire'], { env: h.env });
  t.is(expire.code, 0, expire.stderr);
  t.is(expire.stderr, '');
  // A pid no process has.
  writeFileSync(join(h.dir, 'learn.lock'), '2147483646\n');
  const ok = await vouch(['learn'], { env: h.env });
  t.is(ok.code, 0, ok.stderr);
  t.false(existsSync(join(h.dir, 'learn.lock')));
});
