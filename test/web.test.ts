// Route tests for the review page through fastify's inject: login, the Host/Origin/CSRF gates,
// the held list, the message view with hostile mail, the actions, the lists and the chart.

import test from 'ava';
import type { FastifyInstance } from 'fastify';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Store } from '../agent/store/store.js';
import { loadConfig, type Config } from '../agent/home/config.js';
import { parseMessage, ParseError } from '../agent/mail/parse.js';
import { contentDisposition } from '../web/app.js';
import { filterHtml } from '../web/sanitize.js';
import { hostAllowed, LoginThrottle, sameOrigin } from '../web/auth.js';
import { buildApp, hashPassword } from '../web/server.js';
import { deliverQmail, fixture, FIXTURES, maildirFiles, makeHome, message, pendingList, setConfig, vouch, type TestHome } from './helpers.js';

const HOST = '127.0.0.1:8025';
const ORIGIN = `http://${HOST}`;

interface Page {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | number | undefined>;
}

/** A browser-like client over inject: keeps cookies, sends Host (and Origin on POST). */
class Client {
  readonly cookies = new Map<string, string>();
  constructor(readonly app: FastifyInstance, readonly host = HOST) {}

  #keep(setCookie: string | string[] | number | undefined): void {
    const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [String(setCookie)];
    for (const c of list) {
      const [pair] = c.split(';');
      const eq = (pair ?? '').indexOf('=');
      const name = (pair ?? '').slice(0, eq);
      const value = (pair ?? '').slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  #cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<Page> {
    const r = await this.app.inject({ method: 'GET', url, headers: { host: this.host, cookie: this.#cookieHeader(), ...headers } });
    this.#keep(r.headers['set-cookie']);
    return { status: r.statusCode, body: r.body, headers: r.headers };
  }

  async post(url: string, form: Record<string, string | string[]>, headers: Record<string, string> = { origin: ORIGIN }): Promise<Page> {
    const body = new URLSearchParams();
    for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) body.append(k, one);
    const r = await this.app.inject({
      method: 'POST',
      url,
      payload: body.toString(),
      headers: { host: this.host, cookie: this.#cookieHeader(), 'content-type': 'application/x-www-form-urlencoded', ...headers },
    });
    this.#keep(r.headers['set-cookie']);
    return { status: r.statusCode, body: r.body, headers: r.headers };
  }

  /** The CSRF token of a page (and its cookie, kept by get). */
  async csrf(url = '/'): Promise<string> {
    const page = await this.get(url);
    const m = /name="_csrf" value="([^"]+)"/.exec(page.body);
    if (!m?.[1]) throw new Error(`no CSRF token on ${url} (status ${page.status})`);
    return m[1];
  }
}

interface Env {
  readonly home: TestHome;
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly token: string;
}

async function setup(overrides: (c: Config) => Config = (c) => c, now?: () => number): Promise<Env> {
  const home = await makeHome({ config: { send: { transport: 'file' } } });
  const config = overrides(loadConfig(home.dir, home.env));
  const app = await buildApp({ home: home.dir, listen: HOST, config, ...(now !== undefined ? { now } : {}) });
  const token = readFileSync(`${home.dir}/web-token`, 'utf8').trim();
  return { home, config, app, token };
}

async function loggedIn(env: Env, host = HOST): Promise<Client> {
  const c = new Client(env.app, host);
  const r = await c.get(`/?token=${env.token}`);
  if (r.status !== 303) throw new Error(`token login failed: ${r.status}`);
  return c;
}

async function hold(env: Env, sender: string, raw: Buffer | string): Promise<string> {
  const before = new Set((await pendingList(env.home)).map((m) => m.id));
  const r = await deliverQmail(env.home, sender, raw);
  if (r.code !== 99) throw new Error(`deliver exited ${r.code}: ${r.stdout}${r.stderr}`);
  const fresh = (await pendingList(env.home)).find((m) => !before.has(m.id));
  if (!fresh) throw new Error('nothing was held');
  return fresh.id;
}

async function listOf(env: Env, list: 'whitelist' | 'blacklist'): Promise<string[]> {
  const r = await vouch([list, 'list'], { env: env.home.env });
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('every page and action needs a login', async (t) => {
  const env = await setup();
  const id = await hold(env, 'stranger@example.net', fixture('web-plain.eml'));
  const anon = new Client(env.app);
  for (const url of ['/', '/?page=2', '/lists', '/activity', `/message/${id}`, `/message/${id}/html`, `/message/${id}/attachment/0`, '/nothing-here']) {
    const r = await anon.get(url);
    t.is(r.status, 303, url);
    t.is(r.headers['location'], '/login', url);
    t.notRegex(r.body, /café|Carol/, url);
  }
  for (const url of ['/act', '/lists/add', '/lists/remove', '/logout']) {
    const r = await anon.post(url, { ids: id, action: 'release', patterns: 'x@example.com' });
    t.is(r.status, 401, url);
  }
  t.is((await pendingList(env.home)).length, 1);
  t.deepEqual(maildirFiles(env.home.maildir), []);
  await env.app.close();
});

test('the token link sets a strict session cookie and redirects to the bare URL', async (t) => {
  const env = await setup();
  const c = new Client(env.app);
  const r = await c.get(`/?token=${encodeURIComponent(env.token)}`);
  t.is(r.status, 303);
  t.is(r.headers['location'], '/');
  const set = String(r.headers['set-cookie']);
  t.regex(set, /^vouch_session_8025=[A-Za-z0-9_-]{43};/);
  t.regex(set, /HttpOnly/);
  t.regex(set, /SameSite=Strict/);
  t.regex(set, /Path=\//);
  const list = await c.get('/');
  t.is(list.status, 200);
  t.regex(list.body, /Held mail/);
  await env.app.close();
});

/** `s` with its last character changed (never to the one it had: a random token can end in x). */
function otherLast(s: string): string {
  return `${s.slice(0, -1)}${s.endsWith('x') ? 'y' : 'x'}`;
}

test('a wrong token is refused and sets no session', async (t) => {
  const env = await setup();
  const c = new Client(env.app);
  const r = await c.get(`/?token=${otherLast(env.token)}`);
  t.is(r.status, 401);
  t.regex(r.body, /not valid/);
  t.false([...c.cookies.keys()].some((k) => k.startsWith('vouch_session')));
  t.is((await c.get('/')).status, 303);
  await env.app.close();
});

test('the login form takes the token, and refuses a wrong one', async (t) => {
  const env = await setup();
  const c = new Client(env.app);
  const form = await c.get('/login');
  t.is(form.status, 200);
  t.regex(form.body, /name="secret"/);
  let csrf = await c.csrf('/login');
  const bad = await c.post('/login', { _csrf: csrf, secret: 'not-the-token' });
  t.is(bad.status, 401);
  t.regex(bad.body, /Wrong token or password/);
  csrf = await c.csrf('/login');
  const good = await c.post('/login', { _csrf: csrf, secret: env.token });
  t.is(good.status, 303);
  t.is((await c.get('/')).status, 200);
  await env.app.close();
});

test('a password login works against the scrypt hash in web.password_hash', async (t) => {
  const hash = await hashPassword('correct horse battery');
  t.regex(hash, /^\$scrypt\$ln=15,r=8,p=1\$/);
  const env = await setup((c) => ({ ...c, web: { ...c.web, password_hash: hash } }));
  const c = new Client(env.app);
  const bad = await c.post('/login', { _csrf: await c.csrf('/login'), secret: 'correct horse' });
  t.is(bad.status, 401);
  const good = await c.post('/login', { _csrf: await c.csrf('/login'), secret: 'correct horse battery' });
  t.is(good.status, 303);
  t.is((await c.get('/')).status, 200);
  await env.app.close();
});

test('vouch web --hash-password prints a hash the page accepts', async (t) => {
  const home = await makeHome();
  const r = await vouch(['web', '--hash-password'], { env: home.env, input: 'swordfish\n' });
  t.is(r.code, 0, r.stderr);
  const hash = r.stdout.trim();
  t.regex(hash, /^\$scrypt\$/);
  const config = loadConfig(home.dir, home.env);
  const app = await buildApp({ home: home.dir, listen: HOST, config: { ...config, web: { ...config.web, password_hash: hash } } });
  const c = new Client(app);
  t.is((await c.post('/login', { _csrf: await c.csrf('/login'), secret: 'swordfish' })).status, 303);
  await app.close();
});

test('a malformed password hash in the config stops the page from starting', async (t) => {
  const home = await makeHome();
  const config = loadConfig(home.dir, home.env);
  await t.throwsAsync(buildApp({ home: home.dir, listen: HOST, config: { ...config, web: { ...config.web, password_hash: 'plaintext' } } }), {
    message: /web\.password_hash/,
  });
});

test('foreign Host headers are refused, even with a valid token (DNS rebinding)', async (t) => {
  const env = await setup();
  for (const host of ['evil.example:8025', 'evil.example', '127.0.0.1.evil.example:8025', 'localhost.evil.example:8025']) {
    const c = new Client(env.app, host);
    const r = await c.get(`/?token=${env.token}`);
    t.is(r.status, 403, host);
    t.false([...c.cookies.keys()].some((k) => k.startsWith('vouch_session')), host);
  }
  for (const host of ['127.0.0.1:8025', 'localhost:8025', '[::1]:8025', 'localhost:18025']) {
    const c = new Client(env.app, host);
    t.is((await c.get(`/?token=${env.token}`)).status, 303, host);
    t.is((await c.get('/')).status, 200, host);
  }
  await env.app.close();
});

test('the Host and Origin rules as a table', (t) => {
  const listen = { host: '192.0.2.7', port: 8025 };
  t.true(hostAllowed('192.0.2.7:8025', listen));
  t.false(hostAllowed('192.0.2.7:8026', listen));
  t.true(hostAllowed('LOCALHOST:8025', listen));
  t.false(hostAllowed('attacker.example:8025', listen));
  t.false(hostAllowed('127.0.0.1:8025@evil', listen));
  t.false(hostAllowed(undefined, listen));
  t.true(sameOrigin('http://127.0.0.1:8025', undefined, '127.0.0.1:8025'));
  t.true(sameOrigin('null', 'same-origin', '127.0.0.1:8025'));
  t.true(sameOrigin(undefined, 'same-origin', '127.0.0.1:8025'));
  t.false(sameOrigin('null', undefined, '127.0.0.1:8025'));
  t.false(sameOrigin(undefined, undefined, '127.0.0.1:8025'));
  t.false(sameOrigin('http://evil.example', 'same-origin', '127.0.0.1:8025'));
  t.false(sameOrigin('http://127.0.0.1:8025', 'cross-site', '127.0.0.1:8025'));
  t.false(sameOrigin(undefined, 'same-site', '127.0.0.1:8025'));
});

test('a POST without a CSRF token or from a foreign Origin is refused and changes nothing', async (t) => {
  const env = await setup();
  const id = await hold(env, 'stranger@example.net', fixture('web-plain.eml'));
  const c = await loggedIn(env);
  const csrf = await c.csrf();
  const noToken = await c.post('/act', { ids: id, action: 'release' });
  t.is(noToken.status, 403);
  const wrongToken = await c.post('/act', { ids: id, action: 'release', _csrf: otherLast(csrf) });
  t.is(wrongToken.status, 403);
  const foreign = await c.post('/act', { ids: id, action: 'release', _csrf: csrf }, { origin: 'http://evil.example' });
  t.is(foreign.status, 403);
  const crossSite = await c.post('/act', { ids: id, action: 'release', _csrf: csrf }, { 'sec-fetch-site': 'cross-site' });
  t.is(crossSite.status, 403);
  const noOrigin = await c.post('/act', { ids: id, action: 'release', _csrf: csrf }, {});
  t.is(noOrigin.status, 403);
  const addList = await c.post('/lists/add', { list: 'white', patterns: 'evil@example.com', _csrf: csrf }, { origin: 'http://evil.example' });
  t.is(addList.status, 403);
  t.deepEqual(maildirFiles(env.home.maildir), []);
  t.is((await pendingList(env.home)).length, 1);
  t.deepEqual(await listOf(env, 'whitelist'), []);
  await env.app.close();
});

test('a CSRF token from another session does not work', async (t) => {
  const env = await setup();
  const id = await hold(env, 'stranger@example.net', fixture('web-plain.eml'));
  const a = await loggedIn(env);
  const b = await loggedIn(env);
  const tokenA = await a.csrf();
  await b.csrf();
  const r = await b.post('/act', { ids: id, action: 'release', _csrf: tokenA });
  t.is(r.status, 403);
  t.is((await pendingList(env.home)).length, 1);
  await env.app.close();
});

test('release from the page writes the exact held bytes into the Maildir', async (t) => {
  const env = await setup();
  const raw = fixture('web-plain.eml');
  const id = await hold(env, 'carol@example.net', raw);
  const c = await loggedIn(env);
  const r = await c.post('/act', { ids: id, action: 'release', _csrf: await c.csrf(), back: '/' });
  t.is(r.status, 303);
  t.is(r.headers['location'], '/');
  const files = maildirFiles(env.home.maildir);
  t.is(files.length, 1);
  const bytes = files[0]?.bytes ?? Buffer.alloc(0);
  t.true(bytes.subarray(bytes.length - raw.length).equals(raw));
  t.regex(bytes.toString(), /^Return-Path: <carol@example\.net>\nDelivered-To: alice@example\.org\n/);
  t.deepEqual(await pendingList(env.home), []);
  const after = await c.get('/');
  t.regex(after.body, /class="notice ok"[^>]*>1 released</);
  t.notRegex((await c.get('/')).body, /1 released/, 'the notice shows once');
  t.deepEqual(await listOf(env, 'whitelist'), []);
  await env.app.close();
});

test('release + whitelist releases several at once and whitelists their senders', async (t) => {
  const env = await setup();
  const a = await hold(env, 'carol@example.net', message({ from: 'Carol <carol@example.net>', subject: 'one' }));
  const b = await hold(env, 'dave@example.com', message({ from: 'Dave <dave@example.com>', subject: 'two' }));
  const keep = await hold(env, 'erin@example.org', message({ from: 'Erin <erin@example.org>', subject: 'three' }));
  const c = await loggedIn(env);
  await c.post('/act', { ids: [a, b], action: 'release-whitelist', _csrf: await c.csrf() });
  t.is(maildirFiles(env.home.maildir).length, 2);
  t.deepEqual((await pendingList(env.home)).map((m) => m.id), [keep]);
  t.deepEqual((await listOf(env, 'whitelist')).sort(), ['carol@example.net', 'dave@example.com']);
  t.regex((await c.get('/')).body, /2 released, 2 sender\(s\) whitelisted/);
  await env.app.close();
});

test('delete and delete + blacklist remove held mail without delivering it', async (t) => {
  const env = await setup();
  const a = await hold(env, 'spam@junk.example', message({ from: 'spam@junk.example', subject: 'buy' }));
  const b = await hold(env, 'other@example.com', message({ from: 'other@example.com', subject: 'meh' }));
  const c = await loggedIn(env);
  await c.post('/act', { ids: a, action: 'delete-blacklist', _csrf: await c.csrf() });
  await c.post('/act', { ids: b, action: 'delete', _csrf: await c.csrf() });
  t.deepEqual(await pendingList(env.home), []);
  t.deepEqual(maildirFiles(env.home.maildir), []);
  t.deepEqual(await listOf(env, 'blacklist'), ['spam@junk.example']);
  const gone = await c.get(`/message/${a}`);
  t.is(gone.status, 200);
  t.regex(gone.body, /no longer held: it was deleted/);
  await env.app.close();
});

test('an action with no selection or a bad id says so and changes nothing', async (t) => {
  const env = await setup();
  const id = await hold(env, 'stranger@example.net', fixture('web-plain.eml'));
  const c = await loggedIn(env);
  await c.post('/act', { action: 'release', _csrf: await c.csrf() });
  t.regex((await c.get('/')).body, /Select at least one message/);
  await c.post('/act', { ids: [id, '../../etc'], action: 'release', _csrf: await c.csrf() });
  t.regex((await c.get('/')).body, /by their ids/);
  await c.post('/act', { ids: id, action: 'explode', _csrf: await c.csrf() });
  t.regex((await c.get('/')).body, /Choose an action/);
  const r = await c.post('/act', { ids: id, action: 'release', _csrf: await c.csrf(), back: '//evil.example/' });
  t.is(r.headers['location'], '/', 'no open redirect');
  t.is(maildirFiles(env.home.maildir).length, 1);
  await env.app.close();
});

test('the held list shows counts, the challenge status, and filters by search and reason', async (t) => {
  const env = await setup();
  await hold(env, 'carol@example.net', message({ from: 'Carol <carol@example.net>', subject: 'Concert tickets' }));
  await hold(env, 'dave@example.com', message({ from: 'Dave <dave@example.com>', subject: 'Garden party' }));
  await hold(env, 'news@shop.example', message({ from: 'Shop <news@shop.example>', subject: 'Your order', headers: ['Precedence: bulk'] }));
  const c = await loggedIn(env);
  const all = await c.get('/messages');
  t.regex(all.body, /<strong>3<\/strong> held/);
  t.regex(all.body, /Concert tickets[\s\S]*Garden party|Garden party[\s\S]*Concert tickets/);
  t.regex(all.body, /class="challenge [a-z]+">[^<]+<\/span>/);
  const held = await pendingList(env.home);
  const note = held.find((m) => m.sender === 'news@shop.example');
  t.truthy(note);
  const search = await c.get('/messages?q=garden');
  t.regex(search.body, /<strong>1<\/strong> match/);
  t.regex(search.body, /Garden party/);
  t.notRegex(search.body, /Concert tickets/);
  const bySender = await c.get('/messages?q=carol%40example');
  t.regex(bySender.body, /Concert tickets/);
  t.notRegex(bySender.body, /Garden party/);
  const reason = held[0]?.reason ?? '';
  const byReason = await c.get(`/messages?reason=${encodeURIComponent(reason)}`);
  t.is(byReason.status, 200);
  t.is((byReason.body.match(/name="ids"/g) ?? []).length, 3);
  // The bulk mail got no request: it is its own kind of reason, a filter with its count.
  t.regex(all.body, /href="\/messages\?why&#x3D;bulk" data-why="bulk">Bulk mail <span class="n">1<\/span>/);
  const bulk = await c.get('/messages?why=bulk');
  t.regex(bulk.body, /aria-current="true">Bulk mail /);
  t.regex(bulk.body, /Your order/);
  t.notRegex(bulk.body, /Garden party|Concert tickets/);
  const none = await c.get('/messages?q=nothing-like-this');
  t.regex(none.body, /No held message matches/);
  await env.app.close();
});

test('the held list pages fifty at a time, newest first', async (t) => {
  const env = await setup();
  const { Store } = await import('../agent/store/store.js');
  const store = await Store.open(`${env.home.dir}/vouch.db`);
  const base = Date.parse('2026-11-01T00:00:00Z');
  for (let i = 0; i < 120; i++) {
    await store.hold({
      digest: `d${i}`, received: base + i * 60_000, sender: `s${i}@example.com`, senderKey: `s${i}@example.com`, recipient: 'alice@example.org',
      fromHeader: `S${i} <s${i}@example.com>`, subject: `Message number ${i}`, date: '', messageId: `<${i}@x>`, reason: 'unknown sender',
      challenge: 'suppressed', challengeNote: 'global hourly cap', rpline: '', dtline: '', raw: Buffer.from(`Subject: ${i}\n\nbody\n`),
    });
  }
  await store.close();
  const c = await loggedIn(env);
  const first = await c.get('/messages');
  t.is((first.body.match(/name="ids"/g) ?? []).length, 50);
  t.regex(first.body, /Message number 119<[\s\S]*Message number 70</);
  t.notRegex(first.body, /Message number 69</);
  t.regex(first.body, /page 1 of 3/);
  t.regex(first.body, /suppressed: global hourly cap/);
  const last = await c.get('/messages?page=3');
  t.is((last.body.match(/name="ids"/g) ?? []).length, 20);
  t.regex(last.body, /Message number 19</);
  t.regex(last.body, /href="\/messages\?page&#x3D;2" rel="prev"/);
  t.is((await c.get('/messages?page=999')).status, 200);
  await env.app.close();
});

test('the message view escapes hostile headers and text and sets the security headers', async (t) => {
  const env = await setup();
  const id = await hold(env, 'mallory@evil.example', fixture('xss-headers.eml'));
  const c = await loggedIn(env);
  for (const url of ['/', '/messages', `/message/${id}`]) {
    const r = await c.get(url);
    t.is(r.status, 200);
    t.notRegex(r.body, /<script>alert|<img src=x|<svg onload|<b onmouseover/i, url);
    t.regex(r.body, /&lt;script&gt;alert\(/, url);
    const csp = String(r.headers['content-security-policy']);
    t.regex(csp, /default-src 'none'/);
    t.regex(csp, /frame-ancestors 'none'/);
    // The page's one script is its own file; nothing inline, nothing evaluated.
    t.regex(csp, /script-src 'self'(;|$)/);
    t.notRegex(csp, /unsafe-inline|unsafe-eval|script-src [^;]*(http|data|\*)/);
    t.is(r.headers['x-content-type-options'], 'nosniff');
    t.is(r.headers['referrer-policy'], 'no-referrer');
    t.is(r.headers['cache-control'], 'no-store');
  }
  const view = await c.get(`/message/${id}`);
  t.regex(view.body, /<pre class="body">Plain text body with &lt;script&gt;/);
  await env.app.close();
});

test('RFC 2047 headers are decoded for display and still escaped', async (t) => {
  const env = await setup();
  const plain = await hold(env, 'carol@example.net', fixture('web-plain.eml'));
  const hostile = await hold(env, 'mallory@evil.example', fixture('xss-encoded.eml'));
  const c = await loggedIn(env);
  const p = await c.get(`/message/${plain}`);
  t.regex(p.body, /<h1 class="subject">Café on Friday\?<\/h1>/);
  t.regex(p.body, /shall we meet at the café on Friday\?/);
  const h = await c.get(`/message/${hostile}`);
  t.regex(h.body, /&lt;script&gt;alert\(&quot;enc-subject&quot;\)&lt;\/script&gt;/);
  t.regex(h.body, /&lt;img src&#x3D;x onerror&#x3D;alert\(&quot;enc-from&quot;\)&gt;/);
  t.notRegex(h.body, /<script>|<img src=x/);
  await env.app.close();
});

test('an HTML-only message shows as text, and its HTML only in a sandbox with its own strict CSP', async (t) => {
  const env = await setup();
  const id = await hold(env, 'offers@evil.example', fixture('xss-html.eml'));
  const c = await loggedIn(env);
  const text = await c.get(`/message/${id}`);
  t.regex(text.body, /Special offer/i);
  t.regex(text.body, /Hello Alice/);
  t.notRegex(text.body, /<iframe|<script>alert|onload=/);
  t.regex(text.body, /href="\/message\/[a-z2-7]+\?view&#x3D;html"/);
  const framed = await c.get(`/message/${id}?view=html`);
  t.regex(framed.body, /<iframe class="mail-html" sandbox="allow-same-origin" src="\/message\/[a-z2-7]{13}\/html"/);
  const html = await c.get(`/message/${id}/html`);
  t.is(html.status, 200);
  const csp = String(html.headers['content-security-policy']);
  t.regex(csp, /default-src 'none'/);
  // Sandboxed even when opened on its own: it keeps its origin (so the page can size its frame)
  // and gains nothing else: no scripts, forms, popups or navigation of the page.
  t.regex(csp, /(^|;)\s*sandbox allow-same-origin\s*(;|$)/);
  t.notRegex(csp, /allow-(scripts|forms|popups|top-navigation|modals|downloads)/);
  t.notRegex(framed.body, /allow-(scripts|forms|popups|top-navigation|modals|downloads)/);
  t.regex(csp, /script-src 'none'/);
  t.regex(csp, /img-src data:/);
  t.regex(csp, /form-action 'none'/);
  t.regex(csp, /frame-ancestors 'self'/);
  t.is(html.headers['x-frame-options'], 'SAMEORIGIN');
  t.regex(html.body, /Special offer/);
  t.notRegex(html.body, /<script|onload|onerror|javascript:alert\('link'\)"|remote\.example|<meta http-equiv|<base|<iframe|<form|<object/i);
  t.regex(String(html.headers['content-type']), /^text\/html/);
  await env.app.close();
});

test('attachments are listed and only ever downloaded, under a safe name and an opaque type', async (t) => {
  const env = await setup();
  const id = await hold(env, 'mallory@evil.example', fixture('xss-attachment.eml'));
  const c = await loggedIn(env);
  const view = await c.get(`/message/${id}`);
  t.regex(view.body, /Please see the invoice attached/);
  t.regex(view.body, /<a href="\/message\/[a-z2-7]{13}\/attachment\/0" download>/);
  t.notRegex(view.body, /<img src=x/);
  const dl = await c.get(`/message/${id}/attachment/0`);
  t.is(dl.status, 200);
  t.is(dl.headers['content-type'], 'application/octet-stream');
  const disp = String(dl.headers['content-disposition']);
  t.regex(disp, /^attachment; filename="/);
  t.notRegex(disp, /[/<>]|\.\.\//);
  t.regex(dl.body, /<script>alert\("attachment"\)/, 'the bytes are the attachment, untouched');
  t.is(dl.headers['x-content-type-options'], 'nosniff');
  t.is((await c.get(`/message/${id}/attachment/7`)).status, 404);
  t.is((await c.get(`/message/${id}/attachment/-1`)).status, 404);
  t.is((await c.get('/message/notanid/attachment/0')).status, 404);
  await env.app.close();
});

test('download names cannot leave the header or name a path', (t) => {
  t.is(contentDisposition('report.pdf'), `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
  t.is(contentDisposition('../../etc/passwd'), `attachment; filename="__.._etc_passwd"; filename*=UTF-8''__.._etc_passwd`);
  t.regex(contentDisposition('a"\r\nSet-Cookie: x=y'), /^attachment; filename="[^"\r\n]*"; filename\*=UTF-8''[^\s"]*$/);
  t.regex(contentDisposition('naïve.txt'), /filename="na_ve\.txt"; filename\*=UTF-8''na%C3%AFve\.txt$/);
});

test('the lists page adds, shows and removes patterns, and refuses bad ones', async (t) => {
  const env = await setup();
  const c = await loggedIn(env);
  await c.post('/lists/add', { list: 'white', patterns: 'bob@example.com\n@friends.example\n# a comment\n*@*.corp.example\n', _csrf: await c.csrf('/lists') });
  t.deepEqual((await listOf(env, 'whitelist')).sort(), ['*@*.corp.example', '@friends.example', 'bob@example.com']);
  const page = await c.get('/lists?list=white');
  t.regex(page.body, /3 added to the whitelist/);
  t.regex(page.body, /value="bob@example.com"/);
  await c.post('/lists/add', { list: 'black', patterns: 'good@example.com\nnot a pattern', _csrf: await c.csrf('/lists?list=black') });
  t.regex((await c.get('/lists?list=black')).body, /Nothing added: bad pattern/);
  t.deepEqual(await listOf(env, 'blacklist'), []);
  await c.post('/lists/remove', { list: 'white', patterns: ['bob@example.com', '@friends.example'], _csrf: await c.csrf('/lists') });
  t.deepEqual(await listOf(env, 'whitelist'), ['*@*.corp.example']);
  t.regex((await c.get('/lists')).body, /2 removed from the whitelist/);
  const black = await c.get('/lists?list=black');
  t.regex(black.body, /The blacklist is empty/);
  await env.app.close();
});

test('the activity page draws the last 30 days as SVG from the store counts', async (t) => {
  const env = await setup();
  await hold(env, 'carol@example.net', fixture('web-plain.eml'));
  await hold(env, 'mallory@evil.example', fixture('xss-headers.eml'));
  const c = await loggedIn(env);
  const r = await c.get('/activity');
  t.is(r.status, 200);
  t.regex(r.body, /<svg viewBox="0 0 \d+ \d+"/);
  t.is((r.body.match(/<rect class="bar-held"/g) ?? []).length, 31, '30 days of held bars and one legend swatch');
  t.regex(r.body, /held \(2\)/);
  t.regex(r.body, /: 2 held<\/title>/);
  t.deepEqual(r.body.match(/<script[^>]*>/g), ['<script src="/static/triage.js" defer>'], 'only the page\'s own script');
  await env.app.close();
});

test('sessions end after web.session_idle unused and after web.session_lifetime in all, as config.toml sets them', async (t) => {
  const home = await makeHome({ config: { send: { transport: 'file' }, web: { session_idle: '1h', session_lifetime: '3h' } } });
  const T0 = Date.UTC(2026, 10, 23, 8);
  let now = T0;
  const app = await buildApp({ home: home.dir, listen: HOST, now: () => now });
  const token = readFileSync(`${home.dir}/web-token`, 'utf8').trim();
  const env: Env = { home, config: loadConfig(home.dir, home.env), app, token };
  const busy = await loggedIn(env);
  // Used every 50 minutes it outlives the idle hour, but not the three hours in all.
  for (let m = 50; m < 180; m += 50) {
    now = T0 + m * 60_000;
    t.is((await busy.get('/')).status, 200, `alive after ${m} minutes`);
  }
  now = T0 + 3 * 3_600_000;
  const ended = await busy.get('/');
  t.is(ended.status, 303);
  t.is(ended.headers['location'], '/login');
  const idle = await loggedIn(env);
  now += 59 * 60_000;
  t.is((await idle.get('/')).status, 200, 'within the idle hour');
  now += 61 * 60_000;
  t.is((await idle.get('/')).headers['location'], '/login', 'an hour and a minute unused');
  await app.close();
});

test('logging out ends the session', async (t) => {
  const env = await setup();
  const c = await loggedIn(env);
  const cookie = [...c.cookies].find(([k]) => k.startsWith('vouch_session'));
  t.truthy(cookie);
  const r = await c.post('/logout', { _csrf: await c.csrf() });
  t.is(r.status, 303);
  t.is(r.headers['location'], '/login');
  const replay = new Client(env.app);
  replay.cookies.set(cookie?.[0] ?? '', cookie?.[1] ?? '');
  t.is((await replay.get('/')).status, 303, 'the old cookie no longer works');
  await env.app.close();
});

test('a message the parser cannot finish in time is refused, not waited for', async (t) => {
  // The work never ends (a filter that spins): only the limit can end it, on a fast machine or a
  // loaded one.
  const html = Buffer.from('Subject: spin\nMIME-Version: 1.0\nContent-Type: text/html\n\n<p>hi</p>\n');
  const spin = new URL(`file://${FIXTURES}/spin-filter.mjs`).href;
  const err = await t.throwsAsync(parseMessage(html, { maxBytes: html.length, timeoutMs: 200, htmlFilter: spin }));
  t.true(err instanceof ParseError);
  t.is((err as ParseError).code, 'ETIMEOUT', (err as Error).message);
  // A message past the parser's own limits is refused too, one way or the other.
  const parts: string[] = ['Subject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'];
  for (let i = 0; i < 20_000; i++) parts.push(`--b\nContent-Type: text/plain\n\npart ${i}\n`);
  parts.push('--b--\n');
  const raw = Buffer.from(parts.join(''));
  t.true((await t.throwsAsync(parseMessage(raw, { maxBytes: raw.length, timeoutMs: 1 }))) instanceof ParseError);
  const ok = await parseMessage(Buffer.from('Subject: hi\n\nhello\n'), { maxBytes: 1000 });
  t.is(ok.text?.trim(), 'hello');
});

test('a message larger than the parse limit is cut, and says so', async (t) => {
  const raw = Buffer.from(`Subject: long\n\n${'x'.repeat(5000)}\n`);
  const view = await parseMessage(raw, { maxBytes: 1000 });
  t.true(view.truncated);
  t.true((view.text ?? '').length < 1000);
});

test('HTML mail keeps its formatting but loses scripts, forms, frames and every fetchable URL', (t) => {
  const body = (html: string) => /<body>([\s\S]*)<\/body>/.exec(filterHtml(html))?.[1];
  const table: [string, string][] = [
    ['<p style="color:red">Hi <b>there</b></p>', '<p style="color:red">Hi <b>there</b></p>'],
    ['<script>alert(1)</script>ok', 'ok'],
    ['<img src="http://x.example/a.png" alt="logo">', '<span class="vouch-image">[image: logo]</span>'],
    ['<img src="data:image/png;base64,AAAA">', '<img src="data:image/png;base64,AAAA">'],
    ['<a href="javascript:alert(1)" onclick="x()">go</a>', '<a title="javascript:alert(1)">go</a>'],
    ['<div style="background:url(http://x.example/b.png)">t</div>', '<div>t</div>'],
    ['<div style="background:u\\72l(http://x.example/b.png)">t</div>', '<div>t</div>'],
    ['<td background="http://x.example/c.png">c</td>', '<td>c</td>'],
    ['<form action="http://x.example"><input name=a><button>Send</button></form>', 'Send'],
    ['<iframe src="http://x.example"></iframe><svg onload=alert(1)><image href="http://x.example/i"/></svg>after', 'after'],
    ['<meta http-equiv="refresh" content="0;url=http://x.example"><base href="http://x.example/">x', 'x'],
    ['<p>&lt;script&gt; stays text</p>', '<p>&#60;script&#62; stays text</p>'],
    ['<embed src="http://x.example/e"><br>b', '<br>b'],
  ];
  for (const [input, expected] of table) t.is(body(input), expected, input);
  t.notRegex(filterHtml('<style>@import "http://x.example/s.css"; p{color:red}</style>'), /@import|x\.example/);
  t.regex(filterHtml('<style>p { color: red }</style>'), /<style>p \{ color: red \}<\/style>/);
  t.notRegex(filterHtml('<style>p{background:url(http://x.example/bg)}</style>'), /x\.example/);
});

test('vouch web prints exactly one login URL line, serves it, and stops cleanly on SIGTERM', async (t) => {
  const home = await makeHome();
  const { spawn } = await import('node:child_process');
  const { CLI } = await import('./helpers.js');
  const child = spawn(process.execPath, [CLI, 'web', '--listen', '127.0.0.1:0'], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...home.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.on('error', reject);
    void exited.then(() => reject(new Error(`vouch web exited: ${err}`)));
  });
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{20,}$/);
  const login = await fetch(url, { redirect: 'manual' });
  t.is(login.status, 303);
  t.is(login.headers.get('location'), '/');
  t.regex(login.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
  const { request } = await import('node:http');
  const foreign = await new Promise<number | undefined>((resolve, reject) => {
    const u = new URL(url);
    request({ host: '127.0.0.1', port: u.port, path: `/${u.search}`, headers: { host: `rebound.example:${u.port}` } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on('error', reject).end();
  });
  t.is(foreign, 403, 'a rebound name is refused');
  child.kill('SIGTERM');
  t.is(await exited, 0);
  t.is(out.split('\n').filter((l) => l !== '').length, 1, 'one line on stdout');
  t.is(err, '');
});

test('vouch web refuses a bad --listen and a port in use with one line', async (t) => {
  const home = await makeHome();
  const bad = await vouch(['web', '--listen', 'nonsense'], { env: home.env });
  t.not(bad.code, 0);
  t.regex(bad.stderr, /^vouch: --listen must be HOST:PORT/);
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const busy = await vouch(['web', '--listen', `127.0.0.1:${port}`], { env: home.env });
  server.close();
  t.not(busy.code, 0);
  t.regex(busy.stderr, /already in use/);
  t.is(busy.stderr.split('\n').filter((l) => l !== '').length, 1);
});

test('password guessing is throttled in a sliding minute on the injected clock, but the token still logs in', async (t) => {
  const hash = await hashPassword('the real one');
  // Ten guesses straddling a minute's boundary (five just before it, five just after) count
  // together: a calendar-minute counter would let twenty through around every boundary.
  let clock = Date.UTC(2026, 10, 23, 10, 0, 55);
  const env = await setup((c) => ({ ...c, web: { ...c.web, password_hash: hash } }), () => clock);
  const c = new Client(env.app);
  for (let i = 0; i < 10; i++) {
    if (i === 5) clock = Date.UTC(2026, 10, 23, 10, 1, 5);
    t.is((await c.post('/login', { _csrf: await c.csrf('/login'), secret: `guess ${i}` })).status, 401);
  }
  const blocked = await c.post('/login', { _csrf: await c.csrf('/login'), secret: 'the real one' });
  t.is(blocked.status, 429);
  t.is((await c.get('/')).status, 303);
  // A minute after the first five, only the last five count: guessing may go on, slowly.
  clock = Date.UTC(2026, 10, 23, 10, 1, 55);
  t.is((await c.post('/login', { _csrf: await c.csrf('/login'), secret: 'the real one' })).status, 303);
  const d = new Client(env.app);
  t.is((await d.post('/login', { _csrf: await d.csrf('/login'), secret: env.token })).status, 303);
  t.is((await d.get('/')).status, 200);
  await env.app.close();
});

test('the login throttle counts failures in a sliding window', (t) => {
  let now = 0;
  const th = new LoginThrottle(3, () => now, 60_000);
  // [time of the step, fail() or a look, blocked() expected after it]
  const steps: [number, 'fail' | 'look', boolean][] = [
    [0, 'fail', false], [30_000, 'fail', false], [59_000, 'fail', true], [59_999, 'look', true],
    [60_000, 'look', false], // the first failure is a minute old: out of the window
    [61_000, 'fail', true], [89_999, 'look', true], [90_000, 'look', false], [200_000, 'look', false],
  ];
  const seen = steps.map(([at, what]) => {
    now = at;
    if (what === 'fail') th.fail();
    return th.blocked();
  });
  t.deepEqual(seen, steps.map((s) => s[2]));
});

test('send the confirmation request now: for mail held back by a limit, not for mail already asked', async (t) => {
  const env = await setup();
  const { Store } = await import('../agent/store/store.js');
  const store = await Store.open(`${env.home.dir}/vouch.db`);
  const base = { recipient: 'alice@example.org', date: '', messageId: '<1@x>', reason: 'unknown sender', dtline: 'Delivered-To: alice@example.org\n' };
  const limited = await store.hold({
    ...base, digest: 'lim', received: Date.now(), sender: 'late@example.net', senderKey: 'late@example.net', fromHeader: 'Late <late@example.net>', subject: 'Held back',
    challenge: 'suppressed', challengeNote: 'global hourly cap', rpline: 'Return-Path: <late@example.net>\n', raw: Buffer.from('From: late@example.net\nSubject: Held back\n\nhi\n'),
  });
  const asked = await store.hold({
    ...base, digest: 'ask', received: Date.now(), sender: 'done@example.net', senderKey: 'done@example.net', fromHeader: 'done@example.net', subject: 'Asked',
    challenge: 'sent', challengeNote: '', rpline: 'Return-Path: <done@example.net>\n', raw: Buffer.from('From: done@example.net\nSubject: Asked\n\nhi\n'),
  });
  await store.close();
  const c = await loggedIn(env);
  const view = await c.get(`/message/${limited.id}`);
  t.regex(view.body, /Send the confirmation request now/);
  t.notRegex((await c.get(`/message/${asked.id}`)).body, /Send the confirmation request now/);
  await c.post('/challenge', { ids: [limited.id, asked.id], _csrf: await c.csrf(), back: '/messages' });
  t.regex((await c.get('/messages')).body, /1 confirmation request\(s\) sent/);
  const { readdirSync } = await import('node:fs');
  const outbox = readdirSync(`${env.home.dir}/outbox`).filter((f) => f.endsWith('.eml'));
  t.is(outbox.length, 1);
  t.regex(readFileSync(`${env.home.dir}/outbox/${outbox[0] ?? ''}`, 'utf8'), /^To: .*late@example\.net/m);
  const held = await pendingList(env.home);
  t.is(held.find((m) => m.id === limited.id)?.challenge, 'sent');
});

test('the message view shows the classifier verdict and score; its release and delete + blacklist queue the message for learning', async (t) => {
  const env = await setup();
  // A classifier that calls everything spam, and a word list for it to be asked with.
  const bin = `${env.home.user}/says-spam`;
  writeFileSync(bin, '#!/bin/sh\ncat >/dev/null\necho "S 0.995"\nexit 0\n', { mode: 0o755 });
  mkdirSync(`${env.home.dir}/bogofilter`, { recursive: true });
  writeFileSync(`${env.home.dir}/bogofilter/wordlist.db`, '');
  setConfig(env.home.dir, { classifier: { enabled: true, command: bin } });
  const a = await hold(env, 'spam@junk.example', message({ from: 'spam@junk.example', subject: 'buy' }));
  const b = await hold(env, 'friend@example.com', message({ from: 'friend@example.com', subject: 'hi' }));
  const c = await loggedIn(env);
  const view = await c.get(`/message/${a}`);
  t.regex(view.body, /<dt>Classifier<\/dt><dd class="classifier">spam 0\.99<\/dd>/);
  t.regex(view.body, /suppressed: classifier: spam 0\.99/);
  await c.post('/act', { ids: a, action: 'delete-blacklist', _csrf: await c.csrf() });
  await c.post('/act', { ids: b, action: 'release', _csrf: await c.csrf() });
  const store = await Store.open(`${env.home.dir}/vouch.db`);
  try {
    const due = await store.learningDue(10);
    t.deepEqual(due.map((d) => [d.key, d.verdict, d.learned]).sort(), [[`held:${a}`, 'spam', null], [`held:${b}`, 'ham', null]].sort());
    t.true(due.every((d) => d.bytes !== null && d.bytes.includes('Subject:')));
  } finally {
    await store.close();
  }
  await env.app.close();
});
