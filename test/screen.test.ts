// The pure parts of the checks after the suppression rules, by tables: where a message came from
// (qmail and Postfix Received: lines, IPv4 and IPv6), trusted Authentication-Results, the
// authentication policy, the visible-recipient rule and their order. Every parse of sender text
// is bounded: property tests feed it hostile input.

import test from 'ava';
import fc from 'fast-check';
import { readHeaders } from '../agent/mail/header.js';
import { clientOf, parseReceived } from '../agent/mail/received.js';
import { parseAuthResults, trustedResults } from '../agent/mail/authresults.js';
import { authPolicy, type AuthSignal, type RequirePolicy } from '../agent/policy/auth.js';
import { screen } from '../agent/policy/screen.js';
import { recipientVisible } from '../agent/policy/visible.js';
import { fromTrusted, orgDomain } from '../agent/auth/check.js';

const MX = 'mx.example.org';
const h = (text: string) => readHeaders(Buffer.from(`${text}\n\nbody\n`));

test('Received: lines in qmail-smtpd and Postfix formats give the client IP and HELO', (t) => {
  const table: [string, { ip: string | undefined; helo: string | undefined; by: string | undefined }][] = [
    ['from unknown (HELO mail.sender.example) (192.0.2.1)\n  by mx.example.org with SMTP; 23 Nov 2026 10:00:01 -0000', { ip: '192.0.2.1', helo: 'mail.sender.example', by: MX }],
    ['from mail.sender.example (192.0.2.1) by mx.example.org with SMTP; 23 Nov 2026', { ip: '192.0.2.1', helo: 'mail.sender.example', by: MX }],
    ['from unknown (HELO x) (ident@192.0.2.9) by mx.example.org with SMTP; 1 Jan', { ip: '192.0.2.9', helo: 'x', by: MX }],
    ['from unknown (HELO x) (::ffff:192.0.2.7) by mx.example.org with ESMTP; 1 Jan', { ip: '192.0.2.7', helo: 'x', by: MX }],
    ['from unknown (HELO x) (2001:db8::7) by mx.example.org with ESMTP; 1 Jan', { ip: '2001:db8::7', helo: 'x', by: MX }],
    ['from helo.example (rdns.example [192.0.2.2])\n\tby mx.example.org (Postfix) with ESMTPS id 4XyZ;\n\tMon, 23 Nov 2026', { ip: '192.0.2.2', helo: 'helo.example', by: MX }],
    ['from helo.example (unknown [IPv6:2001:DB8::2])\tby MX.example.org. (Postfix) with ESMTP id A; Mon', { ip: '2001:db8::2', helo: 'helo.example', by: MX }],
    ['from helo.example (rdns.example [192.0.2.3]:40123) by mx.example.org (Postfix) with ESMTP', { ip: '192.0.2.3', helo: 'helo.example', by: MX }],
    ['from [192.0.2.4] (unknown [192.0.2.4]) by mx.example.org (Postfix) with SMTP id B', { ip: '192.0.2.4', helo: '[192.0.2.4]', by: MX }],
    ['by mx.example.org (Postfix, from userid 1000) id C; Mon', { ip: undefined, helo: undefined, by: MX }],
    ['from x (comment (nested (deep)) [192.0.2.5]) by mx.example.org', { ip: '192.0.2.5', helo: 'x', by: MX }],
    ['from x (y [999.1.1.1]) by mx.example.org', { ip: undefined, helo: 'x', by: MX }],
  ];
  for (const [value, want] of table) {
    const r = parseReceived(value);
    t.deepEqual({ ip: r.ip, helo: r.helo, by: r.by }, want, value);
  }
});

test('the client is the topmost line our MTA wrote; loopback lines are passed over, a foreign line stops the search', (t) => {
  const ours = (ip: string) => `Received: from h (h [${ip}]) by ${MX} (Postfix) with ESMTP id X`;
  const table: [string, string | undefined][] = [
    [`${ours('192.0.2.1')}\n${ours('203.0.113.9')}`, '192.0.2.1'],
    [`${ours('127.0.0.1')}\n${ours('192.0.2.1')}`, '192.0.2.1'],
    [`${ours('::1')}\n${ours('2001:db8::5')}`, '2001:db8::5'],
    ['Received: from h (h [192.0.2.1]) by relay.other.example (Postfix) with ESMTP id X', undefined],
    [`Received: by other.example id 1\n${ours('192.0.2.1')}`, undefined],
    ['Subject: no Received at all', undefined],
  ];
  for (const [head, ip] of table) t.is(clientOf(h(head), [MX], {}).ip, ip, head);
  t.deepEqual(clientOf(h(ours('192.0.2.1')), [MX], { TCPREMOTEIP: '198.51.100.1', TCPREMOTEHOST: 'h.example' }), { ip: '198.51.100.1', helo: 'h.example', source: 'env' });
  t.is(clientOf(h(ours('192.0.2.1')), [MX], { TCPREMOTEIP: 'garbage' }).ip, '192.0.2.1');
});

test('Authentication-Results are read only from trusted ids above the first foreign Received: line', (t) => {
  const ar = parseAuthResults('mx.example.org 1; spf=pass smtp.mailfrom=bob@a.example; dkim=pass (2048-bit key) header.d=a.example header.s=s1; dmarc=fail (p=reject dis=none) header.from=a.example');
  t.is(ar?.authservId, 'mx.example.org');
  t.deepEqual(ar?.results.map((r) => [r.method, r.result, r.policy]), [['spf', 'pass', ''], ['dkim', 'pass', ''], ['dmarc', 'fail', 'reject']]);
  t.is(ar?.results[1]?.props['header.d'], 'a.example');
  const head = [
    'Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=bob@a.example',
    'Authentication-Results: evil.example; dmarc=pass header.from=a.example',
    `Received: from h (h [192.0.2.1]) by ${MX} (Postfix) with ESMTP id X`,
    'Received: from x by relay.elsewhere.example id 2',
    'Authentication-Results: mx.example.org; dmarc=pass header.from=forged.example',
  ].join('\n');
  const found = trustedResults(h(head), ['MX.example.org'], [MX]);
  t.deepEqual(found.map((r) => r.results.map((x) => `${x.method}=${x.result}`).join(',')), ['spf=pass']);
  const sig = fromTrusted(found, 'bob@a.example');
  t.deepEqual(sig?.spf, { result: 'pass', domain: 'a.example' });
  t.is(sig?.source, 'header');
  t.is(fromTrusted([], 'bob@a.example'), undefined);
  t.deepEqual(trustedResults(h(head), [], [MX]), []);
});

test('organisational domains come from the public suffix list', (t) => {
  t.is(orgDomain('mail.example.co.uk'), 'example.co.uk');
  t.is(orgDomain('Example.COM.'), 'example.com');
  t.is(orgDomain('a.b.github.io'), 'b.github.io');
  t.is(orgDomain(''), '');
});

function sig(over: Partial<AuthSignal> = {}): AuthSignal {
  return {
    source: 'mailauth',
    envelope: { domain: 'mail.a.example', org: 'a.example' },
    spf: { result: 'none', domain: 'mail.a.example' },
    dkim: [],
    dmarc: undefined,
    arc: 'none',
    temperror: false,
    ...over,
  };
}

test('the authentication policy, by table', (t) => {
  const spfPass = { spf: { result: 'pass', domain: 'mail.a.example' } };
  const spfFail = { spf: { result: 'fail', domain: 'mail.a.example' } };
  const dkimA = { dkim: [{ result: 'pass', domain: 'news.a.example', org: 'a.example' }] };
  const dkimOther = { dkim: [{ result: 'pass', domain: 'esp.example', org: 'esp.example' }] };
  const dmarcPass = { dmarc: { result: 'pass', domain: 'a.example', org: 'a.example', policy: 'reject' } };
  const dmarcFail = { dmarc: { result: 'fail', domain: 'a.example', org: 'a.example', policy: 'reject' } };
  const table: [RequirePolicy, 'headers' | 'hold', Partial<AuthSignal>, string | undefined, boolean][] = [
    ['aligned', 'headers', spfPass, undefined, false],
    ['aligned', 'headers', dkimA, undefined, false],
    ['aligned', 'headers', dkimOther, 'sender not authenticated (no aligned SPF, DKIM or DMARC pass)', false],
    ['aligned', 'headers', dmarcPass, undefined, false],
    ['aligned', 'headers', {}, 'sender not authenticated (no aligned SPF, DKIM or DMARC pass)', false],
    ['aligned', 'headers', dmarcFail, 'forged sender: DMARC fail for a.example (p=reject)', true],
    ['aligned', 'headers', spfFail, 'forged sender: SPF fail for mail.a.example', true],
    ['aligned', 'headers', { ...spfFail, ...dkimA }, undefined, false],
    ['aligned', 'headers', { temperror: true }, undefined, false],
    ['aligned', 'hold', { temperror: true }, 'DNS did not answer in time', false],
    ['aligned', 'hold', { ...spfPass, temperror: true }, undefined, false],
    ['aligned', 'hold', { ...dmarcFail, temperror: true }, 'forged sender: DMARC fail for a.example (p=reject)', true],
    ['not-failed', 'headers', {}, undefined, false],
    ['not-failed', 'headers', { spf: { result: 'softfail', domain: 'mail.a.example' } }, undefined, false],
    ['not-failed', 'headers', spfFail, 'forged sender: SPF fail for mail.a.example', true],
    ['not-failed', 'headers', dmarcFail, 'forged sender: DMARC fail for a.example (p=reject)', true],
    ['not-failed', 'hold', { temperror: true }, 'DNS did not answer in time', false],
    ['none', 'hold', { ...dmarcFail, temperror: true }, undefined, false],
    ['aligned', 'headers', { envelope: { domain: '', org: '' }, ...dkimA }, 'sender not authenticated (no aligned SPF, DKIM or DMARC pass)', false],
  ];
  for (const [req, fallback, over, hold, suspect] of table) {
    t.deepEqual(authPolicy(req, fallback, sig(over)), { hold, suspect }, `${req}/${fallback} ${JSON.stringify(over)}`);
  }
  t.deepEqual(authPolicy('aligned', 'hold', undefined), { hold: undefined, suspect: false }, 'no checks run: nothing to say');
});

test('the order after the suppression rules: visible recipient, authentication, blocklists; blocklisted mail is suspect', (t) => {
  const base = { require: 'aligned' as const, onDnsError: 'headers' as const, visible: undefined, auth: sig({ spf: { result: 'pass', domain: 'mail.a.example' } }), dnsbl: [], local: undefined, now: 0 };
  t.deepEqual(screen(base), { hold: undefined, suspect: false });
  t.deepEqual(screen({ ...base, visible: false }), { hold: 'your address is in neither To: nor Cc:', suspect: false });
  t.deepEqual(screen({ ...base, visible: true }), { hold: undefined, suspect: false });
  const listed = [{ zone: 'bl.test', status: 'listed' as const, answer: '127.0.0.2' }];
  t.deepEqual(screen({ ...base, dnsbl: listed }), { hold: 'client listed in bl.test (127.0.0.2)', suspect: true });
  t.deepEqual(screen({ ...base, visible: false, dnsbl: listed }), { hold: 'your address is in neither To: nor Cc:', suspect: true });
  const local = { net: '192.0.2.1/32', count: 1, firstSeen: 0, lastSeen: 0, listedUntil: 10, repeats: 0, why: 'x' };
  t.deepEqual(screen({ ...base, local }), { hold: 'client on the local blocklist (192.0.2.1/32)', suspect: true });
  t.deepEqual(screen({ ...base, local, now: 10 }), { hold: undefined, suspect: false }, 'an entry whose listing ran out');
});

test('the visible-recipient rule finds the bare or tagged address in To: or Cc:, nowhere else', (t) => {
  const table: [string, boolean][] = [
    ['To: alice@example.org', true],
    ['To: "Alice" <ALICE@Example.Org>', true],
    ['To: team@x.example\nCc: bob@y.example, alice-news@example.org', true],
    ['To: undisclosed-recipients:;', false],
    ['To: malice@example.org', false],
    ['To: alice@example.org.evil.example', false],
    ['To: alicex@example.org', false],
    ['Bcc: alice@example.org', false],
    ['Subject: alice@example.org', false],
  ];
  for (const [head, want] of table) t.is(recipientVisible(h(head), 'alice@example.org', '-'), want, head);
});

test('hostile Received: and Authentication-Results values are parsed in bounded time', (t) => {
  const hostile = fc.oneof(
    fc.string({ maxLength: 3000 }),
    fc.constantFrom('(', ')', '[', ']', '\\', ';', ' ', 'from ', 'by ', 'HELO ', '"', '=').chain((c) => fc.integer({ min: 1, max: 40_000 }).map((n) => c.repeat(n))),
  );
  fc.assert(
    fc.property(hostile, (v) => {
      const start = process.hrtime.bigint();
      parseReceived(v);
      parseAuthResults(v);
      recipientVisible(h(`To: ${v.replace(/\n/g, ' ')}`), 'alice@example.org', '-');
      return Number(process.hrtime.bigint() - start) / 1e6 < 200;
    }),
    { numRuns: 300 },
  );
  const nested = `from x ${'('.repeat(50_000)}${')'.repeat(50_000)} by ${MX}`;
  const start = process.hrtime.bigint();
  parseReceived(nested);
  clientOf(h(Array.from({ length: 5000 }, () => `Received: from x (x [192.0.2.1]) by ${MX}`).join('\n')), ['other'], {});
  t.true(Number(process.hrtime.bigint() - start) / 1e6 < 500);
});
