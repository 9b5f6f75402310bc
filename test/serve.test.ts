// `vouch serve`: a real LMTP conversation (a raw socket, and nodemailer with lmtp: true) with the
// server, in this process or as the built CLI, over homes found by the --homes template. One reply
// per recipient after DATA, 250 only for what is durable, 451 for what is not, never a 5xx after DATA.

import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTransport } from 'nodemailer';
import { homeFor, parseTemplate, splitRecipient } from '../agent/serve/homes.js';
import { fromWire, LmtpServer, parseListen } from '../agent/serve/server.js';
import { ConfigCache } from '../agent/serve/configs.js';
import { initHome, homePaths } from '../agent/home/home.js';
import { parsePattern } from '../agent/mail/address.js';
import { Store, type Held } from '../agent/store/store.js';
import { CLI, maildirFiles, message, qmailEnv, setConfig, vouch, type TestHome } from './helpers.js';
import { lmtpSession, LmtpClient, wire, type Target } from './lmtp.js';

/** A mail host's homes: BASE/DOMAIN/USER/.vouch, each made by `vouch init --home`, `~` being the
 * folder that holds the home (as the server reads it). */
function hostBase(): string {
  return mkdtempSync(join(tmpdir(), 'vouch-serve-'));
}

/** What `vouch init --home` makes (home, config, secret, store, lists map), in this process: a
 * test makes several homes, and a CLI start each would cost seconds on a loaded machine. */
async function userHome(base: string, user: string, domain = 'example.org', config: Parameters<typeof setConfig>[1] = {}): Promise<TestHome> {
  const folder = join(base, domain, user);
  mkdirSync(folder, { recursive: true });
  const dir = join(folder, '.vouch');
  const env: NodeJS.ProcessEnv = { VOUCH_HOME: dir, HOME: folder, USER: user };
  initHome(homePaths(dir), `${user}@${domain}`, env);
  const store = await Store.open(join(dir, 'vouch.db'), { create: true });
  await store.repairListMap();
  await store.close();
  // As test/helpers.ts makeHome: no DNS here, so no authentication policy that needs it.
  setConfig(dir, { identity: { delimiter: '+' }, send: { transport: 'file', file_dir: join(dir, 'outbox') }, challenge: { require: 'none' } });
  setConfig(dir, config);
  return { dir, user: folder, maildir: join(folder, 'Maildir'), env };
}

async function held(h: TestHome): Promise<Held[]> {
  const store = await Store.open(join(h.dir, 'vouch.db'));
  try {
    return await store.list();
  } finally {
    await store.close();
  }
}

const template = (base: string) => join(base, '%d', '%u', '.vouch');

async function startServer(t: { teardown: (fn: () => unknown) => void }, base: string, over: Partial<ConstructorParameters<typeof LmtpServer>[0]> = {}) {
  const lines: string[] = [];
  const server = new LmtpServer({
    listen: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    homes: template(base),
    delimiter: '+',
    maxSize: 1024 * 1024,
    maxConnections: 20,
    stores: 10,
    log: (l) => lines.push(l),
    ...over,
  });
  const where = await server.start();
  t.teardown(() => server.stop());
  const port = Number(where.slice(where.lastIndexOf(':') + 1));
  return { server, target: { port } as Target, port, lines };
}

async function whitelist(h: TestHome, who: string): Promise<void> {
  const store = await Store.open(join(h.dir, 'vouch.db'));
  try {
    await store.addPatterns('white', [parsePattern(who)]);
  } finally {
    await store.close();
  }
}

test('the --homes template splits user, extension and domain, and refuses what cannot name a folder', (t) => {
  const rows: [string, string, [string, string, string] | undefined][] = [
    ['alice@example.org', '+', ['alice', '', 'example.org']],
    ['Alice+News@Example.ORG', '+', ['alice', 'news', 'example.org']],
    ['alice+confirm-abc.def@example.org', '+', ['alice', 'confirm-abc.def', 'example.org']],
    ['alice-x-y@example.org', '-', ['alice', 'x-y', 'example.org']],
    ['../etc@example.org', '+', undefined],
    ['a/b@example.org', '+', undefined],
    ['.hidden@example.org', '+', undefined],
    ['alice@..', '+', undefined],
    ['alice+../x@example.org', '+', undefined],
    ['@example.org', '+', undefined],
    ['alice@', '+', undefined],
  ];
  for (const [addr, delim, want] of rows) {
    const r = splitRecipient(addr, delim);
    t.deepEqual(r === undefined ? undefined : [r.user, r.ext, r.domain], want, addr);
  }
  const tpl = parseTemplate('/var/vmail/%d/%u/.vouch');
  t.is(homeFor(tpl, splitRecipient('Bob+x@Example.Net', '+') as NonNullable<ReturnType<typeof splitRecipient>>), '/var/vmail/example.net/bob/.vouch');
  t.throws(() => parseTemplate('var/%u'), { message: /absolute/ });
  t.throws(() => parseTemplate('/var/%x/%u'), { message: /unknown placeholder %x/ });
  t.throws(() => parseTemplate('/var/vmail/%d'), { message: /%u/ });
  t.deepEqual(parseListen('unix:/run/vouch/lmtp.sock'), { kind: 'unix', path: '/run/vouch/lmtp.sock' });
  t.deepEqual(parseListen('127.0.0.1:24'), { kind: 'tcp', host: '127.0.0.1', port: 24 });
  t.deepEqual(parseListen('[::1]:2424'), { kind: 'tcp', host: '::1', port: 2424 });
  t.deepEqual(parseListen('24'), { kind: 'tcp', host: '127.0.0.1', port: 24 });
  t.throws(() => parseListen('unix:relative'));
});

test('line ends come off the wire as LF, a lone CR stays', (t) => {
  t.deepEqual(fromWire(Buffer.from('a\r\nb\rc\r\n\r\n')), Buffer.from('a\nb\rc\n\n'));
  t.deepEqual(fromWire(Buffer.from('no line end')), Buffer.from('no line end'));
  // As the data stream hands it over: in chunks, a CRLF or a lone CR across their border.
  const parts = (...p: string[]) => p.map((x) => Buffer.from(x));
  t.deepEqual(fromWire(parts('a\r', '\nb\r', 'c\r', '', '\r\n', 'd\r')), Buffer.from('a\nb\rc\r\nd\r'));
  t.deepEqual(fromWire(parts()), Buffer.alloc(0));
});

test('one message to two users gets one reply each: delivered to the one who knows the sender, held for the other', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  const carol = await userHome(base, 'carol');
  await whitelist(alice, 'bob@example.com');
  const { target, lines } = await startServer(t, base);
  const c = await lmtpSession(target);
  const msg = message({ subject: 'to both' });
  const r = await c.send('bob@example.com', ['alice@example.org', 'carol@example.org'], msg);
  c.close();
  t.deepEqual(r.rcpt.map((x) => x.code), [250, 250]);
  t.is(r.data.code, 354);
  t.deepEqual(r.per.map((x) => x.code), [250, 250]);
  t.regex(r.per[0]?.text ?? '', /^2\.0\.0 vouch: delivered: whitelisted sender bob@example\.com \(lmtp\)$/);
  t.regex(r.per[1]?.text ?? '', /^2\.0\.0 vouch: held [a-z2-7]{13}: unknown sender bob@example\.com; challenge sent \(lmtp\)$/);
  // Exactly the lines qmail-local writes, then the message with LF line ends, as `vouch deliver` stores it.
  const files = maildirFiles(alice.maildir);
  t.is(files.length, 1);
  t.is(files[0]?.bytes.toString(), `Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n${msg.endsWith('\n') ? msg : `${msg}\n`}`);
  t.deepEqual(maildirFiles(carol.maildir), []);
  const rows = await held(carol);
  t.is(rows.length, 1);
  t.is(rows[0]?.subject, 'to both');
  t.is(readdirSync(join(carol.dir, 'outbox')).filter((n) => n.endsWith('.eml')).length, 1);
  t.true(lines.some((l) => l.startsWith('carol@example.org vouch: held ')));
});

test('the server writes into the Maildir exactly what vouch deliver writes for the same message', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base);
  const msg = message({ subject: 'same bytes', body: 'line one\n.line with a dot\n\nend\n' });
  const d = await vouch(['deliver'], { env: qmailEnv(alice, 'bob@example.com'), input: msg });
  t.is(d.code, 99);
  const c = await lmtpSession(target);
  const r = await c.send('bob@example.com', ['alice@example.org'], msg);
  c.close();
  t.is(r.per[0]?.code, 250);
  const files = maildirFiles(alice.maildir);
  // The same message twice is one message (the journal knows it), whichever edge brought it.
  t.is(files.length, 1);
  t.regex(r.per[0]?.text ?? '', /delivered/);
  const other = message({ subject: 'same bytes 2', body: 'x\n' });
  const d2 = await vouch(['deliver'], { env: qmailEnv(alice, 'bob@example.com'), input: other });
  t.is(d2.code, 99);
  const c2 = await lmtpSession(target);
  const r2 = await c2.send('bob@example.com', ['alice@example.org'], `${other}`.replace('same bytes 2', 'same bytes 3'));
  c2.close();
  t.is(r2.per[0]?.code, 250);
  const after = maildirFiles(alice.maildir).map((f) => f.bytes.toString());
  t.is(after.length, 3);
  const viaDeliver = after.find((b) => b.includes('same bytes 2')) ?? '';
  const viaLmtp = after.find((b) => b.includes('same bytes 3')) ?? '';
  t.is(viaLmtp, viaDeliver.replace('same bytes 2', 'same bytes 3'));
});

test('pipelined transactions on one connection each get their replies, in order', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base);
  const c = await LmtpClient.open(target);
  t.is((await c.reply()).code, 220);
  const one = wire(message({ subject: 'first' }));
  const two = wire(message({ subject: 'second' }));
  // Everything up to each DATA in one write (RFC 2920), the data after the 354.
  c.write('LHLO mx.test\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n');
  const first = await c.replies(5);
  t.deepEqual(first.map((r) => r.code), [250, 250, 250, 250, 354]);
  t.regex(first[0]?.text ?? '', /PIPELINING/);
  c.write(Buffer.concat([one, Buffer.from('.\r\nMAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n')]));
  const mid = await c.replies(5);
  t.deepEqual(mid.map((r) => r.code), [250, 451, 250, 250, 354]);
  t.regex(mid[1]?.text ?? '', /^4\.3\.5 vouch: no vouch home for this recipient$/);
  c.write(Buffer.concat([two, Buffer.from('.\r\nQUIT\r\n')]));
  const last = await c.replies(2);
  t.deepEqual(last.map((r) => r.code), [250, 221]);
  t.deepEqual(maildirFiles(alice.maildir).map((f) => /Subject: (\w+)/.exec(f.bytes.toString())?.[1]).sort(), ['first', 'second']);
});

test('nodemailer with lmtp: true hands a message to two users and learns each one’s answer', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  const dave = await userHome(base, 'dave', 'example.net');
  await whitelist(alice, 'bob@example.com');
  await whitelist(dave, '@example.com');
  const { port } = await startServer(t, base);
  const transport = createTransport({ host: '127.0.0.1', port, lmtp: true, ignoreTLS: true });
  t.teardown(() => transport.close());
  const info = await transport.sendMail({ envelope: { from: 'bob@example.com', to: ['alice@example.org', 'dave@example.net', 'ghost@example.org'] }, raw: message({ subject: 'nodemailer' }) });
  t.deepEqual([...info.accepted].sort(), ['alice@example.org', 'dave@example.net']);
  t.deepEqual(info.rejected, ['ghost@example.org']);
  t.is(maildirFiles(alice.maildir).length, 1);
  t.is(maildirFiles(dave.maildir).length, 1);
});

test('a recipient without a home gets 451 4.3.5 after DATA, and the others of the message are delivered', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base);
  const c = await lmtpSession(target);
  const r = await c.send('bob@example.com', ['nobody@example.org', 'alice@example.org', 'x@unknown.example'], message());
  c.close();
  t.deepEqual(r.rcpt.map((x) => x.code), [250, 250, 250]);
  t.deepEqual(r.per.map((x) => x.code), [451, 250, 451]);
  t.regex(r.per[0]?.text ?? '', /^4\.3\.5 /);
  t.is(maildirFiles(alice.maildir).length, 1);
});

test('a store that cannot be opened gets 451 4.3.0 and nothing is acknowledged; the retry after repair is held', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  const db = join(alice.dir, 'vouch.db');
  const good = readFileSync(db);
  for (const f of ['vouch.db-wal', 'vouch.db-shm']) rmSync(join(alice.dir, f), { force: true });
  writeFileSync(db, 'this is not a database, it only has the name of one');
  const { target } = await startServer(t, base);
  const c = await lmtpSession(target);
  const msg = message({ subject: 'retry me' });
  const r = await c.send('stranger@example.net', ['alice@example.org'], msg);
  t.is(r.per[0]?.code, 451);
  t.regex(r.per[0]?.text ?? '', /^4\.3\.0 vouch: cannot open the pending store$/);
  writeFileSync(db, good);
  const again = await c.send('stranger@example.net', ['alice@example.org'], msg);
  c.close();
  t.is(again.per[0]?.code, 250);
  t.is((await held(alice)).length, 1);
});

test('size: a declared SIZE over the limit is refused before DATA; an undeclared one is 452 per recipient, never a 5xx after DATA', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base, { maxSize: 64 * 1024 });
  const c = await lmtpSession(target);
  const big = message({ body: `${'x'.repeat(70)}\n`.repeat(2000) });
  const declared = await c.command(`MAIL FROM:<bob@example.com> SIZE=${big.length}`);
  t.is(declared.code, 552);
  await c.command('RSET');
  const r = await c.send('bob@example.com', ['alice@example.org', 'alice+x@example.org'], big);
  t.deepEqual(r.per.map((x) => x.code), [452, 452]);
  t.regex(r.per[0]?.text ?? '', /^4\.3\.4 /);
  // The connection goes on, and a message under the limit is delivered.
  const small = await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'small' }));
  c.close();
  t.is(small.per[0]?.code, 250);
  t.deepEqual(maildirFiles(alice.maildir).map((f) => /Subject: (\w+)/.exec(f.bytes.toString())?.[1]), ['small']);
});

test('bad commands get protocol errors before DATA and the session carries on', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base);
  const c = await LmtpClient.open(target);
  t.is((await c.reply()).code, 220);
  t.is((await c.command('EHLO mx.test')).code, 500, 'EHLO is not LMTP');
  t.is((await c.command('MAIL FROM:<bob@example.com>')).code, 503, 'LHLO first');
  t.is((await c.lhlo()).code, 250);
  t.is((await c.command('DATA')).code, 503, 'no recipient yet');
  t.is((await c.command('RCPT TO:<alice@example.org>')).code, 503, 'no sender yet');
  t.is((await c.command('MAIL FROM:<not an address')).code, 501);
  t.is((await c.command('FROB')).code, 500);
  t.is((await c.command('STARTTLS')).code, 500, 'no STARTTLS on a local socket');
  const r = await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'after' }));
  t.is(r.per[0]?.code, 250);
  t.is(maildirFiles(alice.maildir).length, 1);
  // A command line beyond the limit ends the session (421): it is no mail client talking.
  t.is((await c.command(`NOOP ${'x'.repeat(5000)}`)).code, 421);
  c.close();
});

test('a confirmation reply over LMTP releases the held message and whitelists its sender, per user', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await userHome(base, 'carol');
  const { target } = await startServer(t, base);
  const c = await lmtpSession(target);
  const first = await c.send('bob@example.com', ['alice@example.org', 'carol@example.org'], message({ subject: 'please' }));
  t.deepEqual(first.per.map((x) => x.code), [250, 250]);
  const eml = readdirSync(join(alice.dir, 'outbox')).find((n) => n.endsWith('.eml')) ?? '';
  const confirm = /^Reply-To: .*?(alice\+confirm-[a-z2-7.]+@example\.org)/m.exec(readFileSync(join(alice.dir, 'outbox', eml), 'utf8'))?.[1];
  t.truthy(confirm);
  const reply = await c.send('bob@example.com', [confirm ?? ''], message({ subject: 'Re: please' }));
  t.regex(reply.per[0]?.text ?? '', /confirmed [a-z2-7]{13}: released 1 from bob@example\.com, sender whitelisted/);
  const later = await c.send('bob@example.com', ['alice@example.org', 'carol@example.org'], message({ subject: 'later' }));
  c.close();
  t.regex(later.per[0]?.text ?? '', /delivered: whitelisted/);
  t.regex(later.per[1]?.text ?? '', /held .*; already|held .*challenge suppressed|held .*sender already challenged/);
  t.deepEqual(maildirFiles(alice.maildir).map((f) => /Subject: (\w+)/.exec(f.bytes.toString())?.[1]).sort(), ['later', 'please']);
});

test('an edit to a user’s config.toml applies to the next message, without a restart', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { target } = await startServer(t, base);
  const c = await lmtpSession(target);
  t.is((await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'one' }))).per[0]?.code, 250);
  setConfig(alice.dir, { delivery: { maildir: '~/Mail2' } });
  t.is((await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'two' }))).per[0]?.code, 250);
  c.close();
  t.is(maildirFiles(alice.maildir).length, 1);
  t.is(maildirFiles(join(alice.user, 'Mail2')).length, 1);
});

test('a home’s config is kept while config.toml is unchanged and settled; one changed in the last seconds is read again each time; an edit is seen even with its times set back', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  const path = join(alice.dir, 'config.toml');
  const env = { HOME: alice.user };
  const changed = statSync(path).mtimeMs;
  // Within seconds of the last change, the file's times cannot tell two edits apart: read every time.
  const early = new ConfigCache(10, () => changed + 1000);
  const e1 = early.load(alice.dir, env);
  t.not(early.load(alice.dir, env), e1);
  t.is(early.size, 0);
  // Settled: kept, one stat a delivery.
  const late = new ConfigCache(10, () => changed + 60_000);
  const l1 = late.load(alice.dir, env);
  t.is(late.load(alice.dir, env), l1);
  t.deepEqual(l1, e1);
  // An edit of the same size whose modification time is set back still changes the inode's change time.
  const before = statSync(path);
  writeFileSync(path, readFileSync(path, 'utf8').replace('per_domain_hourly = 10', 'per_domain_hourly = 70'));
  utimesSync(path, before.atime, before.mtime);
  t.is(statSync(path).size, before.size);
  t.is(late.load(alice.dir, env).challenge.per_domain_hourly, 70);
  // Another HOME (`~`) is another config.
  t.not(late.load(alice.dir, { HOME: base }), late.load(alice.dir, env));
  late.clear();
  t.is(late.size, 0);
  // Bounded: the least recently used goes first.
  const few = new ConfigCache(2, () => Date.now() + 60_000);
  for (const u of ['u1', 'u2', 'u3']) few.load((await userHome(base, u)).dir, env);
  t.is(few.size, 2);
});

test('with every config settled and kept, an edit to config.toml still applies to the next message', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  // The server's clock a minute ahead: config.toml counts as settled from the first delivery on.
  const { target } = await startServer(t, base, { now: () => Date.now() + 60_000 });
  const c = await lmtpSession(target);
  t.is((await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'one' }))).per[0]?.code, 250);
  t.is((await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'two' }))).per[0]?.code, 250);
  setConfig(alice.dir, { delivery: { maildir: '~/Mail2' } });
  t.is((await c.send('bob@example.com', ['alice@example.org'], message({ subject: 'three' }))).per[0]?.code, 250);
  c.close();
  t.is(maildirFiles(alice.maildir).length, 2);
  t.is(maildirFiles(join(alice.user, 'Mail2')).length, 1);
});

/** Processes whose parent is this one and whose command line names `file`. */
function childrenRunning(file: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(file)) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

test('challenges go out through the spawner process: the program gets the whole request, a failing one is noted, and a stop ends the spawner', async (t) => {
  const base = hostBase();
  const good = join(base, 'sendmail-good');
  const bad = join(base, 'sendmail-bad');
  writeFileSync(good, `#!/bin/sh\ncat > "${base}/sent.$$"\n`, { mode: 0o755 });
  writeFileSync(bad, '#!/bin/sh\ncat >/dev/null\nexit 75\n', { mode: 0o755 });
  await userHome(base, 'alice', 'example.org', { send: { transport: 'sendmail', sendmail: good } });
  await userHome(base, 'carol', 'example.org', { send: { transport: 'sendmail', sendmail: bad } });
  const server = new LmtpServer({ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, homes: template(base), delimiter: '+', maxSize: 1 << 20, maxConnections: 5, stores: 5, log: () => undefined });
  const where = await server.start();
  t.teardown(() => server.stop());
  const c = await lmtpSession({ port: Number(where.slice(where.lastIndexOf(':') + 1)) });
  const r = await c.send('stranger@example.net', ['alice@example.org', 'carol@example.org'], message({ subject: 'hello' }));
  c.close();
  t.regex(r.per[0]?.text ?? '', /challenge sent/);
  t.regex(r.per[1]?.text ?? '', /challenge failed \(ESENDMAIL\)/);
  const sent = readdirSync(base).filter((f) => f.startsWith('sent.'));
  t.is(sent.length, 1);
  const request = readFileSync(join(base, sent[0] ?? ''), 'utf8');
  t.regex(request, /^To: stranger@example\.net$/m);
  t.regex(request, /alice\+confirm-/);
  t.is(childrenRunning('spawner-process').length, 1);
  await server.stop();
  t.deepEqual(childrenRunning('spawner-process'), []);
});

test('open stores stay within --stores however many homes are touched, and a reload closes the idle ones', async (t) => {
  const base = hostBase();
  const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
  for (const u of users) await userHome(base, u, 'example.org', { challenge: { enabled: false } });
  const { server, target } = await startServer(t, base, { stores: 2 });
  const c = await lmtpSession(target);
  const r = await c.send('stranger@example.net', users.map((u) => `${u}@example.org`), message());
  t.deepEqual(r.per.map((x) => x.code), [250, 250, 250, 250, 250]);
  t.true(server.openStores <= 2, `${server.openStores} open`);
  await server.reload();
  t.is(server.openStores, 0);
  // A store removed and made again meanwhile is not written through the old connection.
  const again = await c.send('stranger2@example.net', ['u1@example.org'], message({ subject: 'after reload' }));
  c.close();
  t.is(again.per[0]?.code, 250);
  t.is(server.openStores, 1);
});

function serveCli(base: string, listen: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', listen, '--homes', template(base)], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (/serving LMTP/.test(out)) {
        clearInterval(timer);
        resolve();
      }
    }, 20);
    child.once('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`vouch serve exited ${code}: ${out}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, ready, exited, output: () => out };
}

test('vouch serve on a Unix socket: SIGTERM lets the deliveries in flight answer 250, then exits 0 and takes no new connection', async (t) => {
  const base = hostBase();
  const slow = join(base, 'slow-sendmail');
  writeFileSync(slow, '#!/bin/sh\nsleep 1\nexec cat >/dev/null\n', { mode: 0o755 });
  const homes = [await userHome(base, 'alice', 'example.org', { send: { transport: 'sendmail', sendmail: slow } }), await userHome(base, 'bob', 'example.org', { send: { transport: 'sendmail', sendmail: slow } })];
  const sock = join(base, 'lmtp.sock');
  const s = serveCli(base, `unix:${sock}`);
  t.teardown(() => s.child.kill('SIGKILL'));
  await s.ready;
  t.is(statSync(sock).mode & 0o777, 0o660);
  const clients = await Promise.all([0, 1, 2].map(() => lmtpSession({ path: sock })));
  const sent = clients.map((c, i) => c.send(`stranger${i}@example.net`, ['alice@example.org', 'bob@example.org'], message({ subject: `inflight ${i}` })));
  // The challenges are being sent (a second each) when the signal comes.
  await new Promise((r) => setTimeout(r, 400));
  s.child.kill('SIGTERM');
  const results = await Promise.all(sent);
  for (const r of results) t.deepEqual(r.per.map((x) => `${x.code} ${/challenge sent/.test(x.text)}`), ['250 true', '250 true']);
  t.is(await s.exited, 0);
  t.false(existsSync(sock));
  await t.throwsAsync(LmtpClient.open({ path: sock }));
  for (const h of homes) t.is((await held(h)).length, 3);
  t.regex(s.output(), /stopped/);
});

test('a server killed with SIGKILL: the sendmail child already started still gets the whole request, and the spawner exits on its own', async (t) => {
  const base = hostBase();
  const slow = join(base, 'slow-sendmail');
  writeFileSync(slow, `#!/bin/sh\nsleep 1\ncat > "${base}/sent.$$"\n`, { mode: 0o755 });
  await userHome(base, 'alice', 'example.org', { send: { transport: 'sendmail', sendmail: slow } });
  const sock = join(base, 'lmtp.sock');
  const s = serveCli(base, `unix:${sock}`);
  t.teardown(() => s.child.kill('SIGKILL'));
  await s.ready;
  const c = await lmtpSession({ path: sock });
  void c.send('stranger@example.net', ['alice@example.org'], message({ subject: 'cut short' })).catch(() => undefined);
  // The sendmail child is running (its spawner is the server's child) when the server dies.
  const server = s.child.pid ?? 0;
  const spawnerOf = () => {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === server && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('spawner-process')) return Number(d);
      } catch {
        /* gone meanwhile */
      }
    }
    return undefined;
  };
  let spawner: number | undefined;
  for (let i = 0; i < 200 && spawner === undefined; i++) {
    await new Promise((r) => setTimeout(r, 25));
    spawner = spawnerOf();
  }
  t.truthy(spawner);
  await new Promise((r) => setTimeout(r, 200));
  s.child.kill('SIGKILL');
  await s.exited;
  c.close();
  const running = () => {
    try {
      return readFileSync(`/proc/${spawner}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 400 && running(); i++) await new Promise((r) => setTimeout(r, 25));
  t.false(running());
  const sent = readdirSync(base).filter((f) => f.startsWith('sent.'));
  t.is(sent.length, 1);
  t.regex(readFileSync(join(base, sent[0] ?? ''), 'utf8'), /alice\+confirm-[\s\S]*\n$/);
});

test('a client that goes away in the middle of DATA gets nothing delivered, and a stop does not wait for it', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  await whitelist(alice, 'bob@example.com');
  const { server, target } = await startServer(t, base);
  const c = await lmtpSession(target);
  c.write('MAIL FROM:<bob@example.com>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n');
  t.deepEqual((await c.replies(3)).map((r) => r.code), [250, 250, 354]);
  c.write(wire(message({ subject: 'cut short' })).subarray(0, 60));
  await new Promise((r) => setTimeout(r, 100));
  c.destroy();
  const started = Date.now();
  await server.stop();
  t.true(Date.now() - started < 5000);
  t.deepEqual(maildirFiles(alice.maildir), []);
});

test('a store that is gone gets 451 and is never made again by the server (only vouch init makes one)', async (t) => {
  const base = hostBase();
  const alice = await userHome(base, 'alice');
  const { server, target } = await startServer(t, base);
  const c = await lmtpSession(target);
  const first = await c.send('stranger@example.net', ['alice@example.org'], message({ subject: 'one' }));
  t.is(first.per[0]?.code, 250);
  t.is(server.openStores, 1);
  // Removed while the server keeps it open: the open connection is not written through.
  for (const f of ['vouch.db', 'vouch.db-wal', 'vouch.db-shm']) rmSync(join(alice.dir, f), { force: true });
  const second = await c.send('stranger@example.net', ['alice@example.org'], message({ subject: 'two' }));
  c.close();
  t.is(second.per[0]?.code, 451);
  t.regex(second.per[0]?.text ?? '', /^4\.3\.0 vouch: .*store/);
  t.false(existsSync(join(alice.dir, 'vouch.db')));
});
