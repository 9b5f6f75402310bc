// `npm run screenshots`: a demo home with a realistic mix of held mail (requests sent, lists, bulk
// mail, bounces, a limit, failed checks), the review page started on it, and PNGs of the sender
// view, the message list, a message and the phone layout taken with Chromium into docs/screenshots/.

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { exactPattern, parsePattern } from '../agent/mail/address.js';
import { homePaths } from '../agent/home/home.js';
import { Store, type ChallengeState } from '../agent/store/store.js';
import { startWeb } from '../web/server.js';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const out = join(root, 'docs', 'screenshots');
const base = mkdtempSync(join(tmpdir(), 'vouch-shots-'));
const home = join(base, 'home');
const user = join(base, 'user');
mkdirSync(user, { recursive: true });
const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', VOUCH_HOME: home, HOME: user, USER: 'alice' };
const init = spawnSync(process.execPath, [join(root, 'dist', 'agent', 'cli.js'), 'init', '--address', 'alice@example.org'], { env, encoding: 'utf8' });
if (init.status !== 0) throw new Error(`vouch init failed: ${init.stderr}`);

interface Demo {
  readonly sender: string;
  readonly from: string;
  readonly subjects: readonly string[];
  readonly challenge: ChallengeState;
  readonly note?: string;
  readonly reason?: string;
  readonly headers?: readonly string[];
  readonly signals?: Record<string, unknown>;
  readonly html?: boolean;
  readonly attachment?: boolean;
}

const DEMO: readonly Demo[] = [
  { sender: 'carol@example.net', from: 'Carol Jones <carol@example.net>', subjects: ['Slides from the conference', 'Dinner on Thursday?', 'Re: your talk'], challenge: 'sent' },
  { sender: 'newsletter-bounces@lists.example', from: 'Weekly Digest <news@lists.example>', subjects: ['This week: 12 new articles', 'This week: the best of 2026', 'This week: spring sale', 'This week: reader mail'], challenge: 'suppressed', note: 'mailing list', headers: ['List-Id: <digest.lists.example>'], html: true },
  { sender: '', from: 'Mail Delivery System <MAILER-DAEMON@mx.example>', subjects: ['Undelivered Mail Returned to Sender'], challenge: 'suppressed', note: 'null sender', attachment: true },
  { sender: 'deals@shop.example', from: 'Shop <deals@shop.example>', subjects: ['48 hours only: 70% off', 'Your cart misses you'], challenge: 'suppressed', note: 'Precedence: bulk', html: true },
  { sender: 'dave@example.com', from: 'Dave Miller <dave@example.com>', subjects: ['Photos from the hike'], challenge: 'suppressed', note: 'global hourly cap', attachment: true },
  { sender: 'noreply@bank.example', from: 'Your Bank <noreply@bank.example>', subjects: ['Your statement is ready'], challenge: 'suppressed', note: 'automatic sender address', html: true },
  { sender: 'winner@prize.example', from: 'Prize Dept <winner@prize.example>', subjects: ['You have WON!!!', 'Final notice: claim your prize', 'Re: Re: your prize'], challenge: 'suppressed', note: 'marked as spam', signals: { classifier: { verdict: 'spam', score: 0.99 } } },
  { sender: 'ceo@paypa1.example', from: 'PayPal <service@paypal.example>', subjects: ['Your account is limited'], challenge: 'suppressed', note: 'DMARC fail', signals: { client: { ip: '203.0.113.9', helo: 'mail.paypa1.example', source: 'received', by: 'mx.example.org' }, auth: { spf: { result: 'softfail', domain: 'paypa1.example' }, dkim: [], dmarc: { result: 'fail', domain: 'paypal.example', policy: 'reject' }, source: 'checked', ms: 41 } } },
  { sender: 'erin@example.org', from: 'Erin <erin@example.org>', subjects: ['Recipe you asked for'], challenge: 'sent' },
  { sender: 'frank@example.co.uk', from: 'Frank <frank@example.co.uk>', subjects: ['Invoice 2026-113', 'Invoice 2026-114'], challenge: 'failed', note: 'ECONNREFUSED', attachment: true },
  { sender: 'grace@example.edu', from: 'Grace Hopper <grace@example.edu>', subjects: ['Reading group'], challenge: 'suppressed', note: 'sender already challenged recently' },
  { sender: 'updates@service.example', from: 'Service Updates <updates@service.example>', subjects: ['Scheduled maintenance', 'Maintenance complete'], challenge: 'suppressed', note: 'Auto-Submitted' },
];

const t0 = Date.UTC(2026, 10, 28, 9, 0);
const store = await Store.open(homePaths(home).db);
let n = 0;
for (const d of DEMO) {
  for (const subject of d.subjects) {
    n += 1;
    const received = t0 + n * 47 * 60_000;
    const ct = d.attachment
      ? 'Content-Type: multipart/mixed; boundary="b"'
      : d.html
        ? 'Content-Type: multipart/alternative; boundary="b"'
        : 'Content-Type: text/plain; charset=utf-8';
    const text = `Hello Alice,\n\n${subject}: this is a demo message for the screenshots.\n\nRegards\n`;
    const body = d.attachment || d.html
      ? `--b\nContent-Type: text/plain; charset=utf-8\n\n${text}\n--b\nContent-Type: ${d.html ? 'text/html; charset=utf-8' : 'application/pdf; name="file.pdf"'}\n\n${d.html ? `<p>${subject}</p>` : 'JVBERi0='}\n--b--\n`
      : text;
    const raw = Buffer.from([`From: ${d.from}`, 'To: Alice <alice@example.org>', `Subject: ${subject}`, `Date: ${new Date(received).toUTCString()}`, `Message-ID: <${n}@demo.example>`, 'MIME-Version: 1.0', ct, ...(d.headers ?? []), '', body].join('\n'));
    await store.hold({
      digest: `demo${n}`, received, sender: d.sender, senderKey: d.sender.toLowerCase(), recipient: 'alice@example.org', fromHeader: d.from, subject,
      date: new Date(received).toUTCString(), messageId: `<${n}@demo.example>`, reason: d.reason ?? 'unknown sender', challenge: d.challenge,
      challengeNote: d.note ?? '', rpline: `Return-Path: <${d.sender}>\n`, dtline: 'Delivered-To: alice@example.org\n', raw,
      ...(d.signals ? { signals: d.signals } : {}),
    });
  }
}
await store.addPatterns('white', [exactPattern('bob@example.com')], t0 - 86_400_000 * 3, { source: 'confirmation', note: 'bob@example.com' });
await store.addPatterns('white', [parsePattern('@family.example')], t0 - 86_400_000 * 9, { source: 'hand' });
await store.addPatterns('white', [exactPattern('hello@friend.example')], t0 - 86_400_000, { source: 'release' });
await store.addPatterns('black', [parsePattern('@spam.example')], t0 - 86_400_000 * 20, { source: 'hand' });
await store.close();

const web = await startWeb({ home: homePaths(home), listen: '127.0.0.1:0', env: { ...process.env, ...env } });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
try {
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 760 }, colorScheme: 'light', timezoneId: 'UTC' });
  const page = await desktop.newPage();
  await page.goto(web.url);
  await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  await page.keyboard.press('j');
  await page.screenshot({ path: join(out, 'senders.png') });
  await page.goto(`${web.base}messages`);
  await page.locator('input[name="ids"]').nth(1).check();
  await page.locator('input[name="ids"]').nth(2).check();
  await page.screenshot({ path: join(out, 'messages.png') });
  await page.goto(`${web.base}messages?why=list`);
  await page.locator('td.subject a').first().click();
  await page.locator('h1.subject').waitFor();
  await page.screenshot({ path: join(out, 'message.png') });
  const phone = await browser.newContext({ viewport: { width: 390, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light', timezoneId: 'UTC' });
  const p2 = await phone.newPage();
  await p2.goto(web.url);
  await p2.goto(`${web.base}messages`);
  await p2.locator('input[name="ids"]').first().check();
  await p2.screenshot({ path: join(out, 'phone.png') });
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await web.close();
  rmSync(base, { recursive: true, force: true });
}
