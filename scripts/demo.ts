// `npm run demo`: a throwaway home under demo/, a handful of messages through the real
// `vouch deliver` (as qmail-local would run it), what became of each, the confirmation loop, the
// pending list, and finally the review page on the demo home.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const cli = join(root, 'dist', 'agent', 'cli.js');
const demo = join(root, 'demo');
const home = join(demo, 'home');
const user = join(demo, 'user');
const outbox = join(demo, 'outbox');
const maildir = join(user, 'Maildir');
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', VOUCH_HOME: home, HOME: user, USER: 'alice' };

function vouch(args: string[], input?: string, extra: Record<string, string> = {}): { code: number; out: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { env: { ...env, ...extra }, input: input ?? '', encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 99) {
    process.stderr.write(r.stderr || r.stdout);
  }
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.trim() };
}

function deliver(sender: string, text: string, ext = ''): string {
  const local = ext ? `alice-${ext}` : 'alice';
  const r = vouch(['deliver'], text, {
    SENDER: sender,
    RECIPIENT: `${local}@example.org`,
    LOCAL: local,
    HOST: 'example.org',
    EXT: ext,
    DTLINE: `Delivered-To: ${local}@example.org\n`,
    RPLINE: `Return-Path: <${sender}>\n`,
  });
  return `exit ${r.code}  ${r.out}`;
}

function mail(from: string, subject: string, body: string, extra: string[] = []): string {
  const id = `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}@${from.split('@')[1] ?? 'example.com'}`;
  return [`From: ${from}`, 'To: Alice <alice@example.org>', `Subject: ${subject}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${id}>`, ...extra, '', body].join('\n');
}

function step(title: string): void {
  console.log(`\n== ${title}`);
}

function newestOutbox(): string | undefined {
  let names: string[];
  try {
    names = readdirSync(outbox).filter((n) => n.endsWith('.eml'));
  } catch {
    return undefined;
  }
  names.sort((a, b) => statSync(join(outbox, a)).mtimeMs - statSync(join(outbox, b)).mtimeMs);
  const last = names.at(-1);
  return last === undefined ? undefined : readFileSync(join(outbox, last), 'utf8');
}

rmSync(demo, { recursive: true, force: true });
mkdirSync(user, { recursive: true });

step('vouch init');
console.log(vouch(['init', '--address', 'alice@example.org']).out.split('\n')[0]);
// The demo sends confirmation requests to files instead of the network.
const cfgPath = join(home, 'config.toml');
const cfg = readFileSync(cfgPath, 'utf8').replace(/^transport = "sendmail"$/m, 'transport = "file"').replace(/^file_dir = ".*"$/m, `file_dir = "${outbox}"`)
  // The demo runs without a network: no sender authentication (see the README on challenge.require).
  .replace(/^require = "aligned"$/m, 'require = "none"');
await import('node:fs').then((fs) => fs.writeFileSync(cfgPath, cfg));
console.log(vouch(['whitelist', 'add', 'bob@example.com']).out);
console.log(vouch(['blacklist', 'add', '@spam.example']).out);

step('deliveries (each through the real `vouch deliver`, as qmail-local runs it)');
const cases: [string, string, string][] = [
  ['a whitelisted friend', 'bob@example.com', mail('Bob <bob@example.com>', 'Lunch on Friday?', 'Hi Alice,\nlunch on Friday?\nBob\n')],
  ['an unknown sender', 'carol@example.net', mail('Carol <carol@example.net>', 'Hello from Carol', 'Hi Alice, we met at the conference.\n')],
  ['a blacklisted sender', 'offers@spam.example', mail('Offers <offers@spam.example>', 'You won!', 'Click here.\n')],
  ['a mailing list', 'announce-bounces+alice=example.org@lists.example', mail('Announce <announce@lists.example>', '[announce] Release 2.0', 'New release.\n', ['List-Id: <announce.lists.example>', 'Precedence: list'])],
  ['the null sender (a bounce)', '', mail('MAILER-DAEMON@mx.example', 'Undelivered Mail Returned to Sender', 'It failed.\n', ['Auto-Submitted: auto-replied'])],
];
for (const [what, sender, text] of cases) console.log(`${what.padEnd(28)} ${deliver(sender, text)}`);

step('the confirmation request Carol got (written to demo/outbox/)');
const challenge = newestOutbox();
const confirm = challenge === undefined ? undefined : /^Reply-To:.*?<?([^\s<>]+@example\.org)>?\s*$/im.exec(challenge)?.[1];
if (challenge !== undefined && confirm !== undefined) {
  console.log(challenge.split(/\r?\n\r?\n/)[0]?.split(/\r?\n/).filter((l) => /^(From|To|Subject|Auto-Submitted|In-Reply-To):/i.test(l)).map((l) => `  ${l}`).join('\n'));
  step('Carol replies to the confirmation address');
  const ext = confirm.slice(0, confirm.indexOf('@')).slice('alice-'.length);
  console.log(deliver('carol@example.net', mail('Carol <carol@example.net>', 'Re: confirm', '> Please confirm\nDone!\n', [`In-Reply-To: <x@example.org>`]), ext));
  console.log(`  next message from Carol: ${deliver('carol@example.net', mail('Carol <carol@example.net>', 'Thanks', 'Thanks!\n'))}`);
} else {
  console.log('  (no confirmation request was written)');
}

step('vouch pending list');
console.log(vouch(['pending', 'list']).out);
step('vouch send: Alice writes to Dave through her mail client\'s sendmail');
// The real sendmail is a stand-in that keeps what it is given in demo/sent/.
const fs = await import('node:fs');
const sm = join(demo, 'bin', 'sendmail');
fs.mkdirSync(join(demo, 'bin'), { recursive: true });
fs.writeFileSync(sm, `#!/bin/sh\nmkdir -p '${join(demo, 'sent')}' && cat > '${join(demo, 'sent')}/$$.eml'\n`, { mode: 0o755 });
fs.writeFileSync(cfgPath, fs.readFileSync(cfgPath, 'utf8').replace(/^sendmail = ".*"$/m, `sendmail = "${sm}"`));
const toDave = ['From: Alice <alice@example.org>', 'To: Dave <dave@example.com>', 'Subject: The draft', 'Message-ID: <draft.1@example.org>', '', 'Here it is.\n'].join('\n');
const sent = vouch(['send', '-oem', '-oi', '--', 'dave@example.com'], toDave);
console.log(`  vouch send -oem -oi -- dave@example.com: exit ${sent.code}; whitelist now: ${vouch(['whitelist', 'list']).out.split('\n').join(', ')}`);
console.log(`  Dave answers from another address: ${deliver('dave.home@mail.example', mail('Dave <dave.home@mail.example>', 'Re: The draft', 'Looks good.\n', ['In-Reply-To: <draft.1@example.org>']))}`);

step('vouch digest: a summary of what is held, mailed to Alice (demo/outbox/)');
console.log(`  ${vouch(['digest', '-v']).out}`);
const digest = newestOutbox();
if (digest !== undefined) {
  console.log(digest.split(/\r?\n\r?\n/)[0]?.split(/\r?\n/).filter((l) => /^(From|To|Subject|Auto-Submitted|Content-Type):/i.test(l)).map((l) => `  ${l}`).join('\n'));
  console.log(`  the digest arriving: ${deliver('', digest)}`);
}
console.log(`  vouch digest again: ${vouch(['digest', '-v']).out}`);

step('Maildir');
console.log(`  ${readdirSync(join(maildir, 'new')).length} message(s) in ${maildir}/new`);

step('the review page');
const { startWeb } = await import('../web/server.js');
const { homePaths } = await import('../agent/home/home.js');
const web = await startWeb({ home: homePaths(home), listen: '127.0.0.1:8025', env: { ...process.env, ...env } });
console.log(`  open ${web.url}   (Ctrl-C to stop)`);
const stop = () => {
  void web.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
