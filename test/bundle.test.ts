// The built files `vouch deliver` runs (scripts/postbuild.js): the CLI bundle and the challenge
// bundle, each with its code cache. These tests go through the built CLI, so they exercise what the
// bundles replace at build time: the precompiled templates, nodemailer left to require() for SMTP,
// Node modules required on first use, and launch.cjs writing a cache it lacks.

import test from 'ava';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { spawnSync } from 'node:child_process';
import { fakeSendmail } from './fake-sendmail.js';
import { deliverQmail, makeHome, message, pendingList, qmailEnv, ROOT, vouch } from './helpers.js';

const AGENT = join(ROOT, 'dist', 'agent', 'cli');

test('the build leaves the four bundles and their code caches beside the launcher', (t) => {
  for (const f of ['cli.bundle.cjs', 'cli.bundle.cache', 'store.bundle.cjs', 'store.bundle.cache', 'challenge.bundle.cjs', 'challenge.bundle.cache', 'auth.bundle.cjs', 'auth.bundle.cache', 'classify.bundle.cjs', 'classify.bundle.cache', 'launch.cjs']) {
    t.true(existsSync(join(AGENT, f)), f);
  }
  // The whitelisted path's bundle holds none of the heavy packages, and not SQLite either.
  const cli = readFileSync(join(AGENT, 'cli.bundle.cjs'), 'utf8');
  t.notRegex(cli, /node_modules[\\/](nodemailer|handlebars|mailparser|sqlite3|mailauth|ipaddr\.js|tldts)[\\/]/);
  // Nor the held path's checks: those are bundles of their own.
  t.notRegex(cli, /function (runChecks|clientOf|judge)\(/);
  t.regex(readFileSync(join(AGENT, 'auth.bundle.cjs'), 'utf8'), /node_modules[\\/]mailauth[\\/]/);
  t.notRegex(cli, /node_sqlite3\.node/);
  // Nor the classifier's program runner: it is a bundle of its own, run on the held path only.
  t.notRegex(cli, /function runProgram\b/);
  t.regex(readFileSync(join(AGENT, 'classify.bundle.cjs'), 'utf8'), /function runProgram\b/);
  t.regex(readFileSync(join(AGENT, 'store.bundle.cjs'), 'utf8'), /node_sqlite3\.node/);
});

test('vouch deliver sends a challenge over SMTP from the bundle (nodemailer required at run time)', async (t) => {
  const got: { from: string[]; to: string[]; data: Buffer[] } = { from: [], to: [], data: [] };
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    hideSTARTTLS: true,
    onMailFrom(address, _s, cb) {
      got.from.push(address.address);
      cb();
    },
    onRcptTo(address, _s, cb) {
      got.to.push(address.address);
      cb();
    },
    onData(stream, _s, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        got.data.push(Buffer.concat(chunks));
        cb();
      });
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server.server, 'listening');
  try {
    const h = await makeHome({
      config: { send: { transport: 'smtp', smtp_host: '127.0.0.1', smtp_port: (server.server.address() as AddressInfo).port, smtp_security: 'none' } },
    });
    const r = await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'Lunch' }));
    t.is(r.code, 99, r.stdout);
    t.regex(r.stdout, /challenge sent/);
    t.deepEqual(got.from, ['']);
    t.deepEqual(got.to, ['carol@example.net']);
    const text = got.data[0]?.toString('utf8') ?? '';
    t.regex(text, /^Auto-Submitted: auto-replied\r?$/m);
    t.regex(text, /^Subject: Please confirm your message: Lunch\r?$/m);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('vouch deliver writes a challenge with the file transport and reads a user template from the bundle', async (t) => {
  const h = await makeHome({ config: { send: { transport: 'file' } } });
  mkdirSync(join(h.dir, 'templates'), { recursive: true });
  writeFileSync(join(h.dir, 'templates', 'challenge.hbs'), 'Reply to {{confirm}} please.\n');
  const r = await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net', subject: 'Hi' }));
  t.is(r.code, 99, r.stdout);
  t.regex(r.stdout, /challenge sent/);
  const outbox = join(h.dir, 'outbox');
  const names = readdirSync(outbox).sort();
  t.is(names.filter((n) => n.endsWith('.eml')).length, 1);
  t.is(names.filter((n) => n.endsWith('.envelope.json')).length, 1);
  t.false(names.some((n) => n.endsWith('.tmp')));
  const eml = readFileSync(join(outbox, names.find((n) => n.endsWith('.eml')) ?? ''), 'utf8');
  t.regex(eml, /^Reply to alice-confirm-[a-z0-9.-]+@example\.org please\.$/m);
  t.regex(eml, /^Subject: Please confirm your message: Hi$/m);
});

test('without its code caches the CLI still delivers and challenges, and writes the caches for the next start', async (t) => {
  // A copy of the package whose dist has no caches (as after a Node upgrade made them stale).
  const base = mkdtempSync(join(tmpdir(), 'vouch-nocache-'));
  try {
    cpSync(join(ROOT, 'dist', 'agent'), join(base, 'dist', 'agent'), { recursive: true, verbatimSymlinks: true });
    for (const f of ['node_modules', 'templates', 'config.example.toml', 'package.json']) symlinkSync(join(ROOT, f), join(base, f));
    for (const f of ['cli', 'store', 'challenge', 'classify']) rmSync(join(base, 'dist', 'agent', 'cli', `${f}.bundle.cache`));
    const cli = join(base, 'dist', 'agent', 'cli.js');
    const h = await makeHome();
    const sm = fakeSendmail(h);
    await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
    const run = (sender: string) =>
      spawnSync(process.execPath, [cli, 'deliver'], { env: { PATH: process.env['PATH'] ?? '', ...qmailEnv(h, sender) }, input: message({ from: sender }), encoding: 'utf8' });
    const a = run('bob@example.com');
    t.is(a.status, 99, a.stdout);
    t.regex(a.stdout, /delivered/);
    t.true(existsSync(join(base, 'dist', 'agent', 'cli', 'cli.bundle.cache')));
    // The whitelisted path never ran the store, challenge or classifier bundles (each writes its
    // cache when it first runs).
    for (const f of ['store', 'challenge', 'classify']) t.false(existsSync(join(base, 'dist', 'agent', 'cli', `${f}.bundle.cache`)), f);
    // A word list, so that the classifier is asked (the empty file makes bogofilter fail: the
    // usual rules apply).
    mkdirSync(join(h.dir, 'bogofilter'), { recursive: true });
    writeFileSync(join(h.dir, 'bogofilter', 'wordlist.db'), '');
    const b = run('carol@example.net');
    t.is(b.status, 99, b.stdout);
    t.regex(b.stdout, /held .*challenge sent/);
    t.is(sm.sent().length, 1);
    t.true(existsSync(join(base, 'dist', 'agent', 'cli', 'store.bundle.cache')));
    t.true(existsSync(join(base, 'dist', 'agent', 'cli', 'challenge.bundle.cache')));
    t.true(existsSync(join(base, 'dist', 'agent', 'cli', 'classify.bundle.cache')));
    t.is((await pendingList(h)).length, 1);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
