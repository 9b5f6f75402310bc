// No challenge to a forged sender: `vouch deliver` against a real DNS server on 127.0.0.1 serving
// SPF, DKIM keys, DMARC records and blocklist answers (and silence and SERVFAIL), with messages
// DKIM-signed here by mailauth's signer. The table of issue 13, then the details. Serial: each
// delivery has a DNS budget, and a machine busy with twenty deliveries at once would spend it.

import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { startDns, type DnsServer } from './dns-server.js';
import { makeHome, message, qmailEnv, vouch, type TestHome } from './helpers.js';

const MX = 'mx.example.org';
const GOOD_IP = '192.0.2.10';
const LISTED_IP = '192.0.2.66';
const FORGER_IP = '203.0.113.5';
const V6 = '2001:db8:5::10';

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const PUBLIC = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

let dns: DnsServer;
let down: DnsServer;

test.before(async () => {
  dns = await startDns();
  // good.example: SPF for its own server, a DKIM key, DMARC p=reject.
  dns.txt('good.example', `v=spf1 ip4:${GOOD_IP} ip4:${LISTED_IP} ip6:2001:db8:5::/64 -all`);
  dns.txt('sel._domainkey.good.example', `v=DKIM1; k=rsa; p=${PUBLIC}`);
  dns.txt('_dmarc.good.example', 'v=DMARC1; p=reject');
  // nothing.example exists but publishes nothing.
  dns.a('nothing.example', '198.51.100.1');
  // soft.example: SPF ~all and DMARC p=none.
  dns.txt('soft.example', 'v=spf1 ip4:198.51.100.20 ~all');
  // The blocklist lists LISTED_IP; 127.255.255.254 is its "refused" answer for another.
  dns.a(`66.2.0.192.bl.test`, '127.0.0.2');
  dns.a(`77.2.0.192.bl.test`, '127.255.255.254');
  dns.txt('broken.example', 'v=spf1 -all');
  dns.behave('broken.example', 'servfail');
  down = await startDns();
  down.behave('*', 'silent');
});

test.after.always(async () => {
  await dns?.close();
  await down?.close();
});

function received(ip: string, helo = 'mail.sender.example'): string {
  return ip.includes(':')
    ? `Received: from ${helo} (${helo} [IPv6:${ip}])\n\tby ${MX} (Postfix) with ESMTPS id 4XyZ1;\n\tMon, 23 Nov 2026 10:00:01 +0000 (UTC)`
    : `Received: from unknown (HELO ${helo}) (${ip})\n  by ${MX} with SMTP; 23 Nov 2026 10:00:01 -0000`;
}

function mail(from: string, ip: string | undefined, extra: string[] = []): string {
  const m = message({ from, subject: 'Lunch', headers: extra });
  return ip === undefined ? m : `${received(ip)}\n${m}`;
}

async function signed(from: string, ip: string): Promise<string> {
  const m = message({ from, subject: 'Signed lunch' }).replace(/\n/g, '\r\n');
  const r = await dkimSign(m, { signatureData: [{ signingDomain: 'good.example', selector: 'sel', privateKey: PRIVATE }] } as unknown as Parameters<typeof dkimSign>[1]);
  return `${received(ip)}\r\n${r.signatures}${m}`;
}

async function home(challenge: Record<string, string | boolean | string[]> = {}, server: DnsServer = dns, extra: Record<string, Record<string, string | string[] | boolean>> = {}): Promise<TestHome> {
  return makeHome({
    config: {
      send: { transport: 'file' },
      trust: { mta_names: [MX] },
      dns: { servers: [server.address], timeout: '3s', blocklists: ['bl.test'] },
      challenge: { require: 'aligned', ...challenge },
      ...extra,
    },
  });
}

interface Pending {
  id: string;
  challenge: string;
  challenge_note: string;
  suspect: boolean;
  signals: { client?: { ip?: string; helo?: string; source?: string }; auth?: Record<string, unknown> & { temperror?: boolean; spf?: { result: string }; dmarc?: { result: string; policy: string }; dkim?: { result: string }[] }; dnsbl?: { zone: string; status: string; answer?: string }[] };
}

async function deliver(h: TestHome, sender: string, raw: string): Promise<{ code: number | null; line: string; ms: number; held: Pending }> {
  const start = process.hrtime.bigint();
  const r = await vouch(['deliver'], { env: qmailEnv(h, sender), input: raw });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const l = await vouch(['pending', 'list', '--json'], { env: h.env });
  const held = (JSON.parse(l.stdout) as Pending[])[0];
  if (held === undefined) throw new Error(`nothing held: ${r.stdout}${r.stderr}`);
  return { code: r.code, line: r.stdout.trim(), ms, held };
}

// ---- the table of issue 13

interface Case {
  readonly name: string;
  readonly challenge?: Record<string, string | boolean>;
  readonly server?: () => DnsServer;
  readonly sender: string;
  readonly raw: () => Promise<string> | string;
  readonly outcome: 'challenge sent' | 'held silently';
  readonly note?: RegExp;
  readonly suspect?: boolean;
}

const CASES: Case[] = [
  { name: 'authenticated real sender (SPF pass from its own server)', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', GOOD_IP), outcome: 'challenge sent' },
  { name: 'authenticated real sender (aligned DKIM signature, sent from elsewhere)', sender: 'bob@good.example', raw: () => signed('Bob <bob@good.example>', '198.51.100.99'), outcome: 'challenge sent' },
  { name: 'authenticated real sender over IPv6', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', V6), outcome: 'challenge sent' },
  { name: 'forged envelope and From at a p=reject domain', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', FORGER_IP), outcome: 'held silently', note: /^forged sender: DMARC fail for good\.example \(p=reject\)$/, suspect: true },
  { name: 'forged From at a p=reject domain, envelope of a domain without records', sender: 'x@nothing.example', raw: () => mail('Bank <service@good.example>', FORGER_IP), outcome: 'held silently', note: /^forged sender: DMARC fail/, suspect: true },
  { name: 'no records, require = "aligned"', sender: 'carol@nothing.example', raw: () => mail('carol@nothing.example', FORGER_IP), outcome: 'held silently', note: /^sender not authenticated/, suspect: false },
  { name: 'no records, require = "not-failed"', challenge: { require: 'not-failed' }, sender: 'carol@nothing.example', raw: () => mail('carol@nothing.example', FORGER_IP), outcome: 'challenge sent' },
  { name: 'no records, require = "none"', challenge: { require: 'none' }, sender: 'carol@nothing.example', raw: () => mail('carol@nothing.example', FORGER_IP), outcome: 'challenge sent' },
  { name: 'SPF softfail, require = "not-failed"', challenge: { require: 'not-failed' }, sender: 'dan@soft.example', raw: () => mail('dan@soft.example', FORGER_IP), outcome: 'challenge sent' },
  { name: 'SPF fail, require = "not-failed"', challenge: { require: 'not-failed' }, sender: 'x@good.example', raw: () => mail('x@nothing.example', FORGER_IP), outcome: 'held silently', note: /^forged sender: SPF fail for good\.example$/, suspect: true },
  { name: 'DNS down, on_dns_error = "headers": decided by the other rules', server: () => down, sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', GOOD_IP), outcome: 'challenge sent' },
  { name: 'DNS down, on_dns_error = "hold": no challenge', challenge: { on_dns_error: 'hold' }, server: () => down, sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', GOOD_IP), outcome: 'held silently', note: /^DNS did not answer in time$/ },
  { name: 'SERVFAIL, on_dns_error = "hold"', challenge: { on_dns_error: 'hold' }, sender: 'eve@broken.example', raw: () => mail('eve@broken.example', GOOD_IP), outcome: 'held silently', note: /^DNS did not answer in time$/ },
  { name: 'authenticated sender whose client IP a DNS blocklist lists', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', LISTED_IP), outcome: 'held silently', note: /^client listed in bl\.test \(127\.0\.0\.2\)$/, suspect: true },
  { name: 'a blocklist\'s "refused" answer (127.255.255.x) lists no one', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', '192.0.2.77'), outcome: 'held silently', note: /^forged sender/ },
  { name: 'no Received: line from our MTA: nothing to check SPF against', sender: 'bob@good.example', raw: () => mail('Bob <bob@good.example>', undefined), outcome: 'held silently', note: /^forged sender: DMARC fail/ },
];

for (const c of CASES) {
  test.serial(`table: ${c.name} → ${c.outcome}`, async (t) => {
    const h = await home(c.challenge, c.server?.() ?? dns);
    const r = await deliver(h, c.sender, await c.raw());
    t.is(r.code, 99, r.line);
    if (c.outcome === 'challenge sent') {
      t.regex(r.line, /challenge sent/);
      t.is(r.held.challenge, 'sent');
    } else {
      t.regex(r.line, /challenge suppressed/);
      t.is(r.held.challenge, 'suppressed');
      if (c.note) t.regex(r.held.challenge_note, c.note);
    }
    if (c.suspect !== undefined) t.is(r.held.suspect, c.suspect);
    t.log(`${r.held.challenge}${r.held.challenge_note ? `: ${r.held.challenge_note}` : ''} (${Math.round(r.ms)} ms)`);
  });
}

// ---- the details

test.serial('the signals record the client, each result with its domain, and the blocklist answer', async (t) => {
  const h = await home();
  const r = await deliver(h, 'bob@good.example', await signed('Bob <bob@good.example>', LISTED_IP));
  const s = r.held.signals;
  t.deepEqual(s.client, { ip: LISTED_IP, helo: 'mail.sender.example', source: 'received', by: MX });
  t.is(s.auth?.spf?.result, 'pass');
  t.deepEqual(s.auth?.['spf'], { result: 'pass', domain: 'good.example' });
  t.deepEqual(s.auth?.['dkim'], [{ result: 'pass', domain: 'good.example', org: 'good.example' }]);
  t.like(s.auth?.['dmarc'] as object, { result: 'pass', domain: 'good.example', policy: 'reject' });
  t.deepEqual(s.dnsbl, [{ zone: 'bl.test', status: 'listed', answer: '127.0.0.2' }]);
  const show = await vouch(['pending', 'show', r.held.id], { env: h.env });
  t.regex(show.stdout, /SPF: pass \(good\.example\)/);
  t.regex(show.stdout, /DNSBL bl\.test: listed \(127\.0\.0\.2\)/);
  const json = JSON.parse((await vouch(['pending', 'show', '--json', r.held.id], { env: h.env })).stdout) as { signals: unknown; explained: string[] };
  t.deepEqual(json.signals, r.held.signals);
  t.true(json.explained.includes('DKIM: pass (good.example)'));
});

test.serial('DNS that never answers costs the delivery its budget, not more, and the message is held with temperror', async (t) => {
  const h = await home({}, down, { dns: { servers: [down.address], timeout: '1s', blocklists: ['bl.test'] } });
  const r = await deliver(h, 'bob@good.example', mail('Bob <bob@good.example>', GOOD_IP));
  t.is(r.code, 99);
  t.true(r.ms < 1000 + 3000, `${r.ms} ms`);
  t.true(r.held.signals.auth?.temperror);
  t.deepEqual(r.held.signals.dnsbl, [{ zone: 'bl.test', status: 'error', answer: 'timeout' }]);
});

test.serial('a forged Received: line below our MTA\'s is not believed', async (t) => {
  const h = await home();
  const forged = `Received: from mail.good.example (mail.good.example [${GOOD_IP}])\n\tby ${MX} (Postfix) with ESMTP id FAKE`;
  const r = await deliver(h, 'bob@good.example', `${received(FORGER_IP)}\n${forged}\n${message({ from: 'bob@good.example' })}`);
  t.is(r.held.signals.client?.ip, FORGER_IP);
  t.is(r.held.signals.auth?.spf?.result, 'fail');
  t.is(r.held.challenge, 'suppressed');
});

test.serial('TCPREMOTEIP, when the SMTP server set it, names the client', async (t) => {
  const h = await home();
  const r = await vouch(['deliver'], { env: { ...qmailEnv(h, 'bob@good.example'), TCPREMOTEIP: GOOD_IP, TCPREMOTEHOST: 'mail.good.example' }, input: message({ from: 'bob@good.example' }) });
  t.regex(r.stdout, /challenge sent/);
  const l = JSON.parse((await vouch(['pending', 'list', '--json'], { env: h.env })).stdout) as Pending[];
  t.deepEqual(l[0]?.signals.client, { ip: GOOD_IP, helo: 'mail.good.example', source: 'env' });
});

test.serial("trusted Authentication-Results from our own MTA are used instead of asking DNS again", async (t) => {
  const h = await home({ authserv_ids: [MX] } as unknown as Record<string, string>);
  const before = dns.asked.length;
  const ar = `Authentication-Results: ${MX};\n\tspf=pass smtp.mailfrom=trusted@trusted.example;\n\tdkim=pass header.d=trusted.example;\n\tdmarc=pass (p=reject dis=none) header.from=trusted.example`;
  const r = await deliver(h, 'trusted@trusted.example', `${ar}\n${received(FORGER_IP)}\n${message({ from: 'trusted@trusted.example' })}`);
  t.regex(r.line, /challenge sent/);
  t.is(r.held.signals.auth?.['source'], 'header');
  t.false(dns.asked.slice(before).some((q) => q.includes('trusted.example')), 'no query for the domain');
});

test.serial('Authentication-Results from an id we do not trust, or below a foreign Received: line, are ignored', async (t) => {
  const h = await home({ authserv_ids: [MX] } as unknown as Record<string, string>);
  const ar = `Authentication-Results: ${MX}; spf=pass smtp.mailfrom=bob@good.example; dmarc=pass header.from=good.example`;
  const foreign = 'Received: from x (x [198.51.100.1]) by relay.elsewhere.example (Postfix) with ESMTP id 1';
  const r = await deliver(h, 'bob@good.example', `${received(FORGER_IP)}\n${foreign}\n${ar}\n${message({ from: 'bob@good.example' })}`);
  t.is(r.held.signals.auth?.['source'], 'mailauth');
  t.regex(r.held.challenge_note, /^forged sender/);
});

test.serial('require_visible_recipient: no challenge when the address is in neither To: nor Cc:', async (t) => {
  const h = await home({ require_visible_recipient: true });
  const bcc = mail('Bob <bob@good.example>', GOOD_IP).replace('To: alice@example.org', 'To: undisclosed-recipients:;');
  const r = await deliver(h, 'bob@good.example', bcc);
  t.is(r.held.challenge_note, 'your address is in neither To: nor Cc:');
  const h2 = await home({ require_visible_recipient: true });
  const cc = mail('Bob <bob@good.example>', GOOD_IP).replace('To: alice@example.org', 'To: team@good.example\nCc: "Alice" <Alice-news@Example.ORG>');
  t.regex((await deliver(h2, 'bob@good.example', cc)).line, /challenge sent/);
});

test.serial('a confirmation from the real sender does not release mail held as forged under their name', async (t) => {
  const h = await home();
  const forged = await deliver(h, 'bob@good.example', mail('Bob <bob@good.example>', FORGER_IP));
  t.true(forged.held.suspect);
  const real = await vouch(['deliver'], { env: qmailEnv(h, 'bob@good.example'), input: mail('Bob <bob@good.example>', GOOD_IP) });
  t.regex(real.stdout, /challenge sent/);
  const list = JSON.parse((await vouch(['pending', 'list', '--json'], { env: h.env })).stdout) as Pending[];
  const sent = list.find((m) => m.challenge === 'sent');
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const outbox = join(h.dir, 'outbox');
  const eml = readFileSync(join(outbox, readdirSync(outbox).find((n) => n.endsWith('.eml')) ?? ''), 'utf8');
  const confirm = /^From: (\S+)$/m.exec(eml)?.[1] ?? '';
  const ext = confirm.slice('alice-'.length, confirm.indexOf('@'));
  const reply = await vouch(['deliver'], { env: qmailEnv(h, 'bob@good.example', ext), input: mail('Bob <bob@good.example>', GOOD_IP) });
  t.regex(reply.stdout, /confirmed .*released 1 /);
  const after = JSON.parse((await vouch(['pending', 'list', '--json'], { env: h.env })).stdout) as Pending[];
  t.deepEqual(after.map((m) => m.id), [forged.held.id]);
  t.not(sent?.id, forged.held.id);
});
