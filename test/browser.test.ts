// The review page in real headless Chromium (Debian's, driven by playwright-core): the user's
// story from the printed login URL to a released message in the Maildir, and a corpus of hostile
// mail that must not run a script or make the browser fetch anything beyond 127.0.0.1.

import test from 'ava';
import type { BrowserContext, Page } from 'playwright-core';
import { sharedBrowser } from './chromium.js';
import { startWeb, type RunningWeb } from '../web/server.js';
import { deliverQmail, fixture, maildirFiles, makeHome, pendingList, type TestHome } from './helpers.js';

const browser = sharedBrowser();

interface Watched {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly requests: string[];
  readonly dialogs: string[];
  readonly consoleErrors: string[];
}

/** A fresh context that records every request and dialog, and lets nothing leave 127.0.0.1. */
async function watchedPage(): Promise<Watched> {
  const context = await browser().newContext({ viewport: { width: 1100, height: 800 } });
  const requests: string[] = [];
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  const page = await context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  return { context, page, requests, dialogs, consoleErrors };
}

async function setup(): Promise<{ home: TestHome; web: RunningWeb }> {
  const home = await makeHome({ config: { send: { transport: 'file' } } });
  // The page runs in this process: ~/Maildir must mean the test user's.
  const web = await startWeb({ home: home.dir, listen: '127.0.0.1:0', env: home.env });
  return { home, web };
}

async function hold(home: TestHome, sender: string, name: string): Promise<void> {
  const r = await deliverQmail(home, sender, fixture(name));
  if (r.code !== 99) throw new Error(`deliver exited ${r.code}: ${r.stdout}${r.stderr}`);
}

test('a user logs in with the printed URL, opens a held message and releases it into the Maildir', async (t) => {
  const { home, web } = await setup();
  const w = await watchedPage();
  try {
    await hold(home, 'carol@example.net', 'web-plain.eml');
    t.regex(web.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]+$/);

    await w.page.goto(web.url);
    t.is(w.page.url(), web.base, 'the token is gone from the address bar');
    await w.page.getByRole('heading', { name: 'Held mail' }).waitFor();
    t.is(await w.page.locator('tbody tr').count(), 1);
    t.regex(await w.page.locator('tbody').innerText(), /carol@example\.net[\s\S]*Café on Friday\?/);
    const margin = await w.page.evaluate<string>('getComputedStyle(document.body).margin');
    t.is(margin, '0px', 'the stylesheet loaded under the CSP');
    const cookies = await w.context.cookies();
    const session = cookies.find((c) => c.name.startsWith('vouch_session_'));
    t.true(session?.httpOnly);
    t.is(session?.sameSite, 'Strict');

    await w.page.getByRole('link', { name: 'Café on Friday?' }).click();
    await w.page.getByRole('heading', { name: 'Café on Friday?' }).waitFor();
    t.regex(await w.page.locator('pre.body').innerText(), /shall we meet at the café on Friday\?/);

    await w.page.getByRole('button', { name: 'Release', exact: true }).click();
    await w.page.locator('.notice.ok').waitFor();
    t.is(await w.page.locator('.notice.ok').innerText(), '1 released');
    t.is(w.page.url(), web.base);
    t.regex(await w.page.locator('main').innerText(), /Nothing is held/);

    const files = maildirFiles(home.maildir);
    t.is(files.length, 1);
    t.true(files[0]?.bytes.includes(fixture('web-plain.eml')));
    t.deepEqual(await pendingList(home), []);
    t.deepEqual(w.dialogs, []);
    t.deepEqual(w.consoleErrors, [], 'nothing the page needs is blocked by its own CSP');
    t.true(w.requests.every((u) => new URL(u).hostname === '127.0.0.1'));
  } finally {
    await w.context.close();
    await web.close();
  }
});

test('selecting several messages and logging out work without any script', async (t) => {
  const { home, web } = await setup();
  const w = await watchedPage();
  try {
    await hold(home, 'carol@example.net', 'web-plain.eml');
    await hold(home, 'mallory@evil.example', 'xss-headers.eml');
    await hold(home, 'offers@evil.example', 'xss-html.eml');
    await w.context.route('**/static/triage.js', (route) => route.abort());
    await w.page.goto(web.url);
    await w.page.goto(`${web.base}messages`);
    const boxes = w.page.locator('input[name="ids"]');
    t.is(await boxes.count(), 3);
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await w.page.getByRole('button', { name: 'Block', exact: true }).click();
    await w.page.locator('.notice.ok').waitFor();
    t.regex(await w.page.locator('.notice.ok').innerText(), /^2 deleted, 2 sender\(s\) blacklisted: [a-z]+@[a-z.]+, [a-z]+@[a-z.]+$/);
    t.is((await pendingList(home)).length, 1);
    t.deepEqual(maildirFiles(home.maildir), []);

    await w.page.getByRole('button', { name: 'Log out' }).click();
    await w.page.getByRole('heading', { name: 'Log in' }).waitFor();
    await w.page.goto(web.base);
    t.is(new URL(w.page.url()).pathname, '/login', 'logged out for good');
    await w.page.getByLabel('Token').fill('wrong');
    await w.page.getByRole('button', { name: 'Log in' }).click();
    t.regex(await w.page.locator('.notice.error').innerText(), /Wrong token or password/);
    t.deepEqual(w.dialogs, []);
  } finally {
    await w.context.close();
    await web.close();
  }
});

test('hostile mail opens no dialog and makes no request beyond 127.0.0.1', async (t) => {
  const { home, web } = await setup();
  const w = await watchedPage();
  try {
    await hold(home, 'mallory@evil.example', 'xss-headers.eml');
    await hold(home, 'mallory@evil.example', 'xss-encoded.eml');
    await hold(home, 'offers@evil.example', 'xss-html.eml');
    await hold(home, 'mallory@evil.example', 'xss-attachment.eml');
    await w.page.goto(web.url);
    t.is(await w.page.locator('tbody tr').count(), 2, 'two senders');
    t.regex(await w.page.locator('tbody').innerText(), /<script>alert\('subject'\)<\/script>|<script>alert\("enc-subject"\)<\/script>|.+/);
    t.is(await w.page.locator('main script, main img, main svg, main iframe').count(), 0);
    await w.page.goto(`${web.base}messages`);
    t.is(await w.page.locator('tbody tr').count(), 4);
    // The hostile subjects are on the page as text, not as elements.
    t.regex(await w.page.locator('tbody').innerText(), /<script>alert\('subject'\)<\/script>/);
    t.regex(await w.page.locator('tbody').innerText(), /<script>alert\("enc-subject"\)<\/script>/);
    t.is(await w.page.locator('main script, main img, main svg, main iframe').count(), 0);

    const links = await w.page.locator('td.subject a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''));
    let htmlViews = 0;
    for (const href of links) {
      await w.page.goto(new URL(href, web.base).href);
      await w.page.locator('h1.subject').waitFor();
      t.is(await w.page.locator('main script, main img[src="x"], main [onerror], main [onload]').count(), 0, href);
      const html = w.page.getByRole('link', { name: /Show the HTML version/ });
      if ((await html.count()) > 0) {
        await html.click();
        htmlViews += 1;
        const frame = w.page.frameLocator('iframe.mail-html');
        await frame.locator('body').waitFor();
        t.true((await frame.locator('body').innerText()).length > 0, 'the sandboxed HTML shows');
        // A javascript: link in the sandbox does nothing.
        const jsLink = frame.getByRole('link', { name: 'click here' });
        if ((await jsLink.count()) > 0) await jsLink.click();
        // Give a meta refresh or a late load the chance to fire before counting.
        await w.page.waitForTimeout(1500);
        // The sandboxed document stands alone too: opened directly it is still sandboxed.
        const src = await w.page.locator('iframe.mail-html').getAttribute('src');
        await w.page.goto(new URL(src ?? '/', web.base).href);
        await w.page.waitForTimeout(1500);
      }
    }
    t.is(htmlViews, 2, 'both HTML bodies were opened in the sandbox');
    const attachment = await hostileAttachment(w.page, web, links);
    t.true(attachment, 'the attachment was downloaded, not shown');
    t.deepEqual(w.dialogs, [], 'no script ran');
    const outside = w.requests.filter((u) => new URL(u).hostname !== '127.0.0.1');
    t.deepEqual(outside, [], 'no request left 127.0.0.1');
    t.false(await w.page.evaluate<boolean>("document.title.includes('pwned')"));
  } finally {
    await w.context.close();
    await web.close();
  }
});

/** Clicks the attachment link of the message that has one; true when it came as a download. */
async function hostileAttachment(page: Page, web: RunningWeb, links: readonly string[]): Promise<boolean> {
  for (const href of links) {
    await page.goto(new URL(href, web.base).href);
    const a = page.locator('ul.attachments a');
    if ((await a.count()) === 0) continue;
    const [download] = await Promise.all([page.waitForEvent('download'), a.first().click()]);
    const name = download.suggestedFilename();
    await download.cancel();
    return !name.includes('/') && !name.includes('<');
  }
  return false;
}

/** An HTML-only message of `paragraphs` paragraphs, held from `sender`; its id. */
async function holdHtml(home: TestHome, sender: string, subject: string, paragraphs: number): Promise<string> {
  const body = Array.from({ length: paragraphs }, (_, i) => `<p>Paragraph ${i + 1} of the long letter.</p>`).join('\n');
  const raw = Buffer.from(`From: ${sender}\nTo: alice@example.org\nSubject: ${subject}\nMessage-ID: <${subject.replace(/\W/g, '')}@example.net>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<html><body><h1>${subject}</h1>\n${body}\n<p id="end">The end.</p></body></html>\n`);
  const r = await deliverQmail(home, sender, raw);
  if (r.code !== 99) throw new Error(`deliver exited ${r.code}: ${r.stdout}${r.stderr}`);
  const held = (await pendingList(home)).find((m) => m.subject === subject);
  if (!held) throw new Error('not held');
  return held.id;
}

/** The frame's height on the page and the height of the document inside it. */
async function frameHeights(page: Page): Promise<{ frame: number; doc: number; inner: number }> {
  return page.evaluate<{ frame: number; doc: number; inner: number }>(`(() => {
    const f = document.querySelector('iframe.mail-html');
    const d = f.contentDocument && f.contentDocument.documentElement;
    return { frame: f.getBoundingClientRect().height, doc: d ? d.scrollHeight : -1, inner: d ? d.clientHeight : -1 };
  })()`);
}

test('the HTML frame grows to a tall message\'s height (up to a maximum, then it scrolls), and a short one shrinks it, with no script in the message', async (t) => {
  const { home, web } = await setup();
  const w = await watchedPage();
  try {
    const tall = await holdHtml(home, 'long@example.net', 'A long letter', 150);
    const short = await holdHtml(home, 'brief@example.net', 'A short note', 1);
    const endless = await holdHtml(home, 'endless@example.net', 'An endless letter', 800);
    await w.page.goto(web.url);
    await w.page.goto(`${web.base}message/${tall}?view=html`);
    await w.page.locator('iframe.mail-html.fitted').waitFor();
    const h = await frameHeights(w.page);
    t.true(h.doc > 3000, `the letter is tall (${h.doc} px)`);
    t.true(Math.abs(h.frame - h.doc) <= 4, `the frame (${h.frame} px) is as tall as the letter (${h.doc} px)`);
    t.true(h.inner >= h.doc - 2, 'nothing left to scroll inside the frame');
    await w.page.frameLocator('iframe.mail-html').getByText('The end.').waitFor();
    await w.page.goto(`${web.base}message/${short}?view=html`);
    await w.page.locator('iframe.mail-html.fitted').waitFor();
    const s = await frameHeights(w.page);
    t.true(s.frame < 400, `a short note gets a short frame (${s.frame} px)`);
    t.true(Math.abs(s.frame - s.doc) <= 4 || s.frame === 80, `${s.frame} vs ${s.doc}`);
    await w.page.goto(`${web.base}message/${endless}?view=html`);
    await w.page.locator('iframe.mail-html.fitted').waitFor();
    const e = await frameHeights(w.page);
    t.true(e.frame >= 11_990 && e.frame <= 12_010, `an endless letter stops at the maximum (${e.frame} px)`);
    t.true(e.doc > e.inner + 1000, 'and scrolls inside the frame beyond it');
    t.deepEqual(w.dialogs, []);
    t.deepEqual(w.consoleErrors, [], 'the page reads the frame without a CSP or sandbox error');
  } finally {
    await w.context.close();
    await web.close();
  }
});

// The sandbox and the frame's CSP on their own, without the HTML filter in front of them: the
// browser is handed the hostile markup unfiltered (with the server's real headers), in the frame
// and opened directly. No script runs, no form is sent, no refresh or link navigates anywhere.
const UNFILTERED = `<!doctype html><html><head>
<meta http-equiv="refresh" content="0;url=/marker-refresh">
<script>alert('frame-script'); fetch('/marker-script'); try { parent.document.title = 'pwned'; } catch (e) {}</script>
</head><body onload="alert('onload'); fetch('/marker-onload')">
<h1>Unfiltered</h1>
<form method="post" action="/act"><input type="hidden" name="action" value="delete"><input type="hidden" name="all" value="1"><button id="go">Delete everything</button></form>
<form method="get" action="/marker-form"><button id="get">Go</button></form>
<a id="top" href="/marker-link" target="_top">top</a> <a id="blank" href="/marker-popup" target="_blank">popup</a>
<img src="x" onerror="alert('img'); fetch('/marker-img')">
</body></html>`;

test('unfiltered hostile HTML in the sandboxed frame, or opened on its own, runs no script and sends no form', async (t) => {
  const { home, web } = await setup();
  const w = await watchedPage();
  try {
    const id = await holdHtml(home, 'offers@evil.example', 'Unfiltered', 3);
    await w.context.route(`**/message/${id}/html`, async (route) => {
      const real = await route.fetch();
      t.regex(real.headers()['content-security-policy'] ?? '', /sandbox allow-same-origin/);
      await route.fulfill({ response: real, body: UNFILTERED });
    });
    const posts: string[] = [];
    w.page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    let popups = 0;
    w.context.on('page', () => (popups += 1));
    await w.page.goto(web.url);
    const look = async (inFrame: boolean) => {
      const root = inFrame ? w.page.frameLocator('iframe.mail-html') : w.page;
      await root.locator('h1', { hasText: 'Unfiltered' }).waitFor();
      for (const sel of ['#go', '#get', '#top', '#blank']) await root.locator(sel).click({ timeout: 5000 }).catch(() => undefined);
      await w.page.waitForTimeout(1500);
    };
    await w.page.goto(`${web.base}message/${id}?view=html`);
    await w.page.locator('iframe.mail-html.fitted').waitFor();
    await look(true);
    t.is(await w.page.title(), 'Unfiltered · vouch', 'the message did not touch the page');
    t.regex(new URL(w.page.url()).pathname, new RegExp(`^/message/${id}$`), 'the page was not navigated');
    await w.page.goto(`${web.base}message/${id}/html`);
    await look(false);
    t.deepEqual(w.dialogs, [], 'no script ran');
    t.deepEqual(posts, [], 'no form was sent');
    t.is(popups, 0, 'no window opened');
    t.deepEqual(w.requests.filter((u) => /marker-(script|onload|img|refresh|form)/.test(u)), [], 'no script, refresh or form made a request');
    t.is((await pendingList(home)).length, 1, 'the message is still held');
  } finally {
    await w.context.close();
    await web.close();
  }
});
