// The confirmation request itself (composed, re-parsed with mailparser, header injection refused)
// and the three transports, smtp against a real smtp-server on 127.0.0.1.
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { composeChallenge, humanDuration, oneLine, sendChallenge, wellFormedMessageId, type ChallengeRequest } from '../agent/challenge/challenge.js';
import { parseConfig, type Config } from '../agent/home/config.js';
import type { Held } from '../agent/store/store.js';
import { confirmTag } from '../agent/tags/tags.js';
import { FileTransport, SendmailTransport, SmtpTransport, TransportError, sendmailArgs, spawnAwaited, type SmtpSettings } from '../agent/challenge/transport.js';
import { CLI, deliverQmail, makeHome, message, pendingList, setConfig, vouch } from './helpers.js';
import { fakeSendmail, parseMail } from './fake-sendmail.js';

const SECRET = Buffer.alloc(32, 9);
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

function config(extra = ''): Config {
  return parseConfig(`[identity]\naddress = "alice@example.org"\n${extra}`, mkdtempSync(join(tmpdir(), 'vouch-ch-')));
}

function held(over: Partial<Held> = {}): Held {
  return {
    id: 'abcdefghijklm', received: NOW, sender: 'bob@example.com', senderKey: 'bob@example.com', recipient: 'alice@example.org',
    fromHeader: 'Bob <bob@example.com>', subject: 'Lunch?', date: 'Mon, 23 Nov 2026 10:00:00 +0000', messageId: '<orig.1@example.com>',
    size: 100, reason: 'unknown sender', challenge: 'pending', challengeNote: '', state: 'held', maildirName: null, rpline: '', dtline: '',
    signals: {}, suspect: false,
    ...over,
  };
}

function request(over: Partial<Held> = {}, cfg: Config = config()): ChallengeRequest {
  return { config: cfg, secret: SECRET, held: held(over), now: NOW };
}

const CONFIRM = `alice-${confirmTag(SECRET, 'abcdefghijklm', 'bob@example.com')}@example.org`;
const HEADERS = ['auto-submitted', 'content-transfer-encoding', 'content-type', 'date', 'from', 'in-reply-to', 'message-id', 'mime-version', 'references', 'reply-to', 'subject', 'to', 'x-auto-response-suppress'];

test('a challenge has exactly the expected headers, re-parsed with mailparser', async (t) => {
  const c = await composeChallenge(request());
  t.deepEqual(c.envelope, { from: '', to: 'bob@example.com' });
  t.is(c.confirmAddress, CONFIRM);
  const m = await parseMail(c.raw);
  t.deepEqual([...m.headers.keys()].sort(), HEADERS);
  t.deepEqual(m.from?.value, [{ address: CONFIRM, name: '' }]);
  t.deepEqual(m.replyTo?.value, [{ address: CONFIRM, name: '' }]);
  t.deepEqual(m.to && !Array.isArray(m.to) ? m.to.value : undefined, [{ address: 'bob@example.com', name: '' }]);
  t.is(m.subject, 'Please confirm your message: Lunch?');
  t.is(m.headers.get('auto-submitted'), 'auto-replied');
  t.is(m.inReplyTo, '<orig.1@example.com>');
  t.is(m.references, '<orig.1@example.com>');
  t.regex(m.messageId ?? '', /^<[a-z0-9.]+@example\.org>$/);
  t.is(m.date?.getTime(), NOW);
  t.false(c.raw.includes('\r'));
});

test('the text says what to do and why, and names only the Subject, From and Date of the original', async (t) => {
  const m = await parseMail((await composeChallenge(request())).raw);
  const text = m.text ?? '';
  t.regex(text, /just reply to this message/);
  t.regex(text, /only\s+accepts mail from senders it already knows/);
  t.regex(text, /Subject: Lunch\?\n\s+From:\s+Bob <bob@example.com>\n\s+Date:\s+Mon, 23 Nov 2026 10:00:00 \+0000/);
  t.regex(text, /removed after 14 days/);
  t.true(text.includes(CONFIRM));
});

test('the user name goes into From and Reply-To as a display name', async (t) => {
  const m = await parseMail((await composeChallenge(request({}, config('name = "Alice Liddell"')))).raw);
  t.deepEqual(m.from?.value, [{ address: CONFIRM, name: 'Alice Liddell' }]);
  t.deepEqual(m.replyTo?.value, [{ address: CONFIRM, name: 'Alice Liddell' }]);
  const odd = 'Al "x" <evil@x.org>, bob@y.org; Zoë';
  const o = await parseMail((await composeChallenge(request({}, config(`name = ${JSON.stringify(odd)}`)))).raw);
  t.deepEqual(o.from?.value, [{ address: CONFIRM, name: odd }]);
  t.deepEqual(o.replyTo?.value, [{ address: CONFIRM, name: odd }]);
});

test('a non-ASCII subject is RFC 2047 encoded and decodes back', async (t) => {
  const c = await composeChallenge(request({ subject: 'Grüße aus Köln — 日本' }));
  const head = c.raw.subarray(0, c.raw.indexOf('\n\n')).toString('latin1');
  t.regex(head, /^Subject: =\?UTF-8\?[QB]\?/m);
  t.false(/[^\x00-\x7f]/.test(head));
  t.is((await parseMail(c.raw)).subject, 'Please confirm your message: Grüße aus Köln — 日本');
});

test('CR/LF in the subject, From, Date and the user name cannot add a header', async (t) => {
  const cfg = config('name = "Alice\\r\\nBcc: name@evil.example"');
  const c = await composeChallenge(request({
    subject: 'hi\r\nBcc: subject@evil.example\r\n\r\nbody',
    fromHeader: 'Bob\nBcc: from@evil.example',
    date: 'today\r\nX-Injected: yes',
  }, cfg));
  const m = await parseMail(c.raw);
  t.deepEqual([...m.headers.keys()].sort(), HEADERS);
  t.is(m.subject, 'Please confirm your message: hi Bcc: subject@evil.example body');
  t.deepEqual(m.from?.value.map((a) => a.address), [CONFIRM]);
  t.false(c.raw.includes('\nBcc:'));
  t.false(c.raw.includes('\nX-Injected:'));
});

test('a sender with CR/LF or outside the strict grammar is refused before anything is composed', async (t) => {
  for (const sender of ['bob@example.com\r\nBcc: evil@example.net', 'bob@example.com\n', '-f@example.com', 'bob smith@example.com', '', '"b"@example.com']) {
    const err = await t.throwsAsync(composeChallenge(request({ sender })), { instanceOf: TransportError });
    t.is(err?.code, 'EADDRESS', JSON.stringify(sender));
  }
});

test('In-Reply-To and References are set only for a well-formed Message-ID', async (t) => {
  for (const messageId of ['', 'no-brackets@example.com', '<a@b> Bcc: x@y', '<two@a><three@b>', '<no-at-sign>', `<${'x'.repeat(300)}@example.com>`]) {
    const m = await parseMail((await composeChallenge(request({ messageId }))).raw);
    t.false(m.headers.has('in-reply-to'), messageId);
    t.false(m.headers.has('references'), messageId);
  }
  t.is(wellFormedMessageId(' <a.b@c> '), '<a.b@c>');
});

test('a long subject is cut, and an empty one gives a plain request', async (t) => {
  const long = await parseMail((await composeChallenge(request({ subject: 'x'.repeat(500) }))).raw);
  t.true((long.subject ?? '').length < 160);
  const none = await parseMail((await composeChallenge(request({ subject: '' }))).raw);
  t.is(none.subject, 'Please confirm your message');
});

test('templates in the home override the built-in ones', async (t) => {
  const cfg = config();
  mkdirSync(cfg.challenge.templates, { recursive: true });
  writeFileSync(join(cfg.challenge.templates, 'challenge.hbs'), 'Bitte antworten Sie ({{subject}}): {{confirm}}\n');
  writeFileSync(join(cfg.challenge.templates, 'challenge-subject.hbs'), 'Bestätigung: {{subject}}\r\nBcc: evil@example.net\n');
  const m = await parseMail((await composeChallenge(request({}, cfg))).raw);
  t.is(m.subject, 'Bestätigung: Lunch? Bcc: evil@example.net');
  t.is(m.text, `Bitte antworten Sie (Lunch?): ${CONFIRM}\n`);
  t.false(m.headers.has('bcc'));
});

test('a broken user template fails with ETEMPLATE', async (t) => {
  const cfg = config();
  mkdirSync(cfg.challenge.templates, { recursive: true });
  writeFileSync(join(cfg.challenge.templates, 'challenge.hbs'), '{{#if subject}}unclosed');
  const err = await t.throwsAsync(composeChallenge(request({}, cfg)), { instanceOf: TransportError });
  t.is(err?.code, 'ETEMPLATE');
});

test('helpers: oneLine strips control characters and line separators; durations read well', (t) => {
  t.is(oneLine('a\r\nb\u2028c\u0085d\te\u0000', 100), 'a b c d e');
  t.is(oneLine('abcdef', 4), 'abc…');
  t.is(humanDuration(14 * 86_400_000), '14 days');
  t.is(humanDuration(3_600_000), '1 hour');
  t.is(humanDuration(90 * 60_000), '90 minutes');
});

// ---- transports

test('sendmail argv: qmail-inject gets -f "" and --; any other program also gets -i', (t) => {
  t.deepEqual(sendmailArgs('/var/qmail/bin/qmail-inject', 'bob@example.com'), ['-f', '', '--', 'bob@example.com']);
  t.deepEqual(sendmailArgs('/usr/sbin/sendmail', 'bob@example.com'), ['-i', '-f', '', '--', 'bob@example.com']);
});

test('the sendmail transport spawns without a shell, writes the message to stdin, and maps exit codes', async (t) => {
  const calls: { cmd: string; args: readonly string[]; shell: unknown }[] = [];
  const out = join(mkdtempSync(join(tmpdir(), 'vouch-sm-')), 'out');
  const ok = new SendmailTransport('/usr/sbin/sendmail', {
    spawnSync: (cmd, args, options) => {
      calls.push({ cmd, args, shell: options.shell });
      return spawnSync('/bin/sh', ['-c', 'cat > "$0"', out], options);
    },
  });
  await ok.send({ from: '', to: 'bob@example.com' }, Buffer.from('Subject: x\n\n.\nbody\n'));
  t.deepEqual(calls, [{ cmd: '/usr/sbin/sendmail', args: ['-i', '-f', '', '--', 'bob@example.com'], shell: false }]);
  t.is(readFileSync(out, 'utf8'), 'Subject: x\n\n.\nbody\n');
  const failing = new SendmailTransport('/bin/false');
  const err = await t.throwsAsync(failing.send({ from: '', to: 'bob@example.com' }, Buffer.from('x')), { instanceOf: TransportError });
  t.is(err?.code, 'ESENDMAIL');
  const missing = await t.throwsAsync(new SendmailTransport('/nonexistent/sendmail').send({ from: '', to: 'bob@example.com' }, Buffer.from('x')));
  t.is((missing as TransportError).code, 'ESENDMAIL');
  const bad = await t.throwsAsync(ok.send({ from: '', to: '-oX@example.com\n' }, Buffer.from('x')));
  t.is((bad as TransportError).code, 'EADDRESS');
  t.is(calls.length, 1);
});

test('a sendmail program that hangs is killed and reported as ETIMEDOUT', async (t) => {
  const started = Date.now();
  const hang = new SendmailTransport('/bin/sleep', { timeoutMs: 200, spawnSync: (_c, _a, o) => spawnSync('/bin/sleep', ['30'], o) });
  const err = await t.throwsAsync(hang.send({ from: '', to: 'bob@example.com' }, Buffer.from('x')), { instanceOf: TransportError });
  t.is(err?.code, 'ETIMEDOUT');
  t.true(Date.now() - started < 10_000);
});

test('spawnAwaited runs sendmail without blocking, with spawnSync’s answers: input, exit status, a missing program, a timeout', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'vouch-sa-')), 'out');
  const ok = new SendmailTransport('/bin/sh', { spawnSync: (_c, _a, o) => spawnAwaited('/bin/sh', ['-c', 'cat > "$0"', out], o) });
  let ticks = 0;
  const timer = setInterval(() => (ticks += 1), 1);
  await ok.send({ from: '', to: 'bob@example.com' }, Buffer.from('Subject: x\n\nbody\n'));
  t.is(readFileSync(out, 'utf8'), 'Subject: x\n\nbody\n');
  const failing = new SendmailTransport('/bin/false', { spawnSync: spawnAwaited });
  t.is((await t.throwsAsync(failing.send({ from: '', to: 'bob@example.com' }, Buffer.from('x')), { instanceOf: TransportError }))?.code, 'ESENDMAIL');
  const missing = new SendmailTransport('/nonexistent/sendmail', { spawnSync: spawnAwaited });
  t.is((await t.throwsAsync(missing.send({ from: '', to: 'bob@example.com' }, Buffer.from('x')), { instanceOf: TransportError }))?.code, 'ESENDMAIL');
  const hang = new SendmailTransport('/bin/sleep', { timeoutMs: 200, spawnSync: (_c, _a, o) => spawnAwaited('/bin/sleep', ['30'], o) });
  t.is((await t.throwsAsync(hang.send({ from: '', to: 'bob@example.com' }, Buffer.from('x')), { instanceOf: TransportError }))?.code, 'ETIMEDOUT');
  clearInterval(timer);
  t.true(ticks > 0, 'timers ran while sendmail did');
});

test('the file transport writes the .eml and its envelope', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'vouch-ft-')), 'outbox');
  await new FileTransport(dir).send({ from: '', to: 'bob@example.com' }, Buffer.from('Subject: x\n\nhi\n'));
  const names = readdirSync(dir).sort();
  t.is(names.length, 2);
  const eml = names.find((n) => n.endsWith('.eml')) ?? '';
  t.is(readFileSync(join(dir, eml), 'utf8'), 'Subject: x\n\nhi\n');
  t.deepEqual(JSON.parse(readFileSync(join(dir, eml.replace(/\.eml$/, '.envelope.json')), 'utf8')), { from: '', to: ['bob@example.com'] });
});

// ---- a real SMTP server on 127.0.0.1

interface Received {
  mailFrom: string[];
  rcptTo: string[];
  data: Buffer[];
  users: string[];
  secure: boolean[];
}

const tlsFiles = (() => {
  let made: { key: string; cert: string; certPath: string } | undefined;
  return () => {
    if (made) return made;
    const dir = mkdtempSync(join(tmpdir(), 'vouch-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    made = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), certPath: join(dir, 'cert.pem') };
    return made;
  };
})();

async function smtpServer(opts: Partial<SMTPServerOptions>): Promise<{ port: number; got: Received; close: () => Promise<void> }> {
  const got: Received = { mailFrom: [], rcptTo: [], data: [], users: [], secure: [] };
  const { key, cert } = tlsFiles();
  const server = new SMTPServer({
    key,
    cert,
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    onAuth(auth, _session, cb) {
      if (auth.username === 'vouch' && auth.password === 's3cret') {
        got.users.push(auth.username);
        cb(null, { user: auth.username });
      } else cb(new Error('Invalid username or password'));
    },
    onMailFrom(address, session, cb) {
      got.mailFrom.push(address.address);
      got.secure.push(session.secure);
      cb();
    },
    onRcptTo(address, _session, cb) {
      got.rcptTo.push(address.address);
      cb();
    },
    onData(stream, _session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        got.data.push(Buffer.concat(chunks));
        cb();
      });
    },
    ...opts,
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  const port = (server.server.address() as AddressInfo).port;
  return { port, got, close: () => new Promise((r) => server.close(() => r())) };
}

const smtp = (port: number, over: Partial<SmtpSettings>): SmtpSettings => ({ host: '127.0.0.1', port, security: 'starttls', user: '', password: '', ...over });

test('smtp: STARTTLS (required) with AUTH sends MAIL FROM:<> and the bytes of the challenge', async (t) => {
  const s = await smtpServer({});
  try {
    const c = await composeChallenge(request());
    await new SmtpTransport(smtp(s.port, { user: 'vouch', password: 's3cret' }), { tls: { ca: tlsFiles().cert } }).send(c.envelope, c.raw);
    t.deepEqual(s.got.mailFrom, ['']);
    t.deepEqual(s.got.rcptTo, ['bob@example.com']);
    t.deepEqual(s.got.users, ['vouch']);
    t.deepEqual(s.got.secure, [true]);
    const m = await parseMail(s.got.data[0] ?? Buffer.alloc(0));
    t.is(m.subject, 'Please confirm your message: Lunch?');
    t.is(m.replyTo?.value[0]?.address, CONFIRM);
  } finally {
    await s.close();
  }
});

test('smtp: starttls refuses a server that does not offer STARTTLS', async (t) => {
  const s = await smtpServer({ hideSTARTTLS: true });
  try {
    const c = await composeChallenge(request());
    const err = await t.throwsAsync(new SmtpTransport(smtp(s.port, {})).send(c.envelope, c.raw), { instanceOf: TransportError });
    t.truthy(err?.code);
    t.deepEqual(s.got.mailFrom, []);
  } finally {
    await s.close();
  }
});

test('smtp: security "none" sends in the clear without AUTH', async (t) => {
  const s = await smtpServer({ hideSTARTTLS: true });
  try {
    const c = await composeChallenge(request());
    await new SmtpTransport(smtp(s.port, { security: 'none' })).send(c.envelope, c.raw);
    t.deepEqual(s.got.mailFrom, ['']);
    t.deepEqual(s.got.secure, [false]);
    t.deepEqual(s.got.users, []);
  } finally {
    await s.close();
  }
});

test('smtp: security "tls" speaks TLS from the first byte', async (t) => {
  const s = await smtpServer({ secure: true });
  try {
    const c = await composeChallenge(request());
    await new SmtpTransport(smtp(s.port, { security: 'tls' }), { tls: { ca: tlsFiles().cert } }).send(c.envelope, c.raw);
    t.deepEqual(s.got.mailFrom, ['']);
    t.deepEqual(s.got.secure, [true]);
  } finally {
    await s.close();
  }
});

test('smtp: a refused login is a TransportError with the client code, and nothing is sent', async (t) => {
  const s = await smtpServer({});
  try {
    const c = await composeChallenge(request());
    const err = await t.throwsAsync(new SmtpTransport(smtp(s.port, { user: 'vouch', password: 'wrong' }), { tls: { ca: tlsFiles().cert } }).send(c.envelope, c.raw), { instanceOf: TransportError });
    t.is(err?.code, 'EAUTH');
    t.deepEqual(s.got.data, []);
  } finally {
    await s.close();
  }
});

test('smtp: a server that never finishes is given up with ETIMEDOUT', async (t) => {
  const s = await smtpServer({ hideSTARTTLS: true, closeTimeout: 100, onData: (stream) => stream.resume() });
  try {
    const c = await composeChallenge(request());
    const err = await t.throwsAsync(new SmtpTransport(smtp(s.port, { security: 'none' }), { timeoutMs: 300 }).send(c.envelope, c.raw), { instanceOf: TransportError });
    t.is(err?.code, 'ETIMEDOUT');
  } finally {
    await s.close();
  }
});

test('smtp: `vouch deliver` sends the challenge through the configured server', async (t) => {
  const s = await smtpServer({});
  try {
    const h = await makeHome();
    setConfig(h.dir, { send: { transport: 'smtp', smtp_host: '127.0.0.1', smtp_port: s.port, smtp_security: 'starttls', smtp_user: 'vouch', smtp_password: 's3cret' } });
    const env = { ...h.env, NODE_EXTRA_CA_CERTS: tlsFiles().certPath };
    const r = await deliverQmail({ ...h, env }, 'bob@example.com', message({ subject: 'Via SMTP' }));
    t.is(r.code, 99);
    t.regex(r.stdout, /challenge sent/);
    t.deepEqual(s.got.mailFrom, ['']);
    t.deepEqual(s.got.rcptTo, ['bob@example.com']);
    t.is((await parseMail(s.got.data[0] ?? Buffer.alloc(0))).subject, 'Please confirm your message: Via SMTP');
  } finally {
    await s.close();
  }
});

test('smtp: an unreachable server leaves the message held with the challenge failed', async (t) => {
  const s = await smtpServer({});
  const port = s.port;
  await s.close();
  const h = await makeHome();
  setConfig(h.dir, { send: { transport: 'smtp', smtp_port: port, smtp_security: 'none' } });
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 99);
  t.regex(r.stdout, /challenge failed \((ESOCKET|ECONNECTION)\)/);
  t.is((await pendingList(h))[0]?.challenge, 'failed');
});

// ---- through `vouch deliver`

test('header injection through the original message is neutralised in the challenge, and its body never appears', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  const evil = (s: string) => `=?utf-8?b?${Buffer.from(s).toString('base64')}?=`;
  const msg = message({
    from: `${evil('Bob\r\nBcc: from@evil.example')} <bob@example.com>`,
    subject: `${evil('Hi\r\nBcc: subject@evil.example\r\n\r\nInjected body')}`,
    body: 'SECRET-BODY-MARKER\n',
  });
  const r = await deliverQmail(h, 'bob@example.com', msg);
  t.regex(r.stdout, /challenge sent/);
  const raw = sm.sent()[0]?.raw ?? Buffer.alloc(0);
  const m = await parseMail(raw);
  t.deepEqual([...m.headers.keys()].sort(), HEADERS);
  t.is(m.subject, 'Please confirm your message: Hi Bcc: subject@evil.example Injected body');
  t.false(raw.includes('SECRET-BODY-MARKER'));
  t.false((m.text ?? '').includes('SECRET-BODY-MARKER'));
  t.regex(m.text ?? '', /From:\s+Bob Bcc: from@evil\.example <bob@example\.com>/);
});

test('the user template directory from config is used by `vouch deliver`', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  mkdirSync(join(h.dir, 'templates'), { recursive: true });
  writeFileSync(join(h.dir, 'templates', 'challenge-subject.hbs'), 'Who are you? ({{subject}})');
  await deliverQmail(h, 'bob@example.com', message({ subject: 'Hello' }));
  t.is((await parseMail(sm.sent()[0]?.raw ?? Buffer.alloc(0))).subject, 'Who are you? (Hello)');
});

test('sendChallenge sends through the transport it is given', async (t) => {
  const seen: { to: string; raw: Buffer }[] = [];
  await sendChallenge(request(), { send: async (e, raw) => void seen.push({ to: e.to, raw }) });
  t.is(seen.length, 1);
  t.is(seen[0]?.to, 'bob@example.com');
});

// ---- what the whitelisted path loads

/** Runs `vouch deliver` with a module hook that logs every resolved URL of the three heavy packages
 * and of sqlite3, and every read of store.bundle.cjs and challenge.bundle.cjs (the build's bundles
 * of the store with SQLite, and of the composer with handlebars). */
async function loaded(env: NodeJS.ProcessEnv, input: string): Promise<string[]> {
  const log = join(mkdtempSync(join(tmpdir(), 'vouch-load-')), 'log');
  const hook = `export async function resolve(s, c, next) { const r = await next(s, c); if (/node_modules\\/(nodemailer|handlebars|mailparser|sqlite3|mailauth|ipaddr[.]js|tldts)\\/|agent\\/auth\\//.test(r.url)) (await import('node:fs')).appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`;
  const reads = `import fs from 'node:fs'; const read = fs.readFileSync; fs.readFileSync = function (p, ...rest) { if (/(store|challenge|auth)[.]bundle[.]cjs$/.test(String(p))) fs.appendFileSync(${JSON.stringify(log)}, String(p) + '\\n'); return read.call(this, p, ...rest); };`;
  const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)}); ${reads}`;
  const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, CLI, 'deliver'], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.end(input);
  await once(child, 'close');
  try {
    return readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

test('the whitelisted path loads neither nodemailer, handlebars, mailparser nor SQLite; the sendmail challenge path loads handlebars and SQLite only', async (t) => {
  const h = await makeHome();
  fakeSendmail(h);
  const qenv = (sender: string) => ({ ...h.env, SENDER: sender, RECIPIENT: 'alice@example.org', LOCAL: 'alice', HOST: 'example.org', EXT: '', DTLINE: 'Delivered-To: alice@example.org\n', RPLINE: `Return-Path: <${sender}>\n` });
  const challenged = await loaded(qenv('carol@example.net'), message({ from: 'carol@example.net' }));
  const bundled = challenged.some((u) => u.endsWith('challenge.bundle.cjs'));
  t.true(bundled || challenged.some((u) => u.includes('/handlebars/')), 'the hook sees the challenge path');
  t.true(challenged.some((u) => u.endsWith('store.bundle.cjs') || u.includes('/sqlite3/')), 'the hook sees the store');
  // mime.ts composes the request: nodemailer is for the smtp transport alone.
  t.false(challenged.some((u) => u.includes('/nodemailer/')));
  t.false(challenged.some((u) => u.endsWith('auth.bundle.cjs') || u.includes('/mailauth/')), 'require = "none" loads no mailauth');
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  t.deepEqual(await loaded(qenv('bob@example.com'), message()), []);
});

test('with authentication on, the held path loads mailauth and the whitelisted path still loads nothing new', async (t) => {
  const h = await makeHome({ config: { challenge: { require: 'aligned' }, dns: { servers: ['127.0.0.1:9'], timeout: '1s' } } });
  fakeSendmail(h);
  const qenv = (sender: string) => ({ ...h.env, SENDER: sender, RECIPIENT: 'alice@example.org', LOCAL: 'alice', HOST: 'example.org', EXT: '', DTLINE: 'Delivered-To: alice@example.org\n', RPLINE: `Return-Path: <${sender}>\n` });
  const held = await loaded(qenv('carol@example.net'), message({ from: 'carol@example.net' }));
  t.true(held.some((u) => u.endsWith('auth.bundle.cjs') || u.includes('/mailauth/')), 'the hook sees mailauth on the held path');
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  t.deepEqual(await loaded(qenv('bob@example.com'), message()), []);
});

test('a whitelisted sender replying in a thread (In-Reply-To, References) still loads no SQLite: replies are looked up only for mail not whitelisted', async (t) => {
  const h = await makeHome();
  fakeSendmail(h);
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  const env = { ...h.env, SENDER: 'bob@example.com', RECIPIENT: 'alice@example.org', LOCAL: 'alice', HOST: 'example.org', EXT: '', DTLINE: 'Delivered-To: alice@example.org\n', RPLINE: 'Return-Path: <bob@example.com>\n' };
  const threaded = message({ headers: ['In-Reply-To: <m1@example.org>', 'References: <m0@example.org> <m1@example.org>'] });
  t.deepEqual(await loaded(env, threaded), []);
});

test('a whitelisted delivery loads none of node:net, node:stream, node:crypto, node:child_process or node:worker_threads', async (t) => {
  // Each of these costs a cold delivery a millisecond or more of Node's own module loading (node:net
  // brings every stream module with it); only the held and challenge paths may need them.
  const h = await makeHome();
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  const log = join(mkdtempSync(join(tmpdir(), 'vouch-builtins-')), 'log');
  const hook = `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(log)}, process.moduleLoadList.join('\\n')));`;
  const pre = join(mkdtempSync(join(tmpdir(), 'vouch-pre-')), 'pre.cjs');
  writeFileSync(pre, hook);
  const env = { PATH: process.env['PATH'] ?? '', ...h.env, SENDER: 'bob@example.com', RECIPIENT: 'alice@example.org', LOCAL: 'alice', HOST: 'example.org', EXT: '', DTLINE: 'Delivered-To: alice@example.org\n', RPLINE: 'Return-Path: <bob@example.com>\n' };
  const child = spawn(process.execPath, ['-r', pre, CLI, 'deliver'], { env, stdio: ['pipe', 'ignore', 'ignore'] });
  child.stdin.end(message());
  const [code] = (await once(child, 'close')) as [number];
  t.is(code, 99);
  const modules = readFileSync(log, 'utf8').split('\n');
  for (const m of ['net', 'stream', 'crypto', 'child_process', 'worker_threads']) t.false(modules.includes(`NativeModule ${m}`), m);
});
