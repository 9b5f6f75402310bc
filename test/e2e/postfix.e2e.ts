// The whole story through Debian's Postfix on this machine: bob writes to alice over SMTP, vouch (run
// by alice's ~/.forward) holds it, Postfix carries the challenge to bob, bob's reply releases it.
// The steps run in order and build on each other; the sandbox is undone afterwards, pass or fail.

import test, { type ExecutionContext } from 'ava';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { maildirFiles, ROOT } from '../helpers.js';
import { DOMAIN, LMTP_SOCKET, MAILLOG, postconf, queue, Sandbox, tearDown, until, VDOMAIN, type Events, type QueueEntry, type User, type VirtualUser } from './postfix.js';

let sandbox: Sandbox | undefined;
let failed = false;
/** Maildir files each user already had, so each step sees only what it brought. */
const seen = new Map<string, Set<string>>();
/** What the challenge step learnt, for the reply step. */
let challenge: { confirm: string; messageId: string; subject: string } | undefined;
/** Postfix's queue ID of bob's first message, for the byte-for-byte check after its release. */
let firstId = '';

const fixture = (name: string) => readFileSync(join(ROOT, 'test', 'e2e', 'fixtures', name));

function box(): Sandbox {
  if (!sandbox) throw new Error('the Postfix sandbox is not set up');
  return sandbox;
}

/** The messages that arrived in `user`'s Maildir since the last look. */
function newMail(user: User): { name: string; bytes: Buffer }[] {
  const known = seen.get(user.name) ?? new Set<string>();
  const fresh = maildirFiles(join(user.home, 'Maildir')).filter((f) => !known.has(f.name));
  for (const f of fresh) known.add(f.name);
  seen.set(user.name, known);
  return fresh;
}

function outcome(ev: Events): string[] {
  return ev.deliveries.map((d) => `${d.to} ${d.status}`).sort();
}

/** The message in alice's Maildir is the one bob sent, byte for byte, behind exactly the lines
 * Postfix puts in front: Return-Path, X-Original-To, Delivered-To (local) and Received (smtpd). */
function isDeliveredAsSent(t: ExecutionContext, file: Buffer | undefined, sent: Buffer, queueId: string): void {
  if (!file) {
    t.fail('no message in the Maildir');
    return;
  }
  t.true(file.length > sent.length && file.subarray(file.length - sent.length).equals(sent), 'the message ends with exactly the bytes bob sent');
  const prefix = file.subarray(0, file.length - sent.length).toString('utf8');
  const fields = prefix.replace(/\n[ \t]/g, ' ').split('\n').filter((l) => l !== '').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]);
  t.deepEqual(fields.map((f) => f[0]), ['Return-Path', 'X-Original-To', 'Delivered-To', 'Received']);
  t.deepEqual(fields.slice(0, 3), [
    ['Return-Path', `<${sandbox?.bob.address}>`],
    ['X-Original-To', `${sandbox?.alice.address}`],
    ['Delivered-To', `${sandbox?.alice.address}`],
  ]);
  t.regex(fields[3]?.[1] ?? '', new RegExp(`by mx\\.${DOMAIN.replace(/\./g, '\\.')} \\(Postfix\\) with ESMTP id ${queueId}\\b`));
}

test.before(async () => {
  try {
    sandbox = await Sandbox.setUp();
  } catch (err) {
    failed = true;
    throw err;
  }
});

test.afterEach.always((t) => {
  if (!t.passed) failed = true;
});

test.after.always(() => {
  if (failed) {
    let log = '';
    try {
      log = readFileSync(MAILLOG, 'utf8').split('\n').slice(-60).join('\n');
    } catch {
      /* no log yet */
    }
    console.error(`--- last lines of the Postfix log (${MAILLOG}) ---\n${log}`);
  }
  tearDown({ keep: process.env['VOUCH_E2E_KEEP'] === '1' });
});

// A worker that ends without running the hooks above still puts the machine back (and one that is
// killed is undone by the watcher Sandbox.setUp started).
process.once('exit', () => {
  try {
    tearDown();
  } catch (err) {
    console.error(String(err));
  }
});

test.serial('Postfix runs local-only, and alice’s ~/.forward is the line `vouch init` printed', (t) => {
  const s = box();
  t.is(postconf('inet_interfaces'), 'loopback-only');
  t.is(postconf('default_transport'), 'error');
  t.is(postconf('relay_transport'), 'error');
  t.is(postconf('recipient_delimiter'), '+');
  t.regex(postconf('mydestination'), new RegExp(`^\\$mydomain\\b`));
  t.is(postconf('mydomain'), DOMAIN);
  t.is(s.forwardLine, `"|${s.node} ${s.cli} deliver --mta postfix"`);
  t.is(readFileSync(join(s.alice.home, '.forward'), 'utf8'), `${s.forwardLine}\n`);
  t.deepEqual(queue(), []);
});

test.serial('mail from a mailing list is held silently: no challenge reaches anyone', async (t) => {
  const s = box();
  const m = s.mark();
  const id = s.swaks(`bob+lists@${DOMAIN}`, s.alice.address, fixture('list.eml'));
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${s.alice.address} sent`], 'Postfix made one delivery, to vouch, and nothing else');
  t.regex(ev.deliveries[0]?.text ?? '', /delivered to command/);
  t.deepEqual(ev.notices, []);
  t.deepEqual(newMail(s.alice), []);
  t.deepEqual(newMail(s.bob), []);
  const held = s.pending().filter((p) => p.sender === `bob+lists@${DOMAIN}`);
  t.is(held.length, 1);
  t.is(held[0]?.challenge, 'suppressed');
  t.is(held[0]?.challenge_note, 'mailing list');
});

test.serial('mail from the null sender <> is held silently: no challenge reaches anyone', async (t) => {
  const s = box();
  const m = s.mark();
  const id = s.swaks('', s.alice.address, fixture('bounce.eml'));
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${s.alice.address} sent`]);
  t.deepEqual(ev.notices, []);
  t.deepEqual(newMail(s.alice), []);
  t.deepEqual(newMail(s.bob), []);
  const held = s.pending().filter((p) => p.subject === 'Undelivered Mail Returned to Sender');
  t.is(held.length, 1);
  t.is(held[0]?.sender, '');
  t.is(held[0]?.challenge, 'suppressed');
  t.is(held[0]?.challenge_note, 'null sender');
});

test.serial('bob’s first message is held, and Postfix carries the challenge to bob’s Maildir', async (t) => {
  const s = box();
  const m = s.mark();
  firstId = s.swaks(s.bob.address, s.alice.address, fixture('first.eml'));
  const ev = await s.settle(m, [firstId]);
  t.deepEqual(outcome(ev), [`${s.alice.address} sent`, `${s.bob.address} sent`], 'one delivery to vouch, one (the challenge) to bob');
  t.deepEqual(ev.notices, []);
  t.deepEqual(newMail(s.alice), [], 'nothing reaches alice yet');
  const held = s.pending().filter((p) => p.sender === s.bob.address);
  t.is(held.length, 1);
  t.is(held[0]?.subject, 'Lunch on Thursday?');
  t.is(held[0]?.challenge, 'sent');

  const got = newMail(s.bob);
  t.is(got.length, 1);
  const raw = got[0]?.bytes ?? Buffer.alloc(0);
  t.true(raw.toString('latin1').startsWith('Return-Path: <>\n'), 'the challenge came with the null envelope sender');
  const mail = await simpleParser(raw);
  const confirm = mail.replyTo?.value[0]?.address ?? '';
  t.regex(confirm, new RegExp(`^alice\\+confirm-[a-z2-7]{13}\\.[a-z2-7]{16}@${DOMAIN.replace(/\./g, '\\.')}$`));
  t.is(mail.from?.value[0]?.address, confirm);
  t.is(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined, s.bob.address);
  t.is(mail.headers.get('auto-submitted'), 'auto-replied');
  t.is(mail.inReplyTo, '<first.e2e@vouch-e2e.test>');
  t.regex(mail.text ?? '', /Lunch on Thursday\?/, 'it names the held message');
  t.notRegex(raw.toString('utf8'), /sentinel-first-body/, 'it never carries the held message’s body');
  challenge = { confirm, messageId: mail.messageId ?? '', subject: mail.subject ?? '' };
});

test.serial('bob’s reply through Postfix’s sendmail releases the original into alice’s Maildir, byte for byte', async (t) => {
  const s = box();
  if (!challenge) {
    t.fail('no challenge reached bob');
    return;
  }
  const reply = Buffer.from(
    [
      `From: Bob <${s.bob.address}>`,
      `To: ${challenge.confirm}`,
      `Subject: Re: ${challenge.subject}`,
      'Date: Mon, 23 Nov 2026 10:05:00 +0000',
      `Message-ID: <reply.e2e@${DOMAIN}>`,
      `In-Reply-To: ${challenge.messageId}`,
      `References: ${challenge.messageId}`,
      '',
      'Yes, that was me.',
      '',
    ].join('\n'),
  );
  const m = s.mark();
  s.sendmail(s.bob, challenge.confirm, reply);
  const ev = await s.settle(m);
  t.deepEqual(outcome(ev), [`${challenge.confirm} sent`], 'one delivery, the reply to vouch');
  t.deepEqual(ev.notices, []);
  const got = newMail(s.alice);
  t.is(got.length, 1, 'alice gets the original, not the reply');
  isDeliveredAsSent(t, got[0]?.bytes, fixture('first.eml'), firstId);
  t.deepEqual(newMail(s.bob), [], 'bob gets nothing more');
  t.deepEqual(s.pending().filter((p) => p.sender === s.bob.address), []);
  t.regex(s.vouch(['whitelist', 'list']).stdout, new RegExp(`^${s.bob.address.replace(/[.+]/g, '\\$&')}$`, 'm'));
});

test.serial('bob’s next message goes straight into alice’s Maildir', async (t) => {
  const s = box();
  const m = s.mark();
  const id = s.swaks(s.bob.address, s.alice.address, fixture('second.eml'));
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${s.alice.address} sent`]);
  t.deepEqual(ev.notices, []);
  const got = newMail(s.alice);
  t.is(got.length, 1);
  isDeliveredAsSent(t, got[0]?.bytes, fixture('second.eml'), id);
  t.deepEqual(newMail(s.bob), []);
  t.deepEqual(s.pending().filter((p) => p.sender === s.bob.address), []);
});

test.serial('while the store and the lists map cannot be read the message stays deferred in Postfix’s queue, not bounced, and arrives after postqueue -f', async (t) => {
  const s = box();
  // bob is whitelisted: his mail is decided from the lists map, and only without it from the store.
  const db = join(s.alice.home, '.vouch', 'vouch.db');
  const map = join(s.alice.home, '.vouch', 'lists.map');
  chmodSync(db, 0o000);
  chmodSync(map, 0o000);
  let id = '';
  try {
    const m = s.mark();
    id = s.swaks(s.bob.address, s.alice.address, fixture('outage.eml'));
    const entry = await until<QueueEntry>('the message to be deferred', () => queue().find((e) => e.queue_id === id && e.queue_name === 'deferred'));
    t.is(entry.recipients.length, 1);
    t.is(entry.recipients[0]?.address, s.alice.address);
    t.regex(entry.recipients[0]?.delay_reason ?? '', /temporary failure.*vouch: cannot open the pending store \(#4\.3\.0\)/);
    const ev = await until('Postfix to log the deferral', () => {
      const e = s.events(m);
      return e.deliveries.length > 0 ? e : undefined;
    });
    t.deepEqual(outcome(ev), [`${s.alice.address} deferred`]);
    t.notRegex(ev.log, /status=bounced/);
    t.deepEqual(ev.notices, [], 'no bounce and no delay warning');
    t.deepEqual(newMail(s.alice), []);
    t.deepEqual(newMail(s.bob), [], 'nothing reached bob');
  } finally {
    chmodSync(db, 0o600);
    chmodSync(map, 0o600);
  }

  const m = s.mark();
  s.flush();
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${s.alice.address} sent`]);
  t.deepEqual(ev.notices, []);
  const got = newMail(s.alice);
  t.is(got.length, 1);
  isDeliveredAsSent(t, got[0]?.bytes, fixture('outage.eml'), id);
  t.deepEqual(newMail(s.bob), []);
  t.deepEqual(queue(), []);
});

// ---- The same story for two virtual users, handed by Postfix to `vouch serve` over LMTP.

/** What the virtual users' steps learnt: carol's confirm address, bob's first message as sent. */
let virtualFirst: { bytes: Buffer; confirm: Record<string, string> } | undefined;

function newVirtualMail(user: VirtualUser): { name: string; bytes: Buffer }[] {
  const known = seen.get(`virtual:${user.name}`) ?? new Set<string>();
  const fresh = maildirFiles(user.maildir).filter((f) => !known.has(f.name));
  for (const f of fresh) known.add(f.name);
  seen.set(`virtual:${user.name}`, known);
  return fresh;
}

function virtualMessage(id: string, subject: string, to: string): Buffer {
  return Buffer.from(
    [`From: Bob <bob@${DOMAIN}>`, `To: ${to}`, `Subject: ${subject}`, 'Date: Mon, 23 Nov 2026 11:00:00 +0000', `Message-ID: <${id}@${DOMAIN}>`, '', `sentinel-${id}`, ''].join('\n'),
  );
}

/** A message vouch serve put into a virtual user's Maildir: the lines it writes (as qmail-local
 * would), Postfix's Received line, then exactly the bytes bob sent. */
function isServedAsSent(t: ExecutionContext, file: Buffer | undefined, sent: Buffer, user: VirtualUser): void {
  if (!file) {
    t.fail('no message in the Maildir');
    return;
  }
  t.true(file.length > sent.length && file.subarray(file.length - sent.length).equals(sent), 'the message ends with exactly the bytes bob sent');
  const text = file.toString('utf8');
  t.true(text.startsWith(`Return-Path: <bob@${DOMAIN}>\nDelivered-To: ${user.address}\nReceived: from `), text.slice(0, 200));
  t.false(text.includes('\r'), 'LF line ends, as every other Maildir file');
}

test.serial('Postfix hands bob’s message for two virtual users to vouch serve over LMTP: held for each, and each one’s challenge reaches bob', async (t) => {
  const s = box();
  await s.startServe();
  t.is(postconf('virtual_transport'), `lmtp:unix:${LMTP_SOCKET}`);
  const [carol, dave] = s.virtual as [VirtualUser, VirtualUser];
  newMail(s.bob);
  const sent = virtualMessage('virt-first', 'Dinner at eight?', `${carol.address}, ${dave.address}`);
  const m = s.mark();
  const id = s.swaks(s.bob.address, `${carol.address},${dave.address}`, sent);
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${s.bob.address} sent`, `${s.bob.address} sent`, `${carol.address} sent`, `${dave.address} sent`]);
  for (const d of ev.deliveries.filter((x) => x.to.endsWith(`@${VDOMAIN}`))) {
    t.is(d.agent, 'lmtp');
    t.regex(d.text, /250 2\.0\.0 vouch: held [a-z2-7]{13}: unknown sender .*challenge sent \(lmtp\)/);
  }
  t.deepEqual(ev.notices, []);
  for (const u of [carol, dave]) {
    const held = s.pendingFor(u);
    t.is(held.length, 1, u.name);
    t.is(held[0]?.subject, 'Dinner at eight?');
    t.is(held[0]?.challenge, 'sent');
    t.deepEqual(newVirtualMail(u), []);
  }
  const confirm: Record<string, string> = {};
  for (const c of newMail(s.bob)) {
    t.true(c.bytes.toString('latin1').startsWith('Return-Path: <>\n'), 'null envelope sender');
    const mail = await simpleParser(c.bytes);
    const addr = mail.replyTo?.value[0]?.address ?? '';
    const who = /^(carol|dave)\+confirm-[a-z2-7]{13}\.[a-z2-7]{16}@/.exec(addr)?.[1];
    if (who) confirm[who] = addr;
    t.notRegex(c.bytes.toString('utf8'), /sentinel-virt-first/);
  }
  t.deepEqual(Object.keys(confirm).sort(), ['carol', 'dave']);
  virtualFirst = { bytes: sent, confirm };
});

test.serial('bob’s reply to carol’s challenge releases his message into carol’s Maildir only; dave still holds his', async (t) => {
  const s = box();
  const [carol, dave] = s.virtual as [VirtualUser, VirtualUser];
  const confirm = virtualFirst?.confirm['carol'];
  if (!virtualFirst || !confirm) {
    t.fail('no challenge from carol reached bob');
    return;
  }
  const m = s.mark();
  const id = s.swaks(s.bob.address, confirm, virtualMessage('virt-reply', 'Re: Dinner at eight?', confirm));
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${confirm} sent`]);
  t.regex(ev.deliveries[0]?.text ?? '', /confirmed [a-z2-7]{13}: released 1 from bob@/);
  t.deepEqual(ev.notices, []);
  const got = newVirtualMail(carol);
  t.is(got.length, 1);
  isServedAsSent(t, got[0]?.bytes, virtualFirst.bytes, carol);
  t.deepEqual(s.pendingFor(carol), []);
  t.regex(s.vouchFor(carol, ['whitelist', 'list']).stdout, new RegExp(`^bob@${DOMAIN.replace(/\./g, '\\.')}$`, 'm'));
  t.is(s.pendingFor(dave).length, 1);
  t.deepEqual(newVirtualMail(dave), []);
  t.deepEqual(newMail(s.bob), []);
});

test.serial('bob’s second message to carol is delivered at once over LMTP, byte for byte', async (t) => {
  const s = box();
  const [carol] = s.virtual as [VirtualUser];
  const sent = virtualMessage('virt-second', 'Wine or beer?', carol.address);
  const m = s.mark();
  const id = s.swaks(s.bob.address, carol.address, sent);
  const ev = await s.settle(m, [id]);
  t.deepEqual(outcome(ev), [`${carol.address} sent`]);
  t.regex(ev.deliveries[0]?.text ?? '', /250 2\.0\.0 vouch: delivered: whitelisted sender bob@/);
  const got = newVirtualMail(carol);
  t.is(got.length, 1);
  isServedAsSent(t, got[0]?.bytes, sent, carol);
  t.deepEqual(newMail(s.bob), []);
});

test.serial('while vouch serve is stopped Postfix keeps carol’s mail deferred, not bounced; after the restart it is delivered', async (t) => {
  const s = box();
  const [carol] = s.virtual as [VirtualUser];
  t.is(await s.stopServe(), 0, 'vouch serve stops cleanly on SIGTERM');
  const sent = virtualMessage('virt-outage', 'Still on?', carol.address);
  const m = s.mark();
  const id = s.swaks(s.bob.address, carol.address, sent);
  const entry = await until<QueueEntry>('the message to be deferred', () => queue().find((e) => e.queue_id === id && e.queue_name === 'deferred'));
  t.is(entry.recipients[0]?.address, carol.address);
  t.regex(entry.recipients[0]?.delay_reason ?? '', /vouch\.sock/);
  const ev = await until('Postfix to log the deferral', () => {
    const e = s.events(m);
    return e.deliveries.length > 0 ? e : undefined;
  });
  t.deepEqual(outcome(ev), [`${carol.address} deferred`]);
  t.deepEqual(ev.notices, []);
  t.deepEqual(newVirtualMail(carol), []);

  await s.startServe();
  const m2 = s.mark();
  s.flush();
  const after = await s.settle(m2, [id]);
  t.deepEqual(outcome(after), [`${carol.address} sent`]);
  t.deepEqual(after.notices, []);
  const got = newVirtualMail(carol);
  t.is(got.length, 1);
  isServedAsSent(t, got[0]?.bytes, sent, carol);
  t.deepEqual(queue(), []);
  t.is(await s.stopServe(), 0);
});
