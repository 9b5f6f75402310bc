// The CLI contract of DESIGN.md, driven through the built `vouch` command.
import test from 'ava';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, qmailEnv, ROOT, vouch } from './helpers.js';

test('init creates config, a 32-byte secret and a web token (0600), the store and the Maildir', async (t) => {
  const h = await makeHome({ address: 'alice@example.org' });
  t.is(statSync(join(h.dir, 'secret')).size, 32);
  t.is(statSync(join(h.dir, 'secret')).mode & 0o777, 0o600);
  t.is(statSync(join(h.dir, 'web-token')).mode & 0o777, 0o600);
  t.true(statSync(join(h.dir, 'vouch.db')).isFile());
  t.true(statSync(join(h.maildir, 'new')).isDirectory());
  t.regex(readFileSync(join(h.dir, 'config.toml'), 'utf8'), /^address = "alice@example.org"$/m);
});

test('init prints the absolute .qmail and Postfix lines', async (t) => {
  const h = await makeHome();
  const r = await vouch(['init'], { env: h.env });
  t.is(r.code, 0);
  t.regex(r.stdout, /already set up; nothing replaced/);
  t.regex(r.stdout, /~\/\.qmail and in ~\/\.qmail-default\n {2}\|\/\S+node \/\S+\/dist\/agent\/cli\.js (--home \S+ )?deliver\n/);
  t.regex(r.stdout, /"\|\/\S+node \/\S+\/dist\/agent\/cli\.js (--home \S+ )?deliver --mta postfix"/);
  t.regex(r.stdout, /mailbox_command = /);
});

test('init run again never replaces the secret, the token or the store', async (t) => {
  const h = await makeHome();
  const secret = readFileSync(join(h.dir, 'secret'));
  const token = readFileSync(join(h.dir, 'web-token'));
  await deliverQmail(h, 'carol@example.net', message());
  const r = await vouch(['init'], { env: h.env });
  t.is(r.code, 0);
  t.deepEqual(readFileSync(join(h.dir, 'secret')), secret);
  t.deepEqual(readFileSync(join(h.dir, 'web-token')), token);
  t.is((await pendingList(h)).length, 1);
});

test('init refuses a bad address with one line and a non-zero exit', async (t) => {
  const r = await vouch(['init', '--address', 'not-an-address'], { env: { VOUCH_HOME: '/tmp/vouch-never', HOME: '/tmp' } });
  t.not(r.code, 0);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.regex(r.stderr, /^vouch: --address must be a plain address/);
});

test('whitelist add, list and remove', async (t) => {
  const h = await makeHome();
  t.is((await vouch(['whitelist', 'add', 'Bob@Example.com', '@friends.org', '*@*.corp.example'], { env: h.env })).code, 0);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '*@*.corp.example\n@friends.org\nbob@example.com\n');
  t.is((await vouch(['whitelist', 'remove', 'bob@example.com'], { env: h.env })).stdout, '1 removed from the whitelist\n');
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '*@*.corp.example\n@friends.org\n');
});

test('a bad pattern is refused with one line naming it', async (t) => {
  const h = await makeHome();
  const r = await vouch(['blacklist', 'add', 'b*b@example.com'], { env: h.env });
  t.is(r.code, 2);
  t.regex(r.stderr, /^vouch: bad pattern "b\*b@example.com"/);
});

test('whitelist import reads 100,000 patterns with comments from stdin', async (t) => {
  const h = await makeHome();
  const lines = ['# friends', ''];
  for (let i = 0; i < 100_000; i++) lines.push(`user${i}@example${i % 100}.com  # n${i}`);
  const r = await vouch(['whitelist', 'import', '-'], { env: h.env, input: lines.join('\n'), timeoutMs: 120_000 });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '100000 added to the whitelist (100000 read)\n');
  const d = await deliverQmail(h, 'user99999@example99.com', message());
  t.regex(d.stdout, /delivered: whitelisted sender/);
});

test('whitelist import names the line of a bad pattern and adds nothing', async (t) => {
  const h = await makeHome();
  const file = join(h.dir, 'list.txt');
  writeFileSync(file, 'a@b.org\n\nnonsense\n');
  const r = await vouch(['whitelist', 'import', file], { env: h.env });
  t.is(r.code, 2);
  t.regex(r.stderr, /line 3: bad pattern "nonsense"/);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
});

test('pending list, show, release --whitelist and delete --blacklist', async (t) => {
  const h = await makeHome({ config: { challenge: { enabled: false } } });
  await deliverQmail(h, 'carol@example.net', message({ from: 'Carol <carol@example.net>', subject: 'From Carol', body: 'Carol body\n' }));
  await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net', subject: 'From Dave' }));
  const held = await pendingList(h);
  t.deepEqual(held.map((m) => m.subject), ['From Dave', 'From Carol']);
  const carol = held.find((m) => m.sender === 'carol@example.net')?.id ?? '';
  const dave = held.find((m) => m.sender === 'dave@example.net')?.id ?? '';

  const text = await vouch(['pending', 'list'], { env: h.env });
  t.regex(text.stdout, new RegExp(`${carol} .* carol@example.net  "From Carol"  \\[unknown sender; challenge suppressed: challenges are turned off\\]`));

  const show = await vouch(['pending', 'show', carol], { env: h.env });
  t.regex(show.stdout, /subject: From Carol/);
  t.regex(show.stdout, /Carol body/);

  const rel = await vouch(['pending', 'release', carol, '--whitelist'], { env: h.env });
  t.is(rel.stdout, '1 released, 1 sender(s) whitelisted: carol@example.net\n');
  t.is(maildirFiles(h.maildir).length, 1);
  t.regex(maildirFiles(h.maildir)[0]?.bytes.toString() ?? '', /^Return-Path: <carol@example.net>\nDelivered-To: alice@example.org\nFrom: Carol/);
  const again = await vouch(['pending', 'release', carol], { env: h.env });
  t.is(again.code, 1);
  t.regex(again.stdout, /0 released; not held/);
  t.is(maildirFiles(h.maildir).length, 1);
  t.regex((await deliverQmail(h, 'carol@example.net', message())).stdout, /whitelisted/);

  const del = await vouch(['pending', 'delete', dave, '--blacklist'], { env: h.env });
  t.is(del.stdout, `1 deleted, 1 sender(s) blacklisted: dave@example.net\n`);
  t.deepEqual(await pendingList(h), []);
  t.regex((await deliverQmail(h, 'dave@example.net', message())).stdout, /dropped: blacklisted/);
});

test('pending commands refuse ids that are not ids', async (t) => {
  const h = await makeHome();
  const r = await vouch(['pending', 'release', '../../etc/passwd'], { env: h.env });
  t.is(r.code, 2);
  t.regex(r.stderr, /is not a message id/);
});

const helps = [[], ['init'], ['deliver'], ['pending'], ['pending', 'list'], ['pending', 'release'], ['whitelist'], ['whitelist', 'import'], ['blacklist', 'add'], ['address'], ['address', 'dated'], ['expire'], ['web'], ['fsck']];
for (const args of helps) {
  test(`vouch ${args.join(' ')} --help prints usage and exits 0`, async (t) => {
    const r = await vouch([...args, '--help'], { env: { HOME: '/tmp' } });
    t.is(r.code, 0);
    t.regex(r.stdout, /^Usage: vouch/);
  });
}

test('an unknown command is one line of error and a non-zero exit', async (t) => {
  const r = await vouch(['frobnicate'], { env: { HOME: '/tmp' } });
  t.not(r.code, 0);
  t.regex(r.stderr, /^vouch: unknown command 'frobnicate'/);
});

test('pending show never prints terminal escape sequences from a message', async (t) => {
  const h = await makeHome({ config: { challenge: { enabled: false } } });
  await deliverQmail(h, 'carol@example.net', message({ subject: 'evil \u001b]0;title\u0007', body: 'text \u001b[2J\u001b[31mred\r\n' }));
  const [held] = await pendingList(h);
  const r = await vouch(['pending', 'show', held?.id ?? ''], { env: h.env });
  t.is(r.code, 0);
  t.false(r.stdout.includes('\u001b'));
  t.regex(r.stdout, /text \^\[\[2J\^\[\[31mred/);
});

test('a usage error commander catches exits 2 with one line, like our own usage errors', async (t) => {
  const h = await makeHome();
  for (const args of [['whitelist', 'add', '--nonsense'], ['pending', 'show'], ['address', 'keyword'], ['no-such-command']]) {
    const r = await vouch(args, { env: h.env });
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, /^vouch: /, args.join(' '));
  }
  t.is((await vouch(['--help'], { env: h.env })).code, 0);
});

test('the .qmail line init prints, run by a shell as qmail-local runs it, delivers a whitelisted message', async (t) => {
  const h = await makeHome();
  await vouch(['whitelist', 'add', 'bob@example.com'], { env: h.env });
  const r = await vouch(['init', '--home', h.dir], { env: h.env });
  const line = /^ {2}\|(.+)$/m.exec(r.stdout)?.[1];
  if (line === undefined) return t.fail(`no .qmail line in: ${r.stdout}`);
  // The path users installed before agent/ had folders: dist/agent/cli.js, which must keep working.
  t.regex(line, /\/dist\/agent\/cli\.js --home \S+ deliver$/);
  const run = spawnSync('/bin/sh', ['-c', line], { env: qmailEnv(h, 'bob@example.com'), input: message({ from: 'bob@example.com' }) });
  t.is(run.status, 99, run.stdout.toString());
  t.regex(run.stdout.toString(), /^vouch: delivered: whitelisted sender bob@example\.com/);
  t.is(maildirFiles(h.maildir).length, 1);
});

test('deliver with a bad option answers the MTA that --mta names: 75 for procmail and postfix, 111 for qmail', async (t) => {
  const h = await makeHome();
  // A qmail-looking environment: only --mta can say it is procmail.
  const env = { ...h.env, DTLINE: 'Delivered-To: alice@example.org\n', RPLINE: 'Return-Path: <bob@example.com>\n' };
  const runs = await Promise.all([
    vouch(['deliver', '--mta', 'procmail', '--bogus'], { env, input: message() }),
    vouch(['deliver', '--mta=postfix', '--bogus'], { env, input: message() }),
    vouch(['deliver', '--bogus', '--mta', 'procmail'], { env, input: message() }),
    vouch(['deliver', '--mta', 'qmail', '--bogus'], { env, input: message() }),
  ]);
  t.deepEqual(runs.map((r) => r.code), [75, 75, 75, 111]);
});

test('vouch --version and vouch version print the package version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  for (const args of [['--version'], ['-V'], ['version']]) {
    const r = await vouch(args, { env: { VOUCH_HOME: '/nonexistent/vouch', HOME: '/nonexistent' } });
    t.is(r.code, 0, args.join(' '));
    t.is(r.stdout, `vouch ${version}\n`);
  }
});

test('pending show and pending release of an unknown id both exit 1 with one line', async (t) => {
  const h = await makeHome();
  const show = await vouch(['pending', 'show', 'aaaaaaaaaaaaa'], { env: h.env });
  const release = await vouch(['pending', 'release', 'aaaaaaaaaaaaa'], { env: h.env });
  t.is(show.code, 1);
  t.is(release.code, 1);
  t.regex(show.stderr, /^vouch: no held message aaaaaaaaaaaaa\n$/);
  // A malformed id is bad input: exit 2, for both.
  t.is((await vouch(['pending', 'show', 'nope'], { env: h.env })).code, 2);
  t.is((await vouch(['pending', 'release', 'nope'], { env: h.env })).code, 2);
});
