import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseConfig } from '../agent/home/config.js';
import { ConfigError } from '../agent/failure/failure.js';
import { readFileSync } from 'node:fs';
import { ROOT } from './helpers.js';

const env = { HOME: '/home/alice' };
const minimal = '[identity]\naddress = "alice@example.org"\n';

test('a config with only the address gets every default', (t) => {
  const c = parseConfig(minimal, '/home/alice/.vouch', env);
  t.is(c.identity.delimiter, '-');
  t.is(c.delivery.maildir, '/home/alice/Maildir');
  t.is(c.send.transport, 'sendmail');
  t.is(c.send.sendmail, '/var/qmail/bin/qmail-inject');
  t.is(c.pending.lifetime, 14 * 86_400_000);
  t.is(c.web.listen, '127.0.0.1:8025');
  t.is(c.challenge.rate_window, 86_400_000);
  t.true(Object.isFrozen(c) && Object.isFrozen(c.identity));
});

test('config.example.toml is a valid config whose values are the defaults', (t) => {
  const text = readFileSync(join(ROOT, 'config.example.toml'), 'utf8');
  const fromExample = parseConfig(text, '/h/.vouch', env);
  const fromDefaults = parseConfig(minimal, '/h/.vouch', env);
  t.deepEqual(fromExample, fromDefaults);
});

const bad: [string, string][] = [
  ['[identity]\naddress = "alice@example.org"\ncolour = "red"\n', 'identity.colour'],
  ['[identity]\naddress = "alice@example.org"\n[mystery]\nx = 1\n', 'mystery'],
  ['[identity]\naddress = "not an address"\n', 'identity.address'],
  ['[identity]\ndelimiter = "-"\n', 'identity.address'],
  ['[identity]\naddress = "alice@example.org"\ndelimiter = "."\n', 'identity.delimiter'],
  [`${minimal}[pending]\nlifetime = "forever"\n`, 'pending.lifetime'],
  [`${minimal}[pending]\nlifetime = 14\n`, 'pending.lifetime'],
  [`${minimal}[delivery]\nmax_size = "huge"\n`, 'delivery.max_size'],
  [`${minimal}[delivery]\nblacklist = "bounce"\n`, 'delivery.blacklist'],
  [`${minimal}[delivery]\njunk_folder = "../etc"\n`, 'delivery.junk_folder'],
  [`${minimal}[send]\nsmtp_port = 70000\n`, 'send.smtp_port'],
  [`${minimal}[send]\ntransport = "carrier-pigeon"\n`, 'send.transport'],
  [`${minimal}[challenge]\nenabled = "yes"\n`, 'challenge.enabled'],
  [`${minimal}[challenge]\nauthserv_ids = "mx.example.org"\n`, 'challenge.authserv_ids'],
  [`${minimal}[web]\nlisten = "everywhere"\n`, 'web.listen'],
  [`${minimal}[web]\nsession_idle = "a while"\n`, 'web.session_idle'],
  [`${minimal}[web]\nsession_lifetime = "400d"\n`, 'web.session_lifetime'],
  [`${minimal}[web]\nsession_idle = "8d"\n`, 'web.session_idle'],
  [`${minimal}[challenge]\nrequire = "some"\n`, 'challenge.require'],
  [`${minimal}[challenge]\non_dns_error = "bounce"\n`, 'challenge.on_dns_error'],
  [`${minimal}[dns]\nservers = ["dns.example.org"]\n`, 'dns.servers'],
  [`${minimal}[dns]\nservers = ["127.0.0.1:99999"]\n`, 'dns.servers'],
  [`${minimal}[dns]\nservers = ["[::1]53"]\n`, 'dns.servers'],
  [`${minimal}[dns]\ntimeout = "soon"\n`, 'dns.timeout'],
  [`${minimal}[dns]\ntimeout = "5m"\n`, 'dns.timeout'],
  [`${minimal}[dns]\nblocklists = ["not a zone"]\n`, 'dns.blocklists'],
  [`${minimal}[trust]\nmta_names = ["mx example"]\n`, 'trust.mta_names'],
  [`${minimal}[blocklist]\nipv6_prefix = 8\n`, 'blocklist.ipv6_prefix'],
  ['identity = 3\n', 'identity'],
  // Beyond Node's timer range (2^31-1 ms) a deadline would fire at once; beyond 900s it outlasts Postfix's limit.
  [`${minimal}[delivery]\ndeadline = "25d"\n`, 'delivery.deadline'],
  [`${minimal}[delivery]\ndeadline = "16m"\n`, 'delivery.deadline'],
  [`${minimal}[classifier]\nsuppress = ["spam", "ham"]\n`, 'classifier.suppress'],
  [`${minimal}[classifier]\nsuppress = "spam"\n`, 'classifier.suppress'],
  [`${minimal}[classifier]\ntimeout = "0s"\n`, 'classifier.timeout'],
  [`${minimal}[classifier]\ntimeout = "2m"\n`, 'classifier.timeout'],
  [`${minimal}[classifier]\nmax_size = "2M"\n`, 'classifier.max_size'],
  [`${minimal}[classifier]\nlearn_whitelisted = -1\n`, 'classifier.learn_whitelisted'],
  [`${minimal}[classifier]\nwordlist = "x"\n`, 'classifier.wordlist'],
];

for (const [i, [text, key]] of bad.entries()) {
  test(`bad config #${i + 1} is refused with an error naming ${key}`, (t) => {
    const err = t.throws(() => parseConfig(text, '/h', env), { instanceOf: ConfigError });
    t.is(err?.key, key);
    t.true(err?.message.includes(key));
  });
}

test('delivery.deadline may be up to 900s', (t) => {
  t.is(parseConfig(`${minimal}[delivery]\ndeadline = "15m"\n`, '/h', env).delivery.deadline, 900_000);
});

test('DNS servers are taken as "IP", "IP:PORT", IPv6 and "[IPv6]:PORT"', (t) => {
  const c = parseConfig(`${minimal}[dns]\nservers = ["127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:5353"]\ntimeout = "30s"\n`, '/h', env);
  t.deepEqual(c.dns.servers, ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:5353']);
  t.is(c.dns.timeout, 30_000);
  t.is(parseConfig(minimal, '/h', env).challenge.require, 'aligned');
});

test('the classifier is on with bogofilter, a word list in the home, a 2 s timeout, and only spam suppressing', (t) => {
  const c = parseConfig(minimal, '/h/.vouch', env).classifier;
  t.deepEqual({ ...c, suppress: [...c.suppress] }, {
    enabled: true,
    command: '/usr/bin/bogofilter',
    wordlists: '/h/.vouch/bogofilter',
    timeout: 2000,
    suppress: ['spam'],
    max_size: 512 * 1024,
    learn_expired: true,
    learn_whitelisted: 0,
  });
  t.deepEqual([...parseConfig(`${minimal}[classifier]\nsuppress = ["unsure", "spam", "spam"]\n`, '/h', env).classifier.suppress], ['unsure', 'spam']);
});

test('broken TOML is refused with its line number', (t) => {
  const err = t.throws(() => parseConfig(`${minimal}[send\ntransport = "smtp"\n`, '/h', env), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', /not valid TOML \(line 3\)/);
});

test('paths: ~ is the user home, relative paths are inside the vouch home', (t) => {
  const c = parseConfig(`${minimal}[delivery]\nmaildir = "Mail"\n[send]\nfile_dir = "~/out"\n`, '/v', env);
  t.is(c.delivery.maildir, '/v/Mail');
  t.is(c.send.file_dir, '/home/alice/out');
});

test('a missing config.toml says to run vouch init', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-cfg-'));
  const err = t.throws(() => loadConfig(dir, env), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', /vouch init/);
  writeFileSync(join(dir, 'config.toml'), minimal);
  t.is(loadConfig(dir, env).identity.address, 'alice@example.org');
});

test('the checked config is cached beside config.toml, used only for the same text and homes, and frozen', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-cfg-'));
  writeFileSync(join(dir, 'config.toml'), `${minimal}[delivery]\nmaildir = "~/Mail"\n`);
  const first = loadConfig(dir, env);
  const cache = JSON.parse(readFileSync(join(dir, 'config.cache'), 'utf8')) as { config: unknown };
  t.deepEqual(cache.config, JSON.parse(JSON.stringify(first)));
  // The cache is what the next load returns: planted values show through…
  writeFileSync(join(dir, 'config.cache'), JSON.stringify({ ...cache, config: { ...(cache.config as object), planted: true } }));
  const second = loadConfig(dir, env) as unknown as { planted?: boolean; delivery: object };
  t.true(second.planted);
  t.true(Object.isFrozen(second) && Object.isFrozen(second.delivery));
  // …but never for another user home, nor after config.toml changes.
  t.is(loadConfig(dir, { HOME: '/home/bob' }).delivery.maildir, '/home/bob/Mail');
  writeFileSync(join(dir, 'config.toml'), `${minimal}[delivery]\nmaildir = "/srv/mail"\n`);
  t.is(loadConfig(dir, env).delivery.maildir, '/srv/mail');
  // A damaged cache is ignored and replaced.
  writeFileSync(join(dir, 'config.cache'), '{"v":1,');
  t.is(loadConfig(dir, env).delivery.maildir, '/srv/mail');
  t.is((JSON.parse(readFileSync(join(dir, 'config.cache'), 'utf8')) as { config: { delivery: { maildir: string } } }).config.delivery.maildir, '/srv/mail');
  // A broken config.toml is an error even when an old cache exists.
  writeFileSync(join(dir, 'config.toml'), '[identity\n');
  t.throws(() => loadConfig(dir, env), { instanceOf: ConfigError });
});
