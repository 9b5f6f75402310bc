// The review page as a triage tool, in real headless Chromium (Debian's, driven by playwright-core,
// one browser for the file): deciding per sender, acting on all that match, undo, keeping the place,
// the keyboard, careful blacklisting, the phone's action bar. Each test counts the user's clicks
// and keys for its task, so the README's figures are checked. The tests run one at a time: ten
// browser pages at once on a loaded 2-core machine made single steps exceed their time limits.

import test from 'ava';
import type { BrowserContext, Page } from 'playwright-core';
import { sharedBrowser } from './chromium.js';
import { Store, type ChallengeState } from '../agent/store/store.js';
import { startWeb, type RunningWeb } from '../web/server.js';
import { holdInput, maildirFiles, makeHome, pendingList, vouch, type TestHome } from './helpers.js';

const browser = sharedBrowser();

interface Spec {
  readonly sender: string;
  readonly subject: string;
  readonly from?: string;
  readonly challenge?: ChallengeState;
  readonly note?: string;
}

interface Env {
  readonly home: TestHome;
  readonly web: RunningWeb;
  readonly context: BrowserContext;
  readonly page: Page;
  readonly dialogs: string[];
  readonly errors: string[];
  close(): Promise<void>;
}

const T0 = Date.UTC(2026, 10, 23, 8);

/** Holds messages straight through the store (the delivery path has its own tests): newest last. */
async function holdAll(home: TestHome, specs: readonly Spec[]): Promise<string[]> {
  const store = await Store.open(`${home.dir}/vouch.db`);
  const ids: string[] = [];
  try {
    for (const [i, s] of specs.entries()) {
      const raw = Buffer.from(`From: ${s.from ?? s.sender}\nTo: alice@example.org\nSubject: ${s.subject}\n\nHello Alice, ${s.subject}.\n`);
      const r = await store.hold(holdInput({
        digest: `t${i}-${s.subject}`, received: T0 + i * 60_000, sender: s.sender, senderKey: s.sender.toLowerCase(), fromHeader: s.from ?? s.sender,
        subject: s.subject, challenge: s.challenge ?? 'sent', challengeNote: s.note ?? '', rpline: `Return-Path: <${s.sender}>\n`, raw,
      }));
      ids.push(r.id);
    }
  } finally {
    await store.close();
  }
  return ids;
}

async function setup(specs: readonly Spec[], viewport = { width: 1200, height: 800 }): Promise<Env & { ids: string[] }> {
  const home = await makeHome({ config: { send: { transport: 'file' } } });
  const ids = await holdAll(home, specs);
  const web = await startWeb({ home: home.dir, listen: '127.0.0.1:0', env: home.env });
  const context = await browser().newContext({ viewport, ...(viewport.width < 500 ? { isMobile: true, hasTouch: true } : {}) });
  await context.route('**/*', (route) => (new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort()));
  // A loaded machine (the suite runs beside other work) can take longer than Playwright's default.
  context.setDefaultTimeout(90_000);
  context.setDefaultNavigationTimeout(90_000);
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(web.url);
  await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  return {
    home, web, context, page, dialogs, errors, ids,
    async close() {
      await context.close();
      await web.close();
    },
  };
}

async function list(home: TestHome, which: 'whitelist' | 'blacklist'): Promise<string[]> {
  return (await vouch([which, 'list'], { env: home.env })).stdout.split('\n').filter((l) => l !== '');
}

async function notice(page: Page): Promise<string> {
  const n = page.locator('.notice-bar .notice');
  await n.waitFor();
  return n.innerText();
}

const spam = (n: number, from = 'spam'): Spec[] => Array.from({ length: n }, (_, i) => ({ sender: `${from}${i}@junk.example`, subject: `Cheap offer ${i}`, challenge: 'suppressed' as const, note: 'marked as spam' }));

test.serial('allow releases all of a sender\'s held mail and whitelists the exact address, in one click', async (t) => {
  const env = await setup([
    ...Array.from({ length: 4 }, (_, i) => ({ sender: 'Carol@Example.net', from: 'Carol <carol@example.net>', subject: `Note ${i}` })),
    { sender: 'dave@example.com', subject: 'Other' },
  ]);
  try {
    const row = env.page.locator('tr', { hasText: 'carol@example.net' });
    t.regex(await row.innerText(), /\b4\b/, 'the group shows its count');
    t.regex(await row.innerText(), /Note 3/, 'and its newest subject');
    t.regex(await row.innerText(), /Request sent/);
    let clicks = 0;
    await row.getByRole('button', { name: 'Allow' }).click();
    clicks += 1;
    t.regex(await notice(env.page), /^4 released, 1 sender\(s\) whitelisted: carol@example\.net$/);
    t.is(clicks, 1, 'allow one sender with 4 held messages: 1 click');
    t.is(maildirFiles(env.home.maildir).length, 4);
    t.deepEqual(await list(env.home, 'whitelist'), ['carol@example.net']);
    t.deepEqual((await pendingList(env.home)).map((m) => m.sender), ['dave@example.com']);
    t.is(new URL(env.page.url()).pathname, '/', 'still on the sender view');
    t.deepEqual(env.errors, []);
  } finally {
    await env.close();
  }
});

test.serial('block deletes all of a sender\'s held mail and blacklists the exact address; its undo brings both back', async (t) => {
  const env = await setup([
    { sender: 'pest@junk.example', subject: 'Buy one' },
    { sender: 'pest@junk.example', subject: 'Buy two' },
    { sender: 'friend@example.com', subject: 'Hi' },
  ]);
  try {
    await env.page.locator('tr', { hasText: 'pest@junk.example' }).getByRole('button', { name: 'Block' }).click();
    t.regex(await notice(env.page), /^2 deleted, 1 sender\(s\) blacklisted: pest@junk\.example$/);
    t.deepEqual(await list(env.home, 'blacklist'), ['pest@junk.example']);
    t.is((await pendingList(env.home)).length, 1);
    const trash = await vouch(['pending', 'list', '--trash'], { env: env.home.env });
    t.is(trash.stdout.split('\n').filter((l) => /pest@junk\.example/.test(l)).length, 2, 'both are in the trash');
    let clicks = 0;
    await env.page.getByRole('button', { name: 'Undo' }).click();
    clicks += 1;
    t.regex(await notice(env.page), /^Undone: 2 restored, 1 list entry removed$/);
    t.is(clicks, 1, 'undo a block: 1 click');
    t.deepEqual(await list(env.home, 'blacklist'), [], 'the blacklist entry is gone');
    t.is((await pendingList(env.home)).length, 3, 'the mail is held again');
    t.is(maildirFiles(env.home.maildir).length, 0);
  } finally {
    await env.close();
  }
});

test.serial('undo of a delete restores the message; a second undo of the same action does nothing', async (t) => {
  const env = await setup([{ sender: 'a@example.com', subject: 'Keep me' }, { sender: 'b@example.com', subject: 'Other' }]);
  try {
    await env.page.goto(`${env.web.base}messages`);
    await env.page.locator('tr', { hasText: 'Keep me' }).locator('input[name="ids"]').check();
    await env.page.getByRole('button', { name: 'Delete', exact: true }).click();
    t.regex(await notice(env.page), /^1 deleted$/);
    t.notRegex(await env.page.locator('tbody').innerText(), /Keep me/);
    const undoForm = await env.page.locator('form.undo').innerHTML();
    await env.page.getByRole('button', { name: 'Undo' }).click();
    t.regex(await notice(env.page), /^Undone: 1 restored$/);
    t.regex(await env.page.locator('tbody').innerText(), /Keep me/);
    // The same Undo posted again (an old tab) changes nothing.
    const again = /name="undo" value="(\d+)"/.exec(undoForm)?.[1];
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await env.page.content())?.[1];
    t.truthy(again);
    const r = await env.page.request.post(`${env.web.base}undo`, {
      form: { _csrf: csrf ?? '', undo: again ?? '', back: '/messages' },
      headers: { origin: env.web.base.replace(/\/$/, '') },
      maxRedirects: 0,
    });
    t.is(r.status(), 303);
    await env.page.goto(`${env.web.base}messages`);
    t.regex(await notice(env.page), /undone already/);
    t.is((await pendingList(env.home)).length, 2);
  } finally {
    await env.close();
  }
});

test.serial('restoring from the trash can be undone too: the message goes back to the trash', async (t) => {
  const env = await setup([{ sender: 'a@example.com', subject: 'Gone by mistake' }, { sender: 'b@example.com', subject: 'Other' }]);
  try {
    await env.page.locator('tr', { hasText: 'a@example.com' }).getByRole('button', { name: 'Block' }).click();
    await notice(env.page);
    await env.page.goto(`${env.web.base}trash`);
    await env.page.locator('tr', { hasText: 'Gone by mistake' }).locator('input[name="ids"]').check();
    await env.page.getByRole('button', { name: 'Restore selected' }).click();
    t.regex(await notice(env.page), /^1 restored to the held mail$/);
    t.is((await pendingList(env.home)).length, 2);
    await env.page.getByRole('button', { name: 'Undo' }).click();
    t.regex(await notice(env.page), /^Undone: 1 back in the trash$/);
    t.deepEqual((await pendingList(env.home)).map((m) => m.sender), ['b@example.com']);
    t.regex(await env.page.locator('main').innerText(), /Gone by mistake/, 'listed in the trash again');
    t.deepEqual(await list(env.home, 'blacklist'), ['a@example.com'], 'the block itself stands');
    t.deepEqual(env.errors, []);
  } finally {
    await env.close();
  }
});

test.serial('deleting and blocking 20 spam from a filter takes 3 clicks, and all matching acts beyond the page', async (t) => {
  const env = await setup([...spam(20), { sender: 'mum@example.org', subject: 'Sunday lunch' }, { sender: 'boss@example.com', subject: 'Report' }]);
  try {
    let clicks = 0;
    await env.page.getByRole('link', { name: /Marked as spam 20/ }).click();
    clicks += 1;
    t.regex(env.page.url(), /why=spam/);
    await env.page.locator('[data-pick-all]').check();
    clicks += 1;
    await env.page.locator('[data-bar] button[value="block"]').click();
    clicks += 1;
    t.regex(await notice(env.page), /^20 deleted, 20 sender\(s\) blacklisted: spam\d+@junk\.example, .* and 15 more$/);
    t.is(clicks, 3, 'delete and block 20 spam: 3 clicks');
    t.is((await list(env.home, 'blacklist')).length, 20);
    t.deepEqual((await pendingList(env.home)).map((m) => m.sender).sort(), ['boss@example.com', 'mum@example.org']);
    t.regex(env.page.url(), /why=spam/, 'the filter is kept after the action');

    // 60 more over three pages of 25: select the page, then "all 60 matching", one action.
    await holdAll(env.home, spam(60, 'bulk'));
    await env.page.goto(`${env.web.base}messages?why=spam&size=25&page=2`);
    t.is(await env.page.locator('input[name="ids"]').count(), 25);
    const allMatching = env.page.locator('[data-all-matching]');
    t.false(await allMatching.isVisible(), 'offered only once the page is selected');
    await env.page.locator('[data-pick-all]').check();
    t.true(await allMatching.isVisible());
    t.regex(await allMatching.innerText(), /all 60 matching/);
    await allMatching.locator('input').check();
    await env.page.getByRole('button', { name: 'Delete', exact: true }).click();
    t.regex(await notice(env.page), /^60 deleted$/);
    t.deepEqual((await pendingList(env.home)).map((m) => m.sender).sort(), ['boss@example.com', 'mum@example.org'], 'nothing outside the filter');
  } finally {
    await env.close();
  }
});

test.serial('shift-click selects a range, and an action keeps the search, filter and page', async (t) => {
  const env = await setup(Array.from({ length: 30 }, (_, i) => ({ sender: `p${i}@example.com`, subject: `Party ${String(i).padStart(2, '0')}` })));
  try {
    await env.page.goto(`${env.web.base}messages?q=party&size=25&page=1`);
    const boxes = env.page.locator('input[name="ids"]');
    await boxes.nth(2).click();
    await boxes.nth(6).click({ modifiers: ['Shift'] });
    t.is(await env.page.locator('input[name="ids"]:checked').count(), 5);
    t.regex(await env.page.locator('[data-count]').innerText(), /5 selected/);
    await env.page.getByRole('button', { name: 'Release', exact: true }).click();
    t.regex(await notice(env.page), /^5 released$/);
    const url = new URL(env.page.url());
    t.is(url.pathname, '/messages');
    t.is(url.searchParams.get('q'), 'party');
    t.is(url.searchParams.get('size'), '25');
    t.is(await env.page.locator('input[type="search"]').inputValue(), 'party');
    t.is(maildirFiles(env.home.maildir).length, 5);
  } finally {
    await env.close();
  }
});

test.serial('keyboard triage: j/k move, x selects, d deletes, u undoes, / searches, ? shows the keys', async (t) => {
  const env = await setup([{ sender: 'a@example.com', subject: 'First' }, { sender: 'b@example.com', subject: 'Second' }, { sender: 'c@example.com', subject: 'Third' }]);
  try {
    await env.page.goto(`${env.web.base}messages`);
    const k = env.page.keyboard;
    await k.press('j');
    await k.press('j');
    await k.press('k');
    await k.press('j');
    t.regex(await env.page.locator('tr.cursor').innerText(), /Second/);
    await k.press('x');
    t.is(await env.page.locator('input[name="ids"]:checked').count(), 1);
    await k.press('d');
    t.regex(await notice(env.page), /^1 deleted$/);
    t.notRegex(await env.page.locator('tbody').innerText(), /Second/);
    await k.press('u');
    t.regex(await notice(env.page), /^Undone: 1 restored$/);
    t.regex(await env.page.locator('tbody').innerText(), /Second/);
    await k.press('?');
    t.true(await env.page.locator('#keys').isVisible());
    await k.press('Escape');
    t.false(await env.page.locator('#keys').isVisible());
    await k.press('/');
    await k.type('third');
    await k.press('Enter');
    await env.page.waitForURL(/q=third/);
    t.is(await env.page.locator('input[name="ids"]').count(), 1);
    // In the sender view, a on the row under the cursor allows that sender.
    await env.page.goto(env.web.base);
    await k.press('j');
    await k.press('a');
    t.regex(await notice(env.page), /^1 released, 1 sender\(s\) whitelisted: c@example\.com$/);
    t.deepEqual(env.errors, []);
  } finally {
    await env.close();
  }
});

test.serial('the message view has previous and next, and after acting on a message the next one opens', async (t) => {
  const env = await setup([{ sender: 'a@example.com', subject: 'Oldest' }, { sender: 'b@example.com', subject: 'Middle' }, { sender: 'c@example.com', subject: 'Newest' }]);
  try {
    await env.page.goto(`${env.web.base}messages?q=e`);
    await env.page.getByRole('link', { name: 'Newest' }).click();
    await env.page.locator('h1.subject').waitFor();
    t.is(await env.page.locator('[data-prev]').count(), 0);
    await env.page.locator('[data-next]').click();
    t.is(await env.page.locator('h1.subject').innerText(), 'Middle');
    await env.page.getByRole('button', { name: 'Delete', exact: true }).click();
    t.regex(await notice(env.page), /^1 deleted$/);
    t.is(await env.page.locator('h1.subject').innerText(), 'Oldest', 'the next message opened');
    await env.page.locator('[data-back]').click();
    const url = new URL(env.page.url());
    t.is(`${url.pathname}${url.search}`, '/messages?q=e', 'back to the same search');
  } finally {
    await env.close();
  }
});

test.serial('blocking a mailing list asks first and offers the From address', async (t) => {
  const env = await setup([
    { sender: 'news-bounces@lists.example', from: 'Editor <editor@news.example>', subject: 'Issue 12', challenge: 'suppressed', note: 'mailing list' },
    { sender: '', from: 'MAILER-DAEMON@mx.example', subject: 'Undelivered', challenge: 'suppressed', note: 'null sender' },
  ]);
  try {
    await env.page.locator('tr', { hasText: 'news-bounces@lists.example' }).getByRole('button', { name: /Block/ }).click();
    await env.page.getByRole('heading', { name: 'Block which address?' }).waitFor();
    t.regex(await env.page.locator('table.risky').innerText(), /news-bounces@lists\.example[\s\S]*Mailing list[\s\S]*editor@news\.example/);
    await env.page.getByRole('button', { name: 'Block the From address', exact: true }).click();
    t.regex(await notice(env.page), /^1 deleted, 1 sender\(s\) blacklisted: editor@news\.example$/);
    t.deepEqual(await list(env.home, 'blacklist'), ['editor@news.example']);
    // A bounce: only deleting is sensible.
    await env.page.locator('tr', { hasText: 'Undelivered' }).getByRole('button', { name: /Block/ }).click();
    await env.page.getByRole('button', { name: 'Only delete, block nothing' }).click();
    t.regex(await notice(env.page), /^1 deleted$/);
    t.deepEqual(await list(env.home, 'blacklist'), ['editor@news.example']);
  } finally {
    await env.close();
  }
});

test.serial('on a phone the action bar sits at the bottom of the screen and acts on the selection', async (t) => {
  const env = await setup([{ sender: 'a@example.com', subject: 'One' }, { sender: 'b@example.com', subject: 'Two' }], { width: 390, height: 780 });
  try {
    await env.page.goto(`${env.web.base}messages`);
    const bar = env.page.locator('[data-bar]');
    const box = await bar.boundingBox();
    t.truthy(box);
    t.true(Math.abs((box?.y ?? 0) + (box?.height ?? 0) - 780) <= 1, `the bar ends at the bottom edge (${JSON.stringify(box)})`);
    t.is(await bar.evaluate((e) => (globalThis as unknown as { getComputedStyle(e: unknown): { position: string } }).getComputedStyle(e).position), 'fixed');
    await env.page.locator('input[name="ids"]').first().check();
    await env.page.getByRole('button', { name: 'Release', exact: true }).click();
    t.regex(await notice(env.page), /^1 released$/);
    const after = await env.page.locator('[data-bar]').boundingBox();
    t.true(Math.abs((after?.y ?? 0) + (after?.height ?? 0) - 780) <= 1);
  } finally {
    await env.close();
  }
});

test.serial('the lists page finds entries, says why each is there, keeps a rejected pattern and offers to release what a new one matches', async (t) => {
  const env = await setup([{ sender: 'ann@club.example', subject: 'Meeting' }, { sender: 'ben@club.example', subject: 'Agenda' }, { sender: 'x@other.example', subject: 'Else' }]);
  try {
    await env.page.locator('tr', { hasText: 'x@other.example' }).getByRole('button', { name: 'Allow' }).click();
    await notice(env.page);
    await env.page.goto(`${env.web.base}lists`);
    await env.page.getByLabel(/Add to the whitelist/).fill('@club.example\nnot a pattern');
    await env.page.getByRole('button', { name: 'Add' }).click();
    t.regex(await notice(env.page), /Nothing added: bad pattern "not a pattern"/);
    t.is(await env.page.getByLabel(/Add to the whitelist/).inputValue(), '@club.example\nnot a pattern', 'what was typed is still there');
    await env.page.getByLabel(/Add to the whitelist/).fill('@club.example');
    await env.page.getByRole('button', { name: 'Add' }).click();
    t.regex(await notice(env.page), /^1 added to the whitelist$/);
    await env.page.getByRole('button', { name: 'Release the 2 held message(s) they match' }).click();
    t.regex(await notice(env.page), /^2 released$/);
    t.is(maildirFiles(env.home.maildir).length, 3);
    const rows = await env.page.locator('table.patterns tbody').innerText();
    t.regex(rows, /@club\.example\s+added by hand/);
    t.regex(rows, /x@other\.example\s+allowed from the held mail/);
    await env.page.getByLabel('Find in the whitelist').fill('club');
    await env.page.getByRole('button', { name: 'Find' }).click();
    t.is(await env.page.locator('table.patterns tbody tr').count(), 1);
  } finally {
    await env.close();
  }
});

test.serial('removing list entries can be undone: they come back with when and why they were added', async (t) => {
  const env = await setup([{ sender: 'ann@club.example', subject: 'Meeting' }, { sender: 'ben@else.example', subject: 'Agenda' }]);
  try {
    for (const who of ['ann@club.example', 'ben@else.example']) {
      await env.page.locator('tr', { hasText: who }).getByRole('button', { name: 'Allow' }).click();
      await notice(env.page);
    }
    await env.page.goto(`${env.web.base}lists`);
    const before = await env.page.locator('table.patterns tbody').innerText();
    await env.page.getByLabel('Select ann@club.example').check();
    await env.page.getByLabel('Select ben@else.example').check();
    await env.page.getByRole('button', { name: 'Remove selected' }).click();
    t.regex(await notice(env.page), /^2 removed from the whitelist$/);
    t.deepEqual(await list(env.home, 'whitelist'), []);
    let clicks = 0;
    await env.page.getByRole('button', { name: 'Undo' }).click();
    clicks += 1;
    t.regex(await notice(env.page), /^Undone: 2 list entries back$/);
    t.is(clicks, 1, 'undo: 1 click');
    t.deepEqual((await list(env.home, 'whitelist')).sort(), ['ann@club.example', 'ben@else.example']);
    t.is(await env.page.locator('table.patterns tbody').innerText(), before, 'the same entries, provenance and dates');
    t.is(new URL(env.page.url()).pathname, '/lists', 'still on the lists page');
    t.deepEqual(env.errors, []);
  } finally {
    await env.close();
  }
});
